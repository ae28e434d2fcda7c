"""The provenance rule in isolation: what a digest depends on and what it does not."""

from __future__ import annotations

import os
from pathlib import Path

from sarflow.config import NativeSettings, SnapSettings
from sarflow.products import StageProduct
from sarflow.provenance import Provenance, digest, file_fingerprint, is_current


def test_digest_is_stable_and_key_order_free() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    # tuples and lists, paths and strings record the same (JSON round trip)
    p1 = Provenance("s", {"grid": (1, 2), "dem": Path("/x/dem.tif")})
    p2 = Provenance("s", {"grid": [1, 2], "dem": "/x/dem.tif"})
    assert p1.digest == p2.digest


def test_the_version_is_recorded_but_does_not_decide() -> None:
    old = Provenance("train", {"epochs": 3}, {"dataset": "abc"}, version="0.0.1")
    new = Provenance("train", {"epochs": 3}, {"dataset": "abc"})
    assert old.to_dict()["sarflow_version"] == "0.0.1"
    assert is_current(old, new)
    assert not is_current(Provenance("train", {"epochs": 4}, {"dataset": "abc"}), new)
    assert not is_current(Provenance("train", {"epochs": 3}, {"dataset": "abd"}), new)
    assert not is_current(Provenance("dataset", {"epochs": 3}, {"dataset": "abc"}), new)
    assert not is_current(None, new)
    assert is_current(new.digest, new)  # a recorded digest is enough


def test_json_round_trip() -> None:
    p = Provenance("preprocess", {"engine": "native", "engine_settings": {"lut_stride": 16}},
                   {"scene": ["x.zip", 10, 5]})
    back = Provenance.from_json(p.to_json())
    assert back == Provenance("preprocess", p.settings, {"scene": ["x.zip", 10, 5]})
    assert back.digest == p.digest
    assert Provenance.from_json("") is None and Provenance.from_json("{not json") is None


def test_file_fingerprint(tmp_path: Path) -> None:
    f = tmp_path / "scene.zip"
    f.write_bytes(b"12345")
    os.utime(f, (1_000_000, 1_000_000))
    assert file_fingerprint(f) == ["scene.zip", 5, 1_000_000]
    assert file_fingerprint(tmp_path / "gone.zip") == [str(tmp_path / "gone.zip"), "missing"]
    assert file_fingerprint(None) is None
    safe = tmp_path / "S1A_X.SAFE"
    safe.mkdir()
    (safe / "manifest.safe").write_text("<xml/>")
    os.utime(safe / "manifest.safe", (2_000_000, 2_000_000))
    assert file_fingerprint(safe) == ["S1A_X.SAFE", 6, 2_000_000]  # a folder by its manifest


def test_engine_settings_provenance_leaves_out_resources() -> None:
    assert "threads" not in NativeSettings().provenance()
    assert "zlevel" not in NativeSettings().provenance()
    assert NativeSettings(threads=4).provenance() == NativeSettings().provenance()
    assert NativeSettings(lut_stride=8).provenance() != NativeSettings().provenance()
    snap = SnapSettings(memory_gb=12, threads=8, timeout_s=60).provenance()
    assert snap == SnapSettings().provenance()
    assert SnapSettings(orbit_type="restituted").provenance() != SnapSettings().provenance()


def test_stage_product_record(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    product = StageProduct("stack", tmp_path / "state" / "stack.json", paths=[out])
    prov = Provenance("stack", {"a": 1})
    assert product.recorded() == (None, False) and not product.is_current(prov)
    product.mark(prov, complete=False)
    assert product.recorded()[1] is False and not product.is_current(prov)
    out.write_text("x")
    product.mark(prov, complete=True)
    assert product.is_current(prov)
    assert not product.is_current(Provenance("stack", {"a": 2}))
    out.unlink()
    assert not product.is_current(prov)  # an output gone means not current
