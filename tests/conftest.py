"""Shared test fixtures: the real reference data in ../shared/fixtures, the independent
references (sarsen, xarray-sentinel) in their own virtualenv, a private HOME, and the
markers for what a machine may lack (``snap``, ``gpu``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """../shared/fixtures; a test that needs it fails (never skips) when it is missing."""
    if not FIXTURES.is_dir():
        pytest.fail(f"reference data missing: {FIXTURES} (clone sarflow beside ../shared)")
    return FIXTURES


@pytest.fixture(scope="session")
def reference():
    """sarsen and xarray-sentinel, running in their own virtualenv (``.venv-ref``, made by
    ``make test``): see tests/reference.py. Missing, the tests that need it fail."""
    from tests.reference import Reference

    try:
        ref = Reference()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    yield ref
    ref.close()


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory: pytest.TempPathFactory):
    """pyroSAR, Keras and matplotlib write under $HOME: keep that out of the real one."""
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    yield home
    if old is not None:
        os.environ["HOME"] = old


def _has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # noqa: BLE001 - any failure to see a GPU means no GPU here
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_gpt = shutil.which("gpt") is not None or bool(os.environ.get("SNAP_HOME"))
    gpu = None
    for item in items:
        if "snap" in item.keywords and not has_gpt:
            item.add_marker(pytest.mark.skip(reason="needs ESA SNAP's gpt (not installed here)"))
        if "gpu" in item.keywords:
            gpu = _has_gpu() if gpu is None else gpu
            if not gpu:
                item.add_marker(pytest.mark.skip(reason="needs a GPU (none visible here)"))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Run ``no_tensorflow`` tests in a fresh interpreter once TensorFlow is loaded here.

    TensorFlow bundles an SQLite without R-tree; SpatiaLite loaded after it cannot build
    spatial indexes, and loaded before it corrupts the heap at exit. sarflow never mixes the
    two in one process (indexing scenes does not load TensorFlow); the test suite does.
    """
    if pyfuncitem.get_closest_marker("no_tensorflow") is None or "tensorflow" not in sys.modules:
        return None
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          pyfuncitem.nodeid], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"{pyfuncitem.nodeid} failed in a fresh interpreter:\n{res.stdout[-4000:]}")
    return True


def tiny_event(root: Path, model: dict) -> Path:
    """A small simulated event (seed 3, 256 x 384 px, 2 scenes per pass and window) with
    ``model`` as its model settings, for end-to-end runs; returns its event.yaml."""
    import yaml

    from sarflow.simulate import simulate_event

    path = Path(simulate_event(root, seed=3, size=(256, 384), scenes_per_window=2))
    data = yaml.safe_load(path.read_text())
    data["model"] = model
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
