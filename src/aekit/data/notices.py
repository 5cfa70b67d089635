"""Where the data layer's one-line notices go: aekit's ``log`` (stderr) unless a caller passes its own."""

from aekit.io import Log
from aekit.io import log as log_to_stderr

__all__ = ["Log", "log_to_stderr"]
