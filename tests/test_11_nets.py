"""The networks: DPPA-UNet's graph, the custom layers' arithmetic, save / reload."""

from __future__ import annotations

import numpy as np
import pytest

from sarflow import train

train.limit_threads(2)

import keras  # noqa: E402

from sarflow import modelio, nets  # noqa: E402


def _producers(layer) -> list:
    """The layers whose outputs feed ``layer`` (first call site)."""
    tensors = keras.tree.flatten(layer._inbound_nodes[0].input_tensors)
    return [t._keras_history.operation for t in tensors]


def test_dppa_unet_has_pixel_attention_after_each_of_four_concatenations():
    model = nets.dppa_unet(input_channels=2, filters=8, depth=4)
    concats = [l for l in model.layers if isinstance(l, keras.layers.Concatenate)]
    attention = [l for l in model.layers if isinstance(l, nets.PixelAttention)]
    pools = [l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)]
    assert len(concats) == len(attention) == len(pools) == 4
    encoder_outputs = set()
    for att in attention:
        (concat,) = _producers(att)
        assert isinstance(concat, keras.layers.Concatenate)
        up, skip = _producers(concat)
        assert isinstance(up, keras.layers.Conv2DTranspose)
        assert skip.name.startswith("enc")
        encoder_outputs.add(skip.name)
        assert up.strides == (2, 2)
    assert len(encoder_outputs) == 4
    assert all(isinstance(l, keras.layers.BatchNormalization)
               for l in model.layers if l.name.endswith(("_bn1", "_bn2")))
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D) and l.name != "logits"]
    assert all(isinstance(c.kernel_initializer, keras.initializers.HeNormal) for c in convs)
    assert model.layers[-1].get_config()["activation"] == "sigmoid"
    assert model.output.dtype == "float32"
    unet = nets.unet(input_channels=2, filters=8)
    assert not [l for l in unet.layers if isinstance(l, nets.PixelAttention)]


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def _expected_params(ch: int, f: int, depth: int, attention: bool) -> int:
    """Parameter count of the U-Nets, counted by hand from the architecture."""
    def block(cin: int, cout: int) -> int:   # 2 x (3x3 conv without bias + BN of 4 x cout)
        return _conv(cin, cout, 3, False) + _conv(cout, cout, 3, False) + 8 * cout

    total, cin = 0, ch
    for level in range(depth):
        total += block(cin, f * 2 ** level)
        cin = f * 2 ** level
    total += block(cin, f * 2 ** depth)
    cin = f * 2 ** depth
    for level in reversed(range(depth)):
        fl = f * 2 ** level
        total += _conv(cin, fl, 2)                        # Conv2DTranspose 2x2
        if attention:
            total += _conv(2 * fl, 2 * fl, 1)             # pixel attention 1x1 conv
        total += block(2 * fl, fl)
        cin = fl
    return total + _conv(f, 1, 1)


def test_parameter_counts_match_the_architecture():
    assert nets.dppa_unet(2, 4).count_params() == _expected_params(2, 4, 4, True)
    assert nets.unet(3, 4).count_params() == _expected_params(3, 4, 4, False)
    assert nets.dppa_unet(2, 64).count_params() == _expected_params(2, 64, 4, True)
    # the README reports this number: DPPA-UNet, 2 input channels, 64 base filters
    print("DPPA-UNet 2ch/64f params:", nets.dppa_unet(2, 64).count_params())


def test_pixel_attention_arithmetic():
    layer = nets.PixelAttention()
    x = np.random.default_rng(1).normal(size=(1, 3, 3, 2)).astype("float32")
    out = np.asarray(layer(x))
    kernel, bias = (np.asarray(w) for w in layer.conv.weights)
    logits = x @ kernel[0, 0] + bias
    expected = x + x / (1 + np.exp(-logits))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert nets.PixelAttention.from_config(layer.get_config()).kernel_size == 1


def test_segnet_pooling_indices_and_unpooling():
    x = np.array([[1, 3, 2, 2], [0, 2, 5, 1], [4, 4, 0, 0], [4, 1, 0, 0]],
                 "float32")[None, :, :, None]
    pooled, switches = nets.MaxPoolingWithIndices()(x)
    np.testing.assert_array_equal(np.asarray(pooled)[0, :, :, 0], [[3, 5], [4, 0]])
    # ties go to the first maximum in row-major order
    np.testing.assert_array_equal(np.asarray(switches)[0, :, :, 0],
                                  [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    up = nets.MaxUnpoolingWithIndices()([pooled, switches])
    np.testing.assert_array_equal(np.asarray(up)[0, :, :, 0],
                                  [[0, 3, 0, 0], [0, 0, 5, 0], [4, 0, 0, 0], [0, 0, 0, 0]])
    model = nets.segnet(2, 4)
    assert sum(isinstance(l, nets.MaxUnpoolingWithIndices) for l in model.layers) == 4


@pytest.mark.parametrize("architecture", nets.ARCHITECTURES)
def test_save_and_reload_give_identical_predictions(tmp_path, architecture):
    keras.utils.set_random_seed(3)
    model = nets.build(architecture, input_channels=2, filters=4)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 2)).astype("float32")
    expected = model.predict(x, verbose=0)
    meta = {"group": "G1", "channels": ["VV", "VH"], "patch_size": 32,
            "normalisation": {"mean": [0, 0], "std": [1, 1]}, "architecture": architecture}
    path = modelio.save_model(model, tmp_path / "m.keras", meta)
    again, read = modelio.load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), expected)
    assert read["architecture"] == architecture
    plain = keras.saving.load_model(str(path), compile=False)  # no custom_objects
    np.testing.assert_array_equal(plain.predict(x, verbose=0), expected)
    # any multiple of 16 works, not only the training patch size
    assert again.predict(np.zeros((1, 48, 64, 2), "float32"), verbose=0).shape == (1, 48, 64, 1)


def test_unknown_architecture_is_a_config_error():
    from sarflow.errors import ConfigError

    with pytest.raises(ConfigError, match="dppa_unet"):
        nets.build("resnet")
