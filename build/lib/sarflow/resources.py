"""Where sarflow's data files are: the SNAP graphs (``graphs/``) and the model specs
(``models/``).

Both folders stay at the repository's top level (users run the graphs with ``gpt`` on
their own) and are installed as the data-only packages ``sarflow.graphs`` and
``sarflow.models`` (``package_dir`` in setup.cfg), so a wheel carries them; in a source
checkout that is not installed the top-level folders are used directly.
"""

from __future__ import annotations

import importlib
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(package: str, name: str) -> Path:
    """The installed data package's folder (a namespace package: no ``__init__``), else the
    checkout's top-level folder."""
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        return _CHECKOUT / name
    for entry in getattr(module, "__path__", []):
        if Path(entry).is_dir():
            return Path(entry)
    return _CHECKOUT / name


def graphs_dir() -> Path:
    """The folder of SNAP GPT graphs (``s1_grd_sigma0*.xml``)."""
    return _folder("sarflow.graphs", "graphs")


def models_dir() -> Path:
    """The folder of model specs (``<architecture>.yaml``)."""
    return _folder("sarflow.models", "models")
