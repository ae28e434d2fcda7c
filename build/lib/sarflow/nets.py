"""The segmentation networks: DPPA-UNet (Pan & Shi 2023), U-Net and SegNet, in Keras 3.

Every builder returns a ``keras.Model`` that maps (batch, H, W, channels) to a landslide
probability (batch, H, W, 1); H and W may be any multiple of ``2**depth`` (16 for the
paper's four downsamplings), so the same model serves 128 x 128 training patches and larger
prediction windows.  Convolutions use He initialisation and are followed by batch
normalisation and ReLU; the output is a 1 x 1 convolution with a sigmoid, kept in float32
under mixed precision.

DPPA-UNet: a U-Net with ``depth`` 2 x 2 max-poolings; each decoder stage upsamples with a
2 x 2 ``Conv2DTranspose`` (stride 2), concatenates the encoder skip, applies
:class:`PixelAttention` (``out = x + x * sigmoid(Conv2D(x))``, one weight per pixel and
channel) and then the two 3 x 3 convolutions.  U-Net is the same without the attention.

SegNet: the encoder records its **real max-pooling indices** (for each 2 x 2 window the
position of the maximum, ties going to the first in row-major order) and the decoder puts
every value back at that position, zeros elsewhere (:class:`MaxPoolingWithIndices`,
:class:`MaxUnpoolingWithIndices`).  This is the original SegNet unpooling, not the common
Keras approximation that replaces it with ``UpSampling2D``.  The indices are carried as a
one-hot "switch" tensor of the pre-pooling shape and computed with ``keras.ops`` only, so
the layers are deterministic and backend-independent.

All custom layers and the Dice loss are registered Keras serialisables (package
``sarflow``): a ``.keras`` file reloads with ``keras.saving.load_model`` once this module
is imported, with no ``custom_objects``.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers, ops

ARCHITECTURES = ("dppa_unet", "unet", "segnet")
BN_MOMENTUM = 0.9
"""Batch-normalisation momentum.  Keras' default (0.99) makes the running averages lag the
weights by ~100 steps; after short trainings that cost inference-mode F1 badly (0.68 ->
0.43 on real Sentinel-1 change pairs).  0.9 follows the weights within ~10 steps, and
:func:`sarflow.train.recompute_bn_statistics` removes the remaining lag after training."""

_INIT = "he_normal"


@keras.saving.register_keras_serializable(package="sarflow")
class PixelAttention(layers.Layer):
    """Pixel attention: ``out = x + x * sigmoid(Conv2D(x))`` with one weight per pixel and
    channel (a ``kernel_size`` convolution with as many filters as ``x`` has channels)."""

    def __init__(self, kernel_size: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.conv = None

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1])
        self.conv = layers.Conv2D(channels, self.kernel_size, padding="same",
                                  kernel_initializer=_INIT, dtype=self.dtype_policy,
                                  name="attention_conv")
        self.conv.build(input_shape)

    def call(self, x):
        weights = ops.sigmoid(self.conv(x))
        return x + x * weights

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="sarflow")
class MaxPoolingWithIndices(layers.Layer):
    """2 x 2 max pooling that also returns where each maximum was: ``[pooled, switches]``,
    ``switches`` being 1 at the arg-max of every window (first one on ties), 0 elsewhere."""

    def call(self, x):
        h, w, c = ops.shape(x)[1], ops.shape(x)[2], ops.shape(x)[3]
        windows = _to_windows(x, h, w, c)                        # (b, h/2, w/2, c, 4)
        onehot = ops.one_hot(ops.argmax(windows, axis=-1), 4, dtype=x.dtype)
        pooled = ops.sum(windows * onehot, axis=-1)
        return [pooled, _from_windows(onehot, h, w, c)]

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        half = lambda n: None if n is None else n // 2  # noqa: E731
        return [(b, half(h), half(w), c), tuple(input_shape)]


@keras.saving.register_keras_serializable(package="sarflow")
class MaxUnpoolingWithIndices(layers.Layer):
    """SegNet unpooling: ``[values, switches]`` -> each value placed where its encoder
    window's maximum was, zeros elsewhere."""

    def call(self, inputs):
        values, switches = inputs
        up = ops.repeat(ops.repeat(values, 2, axis=1), 2, axis=2)
        return up * ops.cast(switches, up.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])


