"""Signals for tests that interrupt a child process like Ctrl-C in a terminal."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for a child that must handle SIGINT as in a terminal.  A test run
    launched in the background by a shell without job control inherits SIGINT ignored, and
    so would the child: Python then installs no KeyboardInterrupt handler and the Ctrl-C
    the test sends is lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
