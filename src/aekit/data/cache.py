"""The user cache directory that downloads and packed sets go to."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "AEKIT_CACHE"


def default_cache_dir() -> Path:
    """Where downloads go: ``$AEKIT_CACHE``, else ``$XDG_CACHE_HOME/aekit``, else ``~/.cache/aekit``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "aekit"
    return Path.home() / ".cache" / "aekit"
