"""A quiet console: TensorFlow's C++ log lines and library warnings kept off the terminal.

TensorFlow (2.16+) logs through Abseil from C++ straight to file descriptor 2, and before
``absl::InitializeLog()`` (which Python never calls) Abseil writes every message there,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says: oneDNN notices at import, "NodeDef mentions
attribute ..." during ``fit``.  No setting silences them, so :class:`NativeLogFilter`
puts a pipe on descriptor 2 and a thread forwards every line except those in Abseil's
and TensorFlow's log formats to the real stderr.  Python's own ``sys.stderr`` is moved to
a copy of the real descriptor, so rich still sees a terminal; child processes (Dask
workers) inherit the pipe and are filtered too.  :func:`quiet_console` installs it
(with ``-vv`` the CLI leaves everything through).
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import select
import sys
import threading
import warnings

NATIVE_LOG_LINE = re.compile(
    rb"^(?:"
    rb"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.\-]+:\d+\] "            # Abseil
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./\-]+:\d+\] "   # TensorFlow < 2.16
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb")")
"""A line that TensorFlow's (or another Abseil user's) C++ runtime logged."""

NOISY_LOGGERS = ("tensorflow", "absl", "h5py")
NOISY_WARNING_MODULES = r"(keras|tensorflow|absl|tf_keras)(\.|$)"


def is_native_log_line(line: bytes) -> bool:
    """Whether ``line`` is a C++ log line of TensorFlow / Abseil."""
    return NATIVE_LOG_LINE.match(line) is not None


class NativeLogFilter:
    """Filters descriptor 2 of this process (and of children that inherit it): lines for
    which ``drop`` is true are discarded, the rest reach the original stderr unchanged."""

    def __init__(self, drop=is_native_log_line) -> None:
        self.drop = drop
        self._saved: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None
        self._old_stderr = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> "NativeLogFilter":
        """Put the pipe on descriptor 2 and start forwarding (idempotent)."""
        if self.active:
            return self
        with _suppress_oserror():
            sys.stderr.flush()
        self._saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._read = read
        self._old_stderr = sys.stderr
        sys.stderr = _text_stream(self._saved, self._old_stderr)
        self._thread = threading.Thread(target=self._forward, name="sarflow-stderr-filter",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Give descriptor 2 back to the original stderr and forward what is pending."""
        if not self.active:
            return
        with _suppress_oserror():
            sys.stderr.flush()
        os.dup2(self._saved, 2)          # closes this process's write end of the pipe
        if self._thread is not None:
            self._thread.join(timeout=2.0)  # ends at EOF unless a child still holds the pipe
        if sys.stderr is not self._old_stderr:
            sys.stderr = self._old_stderr
        os.close(self._saved)
        self._saved = None

    def _forward(self) -> None:
        pending = b""
        out = self._saved
        while True:
            ready, _, _ = select.select([self._read], [], [], 0.2)
            if not ready:                 # a partial line that waited long enough goes out
                if pending and not self.drop(pending):
                    _write_all(out, pending)
                    pending = b""
                continue
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                if pending and not self.drop(pending):
                    _write_all(out, pending)
                os.close(self._read)
                return
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not self.drop(line))
            if kept:
                _write_all(out, kept)


def _write_all(fd: int | None, data: bytes) -> None:
    if fd is None:
        return
    with _suppress_oserror():
        while data:
            data = data[os.write(fd, data):]


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        return exc_type is not None and issubclass(exc_type, (OSError, ValueError))


def _text_stream(fd: int, like) -> io.TextIOWrapper:
    """A line-buffered text stream on ``fd`` with the encoding of the stream it replaces."""
    encoding = getattr(like, "encoding", None) or "utf-8"
    errors = getattr(like, "errors", None) or "backslashreplace"
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=encoding,
                            errors=errors, line_buffering=True)


_FILTER = NativeLogFilter()


def quiet_console(verbosity: int) -> None:
    """Below ``-vv`` (``verbosity`` < 2): no TensorFlow C++ log lines, no TensorFlow /
    Keras Python warnings or info logs on the console.  Call before TensorFlow loads."""
    if verbosity >= 2:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=NOISY_WARNING_MODULES)
    _FILTER.start()
