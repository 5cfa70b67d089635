"""The user cache directory that downloads and packed sets go to, and what named sources share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aekit.errors import DataError

CACHE_ENV = "AEKIT_CACHE"


def default_cache_dir() -> Path:
    """Where downloads go: ``$AEKIT_CACHE``, else ``$XDG_CACHE_HOME/aekit``, else ``~/.cache/aekit``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "aekit"
    return Path.home() / ".cache" / "aekit"


@dataclass(frozen=True)
class CachedSource:
    """A named source kept under its own folder of the cache (the base of the downloadable ones)."""

    name: str
    description: str

    def cache_dir(self) -> Path:
        return default_cache_dir() / self.name

    @staticmethod
    def data_root(data_dir: str | os.PathLike | None) -> Path | None:
        """``data_dir`` as a path, checked to exist: a typo must not turn into a silent download."""
        if data_dir is None:
            return None
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"{data_dir}: data directory not found")
        return root
