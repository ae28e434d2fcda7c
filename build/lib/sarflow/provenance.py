"""Provenance: what made a product, and the one rule that says whether it is current.

Every product (a scene output, the stack, a dataset, a model, a prediction, an evaluation,
the report) records a :class:`Provenance`: its stage, the resolved settings that made it
(for a scene: the engine that actually ran, its version and every setting that decides
its values) and the fingerprints of its inputs (files, or the provenance digests of the
products it was made from).  :func:`is_current` compares a recorded provenance with the
one a run would record now; nothing else decides whether an output is reused.

sarflow's own version is recorded with every product but is not part of the digest:
upgrading sarflow does not by itself reprocess an event (delete the work folder for that).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from . import __version__


def digest(data: Any) -> str:
    """A short, stable hash of JSON-able data (keys sorted)."""
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_fingerprint(path: Optional[os.PathLike | str]) -> Optional[list]:
    """[name, size, mtime] of a file (``[path, "missing"]`` when absent; None for None).

    Name, size and modification time, not content: hashing every GRD (1-2 GB each)
    on each run would cost more than processing.  A folder (``.SAFE``) is fingerprinted by
    its manifest.
    """
    if path is None:
        return None
    p = Path(path)
    if p.is_dir() and (p / "manifest.safe").is_file():
        st = (p / "manifest.safe").stat()
        return [p.name, st.st_size, int(st.st_mtime)]
    if not p.exists():
        return [str(p), "missing"]
    st = p.stat()
    return [p.name, st.st_size, int(st.st_mtime)]


@dataclass(frozen=True)
class Provenance:
    """What made a product: its stage, resolved settings and input fingerprints."""

    stage: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    version: str = __version__

    @property
    def digest(self) -> str:
        """The hash that decides currency: stage, settings and inputs (not the version)."""
        return digest([self.stage, _plain(self.settings), _plain(self.inputs)])

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "digest": self.digest, "sarflow_version": self.version,
                "settings": _plain(self.settings), "inputs": _plain(self.inputs)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Provenance":
        return cls(stage=str(data.get("stage", "")), settings=dict(data.get("settings") or {}),
                   inputs=dict(data.get("inputs") or {}),
                   version=str(data.get("sarflow_version", "")))

    @classmethod
    def from_json(cls, text: Optional[str]) -> Optional["Provenance"]:
        """The provenance in ``text`` (None when empty or unreadable)."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return cls.from_dict(data) if isinstance(data, dict) else None


def is_current(recorded: Optional[Provenance | str], expected: Provenance) -> bool:
    """True when a product recorded with ``recorded`` (a Provenance or its digest) is what
    a run with ``expected`` would make: the one currency rule of every stage."""
    if recorded is None:
        return False
    got = recorded if isinstance(recorded, str) else recorded.digest
    return got == expected.digest


def _plain(data: Any) -> Any:
    """JSON round trip: tuples become lists, paths strings, so digests are stable."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))
