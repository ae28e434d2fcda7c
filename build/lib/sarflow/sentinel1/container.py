"""Access to the files of a SAFE product, whether zipped or unpacked.

A product is a ``.SAFE`` folder or a ``.zip`` holding that folder.  Files are named by their
path relative to the product folder (``annotation/s1a-....xml``); XML is read with Python,
rasters through GDAL (``/vsizip/`` for zips), so nothing is ever extracted.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import CorruptInputError, InputError


class SafeContainer:
    """The file tree of one SAFE product (zip or folder), addressed by relative paths."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file or folder (expected a Sentinel-1 "
                             f".SAFE folder or .zip)")
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            root = self.path
            if not (root / "manifest.safe").is_file():
                inner = sorted(p for p in root.glob("*.SAFE") if (p / "manifest.safe").is_file())
                if not inner:
                    raise InputError(f"{self.path}: not a Sentinel-1 SAFE product "
                                     f"(no manifest.safe inside)")
                root = inner[0]
            self.root = root
            self._files = sorted(str(p.relative_to(root)).replace(os.sep, "/")
                                 for p in root.rglob("*") if p.is_file())
            self.prefix = ""
        else:
            self._open_zip()

    def _open_zip(self) -> None:
        try:
            zf = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile:
            if self.path.suffix.lower() == ".zip":
                raise CorruptInputError(f"{self.path}: not a readable zip file (truncated "
                                        f"download?); fetch the product again") from None
            raise InputError(f"{self.path}: not a Sentinel-1 product (expected a .zip or "
                             f".SAFE folder)") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None
        manifests = sorted((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "manifest.safe"),
                           key=lambda n: n.count("/"))
        if not manifests:
            raise InputError(f"{self.path}: not a Sentinel-1 SAFE product (zip has no "
                             f"manifest.safe)")
        self._zip = zf
        self.prefix = manifests[0][: -len("manifest.safe")]
        self.root = self.path
        self._files = sorted(n[len(self.prefix):] for n in zf.namelist()
                             if n.startswith(self.prefix) and not n.endswith("/"))

    @property
    def is_zip(self) -> bool:
        """Whether the product is a zip file."""
        return self._zip is not None

    @property
    def safe_name(self) -> str:
        """The product folder's name, e.g. ``S1A_IW_GRDH_..._6D00.SAFE``."""
        if self.is_zip:
            name = self.prefix.rstrip("/").rsplit("/", 1)[-1]
            return name or self.path.stem + ".SAFE"
        return self.root.name

    def files(self) -> list[str]:
        """Every file in the product, relative to the product folder."""
        return list(self._files)

    def exists(self, rel: str) -> bool:
        """Whether the relative path names a file in the product."""
        return _norm(rel) in self._files

    def read(self, rel: str) -> bytes:
        """The bytes of one file of the product."""
        rel = _norm(rel)
        if rel not in self._files:
            raise InputError(f"{self.path}: {rel} is missing from the product")
        try:
            if self._zip is not None:
                return self._zip.read(self.prefix + rel)
            return (self.root / rel).read_bytes()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CorruptInputError(f"{self.path}: cannot read {rel} ({exc}); the download may "
                                    f"be truncated, fetch it again") from None

    def gdal_path(self, rel: str) -> str:
        """A path GDAL can open for a file of the product (``/vsizip/`` inside zips)."""
        rel = _norm(rel)
        if self._zip is not None:
            return f"/vsizip/{self.path.resolve()}/{self.prefix}{rel}"
        return str(self.root / rel)

    def close(self) -> None:
        """Close the zip file handle, if any."""
        if self._zip is not None:
            self._zip.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_reopen"] = self.is_zip
        return state

    def __setstate__(self, state: dict) -> None:
        reopen = state.pop("_reopen", False)
        self.__dict__.update(state)
        if reopen:
            self._zip = zipfile.ZipFile(self.path)


def _norm(rel: str) -> str:
    rel = rel.replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel.lstrip("/")