def _to_windows(x, h, w, c):
    x = ops.reshape(x, (-1, h // 2, 2, w // 2, 2, c))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4))
    return ops.reshape(x, (-1, h // 2, w // 2, c, 4))


def _from_windows(x, h, w, c):
    x = ops.reshape(x, (-1, h // 2, w // 2, c, 2, 2))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3))
    return ops.reshape(x, (-1, h, w, c))


@keras.saving.register_keras_serializable(package="sarflow")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss ``1 - (2 * sum(y * p) + s) / (sum(y) + sum(p) + s)``.

    The sums run over the whole batch (every pixel of every patch), so patches without
    landslides do not each count as a separate perfect or failed score.  The smoothing
    constant ``s`` (default 1.0) keeps the loss defined when both masks are empty (it is
    then 0) and gives predictions on an empty patch a gradient towards zero.
    """

    def __init__(self, smooth: float = 1.0, name: str = "dice_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), "float32")
        inter = ops.sum(y_true * y_pred)
        total = ops.sum(y_true) + ops.sum(y_pred)
        return 1.0 - (2.0 * inter + self.smooth) / (total + self.smooth)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


# ------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------

def conv_block(x, filters: int, name: str, bn_momentum: float = BN_MOMENTUM):
    """Two 3 x 3 convolutions, each followed by batch normalisation and ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_initializer=_INIT, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def _output(x):
    x = layers.Conv2D(1, 1, kernel_initializer="glorot_uniform", name="logits")(x)
    return layers.Activation("sigmoid", dtype="float32", name="probability")(x)


def _unet(input_channels: int, filters: int, depth: int, attention: bool,
          bn_momentum: float, name: str) -> keras.Model:
    inputs = keras.Input((None, None, input_channels), name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = conv_block(x, filters * 2 ** level, f"enc{level + 1}", bn_momentum)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    x = conv_block(x, filters * 2 ** depth, "bottleneck", bn_momentum)
    for level in reversed(range(depth)):
        f = filters * 2 ** level
        x = layers.Conv2DTranspose(f, 2, strides=2, padding="same", kernel_initializer=_INIT,
                                   name=f"up{level + 1}")(x)
        x = layers.Concatenate(name=f"concat{level + 1}")([x, skips[level]])
        if attention:
            x = PixelAttention(name=f"attention{level + 1}")(x)
        x = conv_block(x, f, f"dec{level + 1}", bn_momentum)
    return keras.Model(inputs, _output(x), name=name)


def dppa_unet(input_channels: int = 2, filters: int = 64, depth: int = 4,
              bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """DPPA-UNet: U-Net with a pixel-attention block after each decoder concatenation."""
    return _unet(input_channels, filters, depth, True, bn_momentum, "dppa_unet")


def unet(input_channels: int = 2, filters: int = 64, depth: int = 4,
         bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """Plain U-Net baseline (DPPA-UNet without the attention blocks)."""
    return _unet(input_channels, filters, depth, False, bn_momentum, "unet")


def segnet(input_channels: int = 2, filters: int = 64, depth: int = 4,
           bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """SegNet baseline: encoder-decoder without skips, unpooling with the pooling indices."""
    inputs = keras.Input((None, None, input_channels), name="image")
    x, switches = inputs, []
    for level in range(depth):
        x = conv_block(x, filters * 2 ** level, f"enc{level + 1}", bn_momentum)
        x, s = MaxPoolingWithIndices(name=f"pool{level + 1}")(x)
        switches.append(s)
    for level in reversed(range(depth)):
        x = MaxUnpoolingWithIndices(name=f"unpool{level + 1}")([x, switches[level]])
        f = filters * 2 ** max(level - 1, 0)
        x = conv_block(x, f, f"dec{level + 1}", bn_momentum)
    return keras.Model(inputs, _output(x), name="segnet")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "dppa_unet": dppa_unet, "unet": unet, "segnet": segnet}


def build(architecture: str, input_channels: int = 2, filters: int = 64, depth: int = 4,
          bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """The network named ``architecture`` (one of :data:`ARCHITECTURES`)."""
    from .errors import ConfigError

    if architecture not in BUILDERS:
        raise ConfigError(f"unknown architecture {architecture!r}; choose one of "
                          f"{', '.join(ARCHITECTURES)}")
    return BUILDERS[architecture](input_channels, filters, depth, bn_momentum)
