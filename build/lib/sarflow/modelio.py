"""Model files that carry what prediction needs.

A sarflow model is a Keras ``.keras`` archive with one extra member, ``sarflow.json``:
group, input channels and their meaning, normalisation (per-channel mean and std of the
training split), patch size, architecture and training settings.  Keras ignores the extra
member, so the file still loads with plain ``keras.saving.load_model``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from .errors import InputError, ModelError
from .grid import atomic_path

META_MEMBER = "sarflow.json"
REQUIRED_META = ("group", "channels", "normalisation", "patch_size", "architecture")


def save_model(model: Any, path: str | Path, meta: dict) -> Path:
    """Save a Keras model with sarflow's metadata, atomically."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"model metadata lacks {missing}")
    from . import __version__

    meta = {**meta, "sarflow_version": __version__}
    path = Path(path)
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_name(tmp.name + ".keras")  # Keras insists on the suffix
        try:
            model.save(keras_tmp)
            with zipfile.ZipFile(keras_tmp, "a") as zf:
                zf.writestr(META_MEMBER, json.dumps(meta, indent=2, default=str))
            keras_tmp.replace(tmp)  # atomic_path renames tmp onto path
        finally:
            keras_tmp.unlink(missing_ok=True)
    return path


def read_meta(path: str | Path) -> dict:
    """The sarflow metadata of a model file (no TensorFlow import)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"model file not found: {p}")
    try:
        with zipfile.ZipFile(p) as zf:
            if META_MEMBER not in zf.namelist():
                raise ModelError(f"{p} is a Keras file without sarflow metadata; "
                                 "train it with `sarflow train` or add sarflow.json")
            return json.loads(zf.read(META_MEMBER))
    except zipfile.BadZipFile:
        raise InputError(f"{p} is not a .keras model file") from None


def load_model(path: str | Path) -> tuple[Any, dict]:
    """(Keras model, metadata); the model's custom layers register on import of sarflow.nets."""
    meta = read_meta(path)
    import keras

    from . import nets  # noqa: F401 - registers the custom layers

    model = keras.saving.load_model(str(path), compile=False)
    return model, meta
