"""Reading the member list of a downloaded zip, with the one error users see when it is
broken (used by the scene catalog and by the HyP3 reader)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import CorruptInputError


def zip_names(path: Path) -> list[str]:
    """The member names of the zip at ``path``; CorruptInputError when it cannot be read."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CorruptInputError(f"{path.name}: not a readable zip file "
                                f"({' '.join(str(exc).split())}); download it again") from None
