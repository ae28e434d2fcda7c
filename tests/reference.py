"""The test side of the independent references (sarsen, xarray-sentinel) in ``.venv-ref``.

:class:`Reference` starts ``tests/reference_runner.py`` in the reference virtualenv once and
sends it requests over a pipe, so rasterio's bundled GDAL never shares a process with the
system GDAL that sarflow uses. Arrays go both ways as ``.npy`` files in a private folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "reference_runner.py"


class ReferenceError(RuntimeError):
    """The reference side failed on a request (its traceback is in the message)."""


def reference_python() -> Path:
    """The reference venv's interpreter: ``$SARFLOW_REFERENCE_PYTHON`` or ``.venv-ref``."""
    env = os.environ.get("SARFLOW_REFERENCE_PYTHON")
    return Path(env) if env else ROOT / ".venv-ref" / "bin" / "python"


class Reference:
    """A running reference process; ``call(name, **args)`` returns its result dict."""

    def __init__(self, python: Path | None = None) -> None:
        python = python or reference_python()
        if not python.exists():
            raise FileNotFoundError(f"reference virtualenv missing: {python} "
                                    "(run `make test`, which sets it up)")
        self._folder = tempfile.TemporaryDirectory(prefix="sarflow-ref-")
        self._serial = 0
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self._proc = subprocess.Popen([str(python), "-u", str(RUNNER), "serve"], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      text=True)

    def call(self, name: str, **args: Any) -> dict:
        """Run one request; ndarray arguments and results travel as ``.npy`` files."""
        folder = Path(self._folder.name)
        sent = {k: self._put(folder, k, v) for k, v in args.items()}
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"name": name, "args": sent, "folder": str(folder)})
                               + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise ReferenceError(f"reference process ended during {name!r} "
                                 f"(exit status {self._proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise ReferenceError(f"{name}: {reply['error']}\n{reply['traceback']}")
        return {k: self._get(v) for k, v in reply["result"].items()}

    def _put(self, folder: Path, key: str, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            self._serial += 1
            path = folder / f"arg-{self._serial}-{key}.npy"
            np.save(path, value, allow_pickle=False)
            return {"npy": str(path)}
        return str(value) if isinstance(value, Path) else value

    @staticmethod
    def _get(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"npy"}:
            arr = np.load(value["npy"], allow_pickle=False)
            os.unlink(value["npy"])
            return arr
        return value

    def close(self) -> None:
        """Let the reference process finish and remove the exchange folder."""
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._folder.cleanup()

    def __enter__(self) -> "Reference":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
