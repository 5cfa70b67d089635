"""Errors a user can cause. The CLI prints them as one line and exits with the error's ``exit_code``.

A message names what the user gave by its Python name (``epochs: must be ...``, ``give a
larger test_fraction``); ``params`` lists the names it mentions, so that the CLI can print
each as its flag (``--epochs``, ``--test-fraction``) without the Python API speaking in flags.
"""


class AekitError(Exception):
    """Base class for every error that is the user's input or situation, not a bug.

    ``params``: the parameter or config field names (``"epochs"``, ``"train.lr"``) that the
    message mentions as words of their own, one entry per mention, in any order; the CLI
    rewrites each entry's first mention not yet rewritten to its flag (:func:`aekit.cli.main.as_flags`).
    """

    exit_code = 2

    def __init__(self, *args, params: tuple[str, ...] | list[str] = ()):
        super().__init__(*args)
        self.params = tuple(params)


class ConfigError(AekitError, ValueError):
    """A config field is unknown or out of range; the message names the field."""


class DataError(AekitError):
    """A data source or file cannot be used; the message names the file and the problem."""


class DownloadError(DataError):
    """Every mirror failed for a network reason (not a bad checksum)."""


class InputError(AekitError, ValueError):
    """Arrays handed to the Python API do not fit the model (shape, channels, dtype, range)."""


class EvalError(AekitError):
    """A section of an evaluation failed; the message names it and the settings (flags) that change it."""


class RunError(AekitError):
    """A run directory is missing, incomplete, damaged or busy."""


class WriteError(AekitError, OSError):
    """A file could not be written (disk full, read-only, permission); the message names the path."""


class Diverged(AekitError):
    """Training produced a non-finite loss or weights; the last good checkpoint is kept."""

    exit_code = 3


class Interrupted(AekitError):
    """Training was stopped by the user (Ctrl-C); the message says what was saved."""

    exit_code = 130
