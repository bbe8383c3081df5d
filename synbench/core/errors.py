"""Errors raised for bad input. Each message is one line: the problem, the value, the fix."""

__all__ = [
    "SynBenchError",
    "SpecError",
    "EncoderError",
    "StoreError",
    "IncompleteError",
    "DataError",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USER",
]

EXIT_OK, EXIT_FAILED, EXIT_USER = 0, 1, 2  # the CLI's exit codes: success, failure or failed audit, user error


class SynBenchError(Exception):
    """Base class for user-facing errors; the CLI prints the message and exits 2."""


class SpecError(SynBenchError, ValueError):
    """A benchmark spec (preset, file or override) is invalid."""


class EncoderError(SynBenchError, ValueError):
    """A model reference cannot be resolved into a working encoder."""


class StoreError(SynBenchError, OSError):
    """The artifact root cannot be used (unwritable, foreign files, path escapes it)."""


class IncompleteError(StoreError):
    """A stored artifact is missing pieces; reading it would return fill values."""


class DataError(SynBenchError, ValueError):
    """An encoder produced unusable output (NaN/Inf, wrong rank, wrong batch size)."""
