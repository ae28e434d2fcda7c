"""One exception hierarchy for sarflow.

A :class:`SarflowError` is a *user* error: bad config, missing or corrupt input, a tool
that is not installed.  The CLI prints its message on one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SarflowError(Exception):
    """Base of every error the user can fix; the message says what to do."""

    exit_code = 2

    def one_line(self) -> str:
        """The message folded onto a single line, as the CLI prints it."""
        return " ".join(str(self).split())


class ConfigError(SarflowError):
    """An event configuration value is invalid (names the key, the value, what is allowed)."""


class InputError(SarflowError):
    """An input file or folder is missing, unreadable or of the wrong kind."""


class CorruptInputError(InputError):
    """An input exists but cannot be decoded (truncated zip, broken XML, bad GeoTIFF)."""


class GridMismatchError(SarflowError):
    """Rasters that must share the event grid do not (CRS, spacing, origin or size differ)."""


class DependencyError(SarflowError):
    """An optional external tool or package (SNAP's gpt, TensorFlow) is missing."""


class ProcessingError(SarflowError):
    """A processing step failed in a way the user can act on (message says how)."""


class ModelError(SarflowError):
    """A model file does not fit the input it is applied to (group, bands, patch size)."""
