"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class AekitError(Exception):
    """Base class for every error that is the user's input, not a bug."""


class ConfigError(AekitError, ValueError):
    """A config field is unknown or out of range; the message names the field."""


class DataError(AekitError):
    """A data source or file cannot be used; the message names the file and the problem."""


class DownloadError(DataError):
    """Every mirror failed for a network reason (not a bad checksum)."""


class RunError(AekitError):
    """A run directory is missing or incomplete."""
