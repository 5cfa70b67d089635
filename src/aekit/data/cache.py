"""The user cache directory that downloads and packed sets go to, and what named sources share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aekit.errors import DataError
from aekit.io import Log
from aekit.io import log as log_to_stderr

if TYPE_CHECKING:
    from aekit.data.imagedata import ImageData

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
    """A named source kept under its own folder of the cache (the base of the downloadable ones).

    :meth:`load` goes the same way for each: find the set where the user put it or in the
    cache, else download it (unless downloading is off), then read it. A source says how
    with ``_find`` (what it found, or ``None``), ``_obtain`` (the download; ``None`` when
    nothing could be reached and it has announced its ``_stand_in``, another set to load
    instead), ``_read``, ``_looked_in`` (where it looked, for the error message) and
    ``_how_to_provide`` (what the user can do).
    """

    name: str
    description: str

    def load(self, data_dir: str | os.PathLike | None = None, *, download: bool = True, progress: bool = False,
             log: Log = log_to_stderr) -> ImageData:
        """Resolve the set (see the source's module docstring), read it and check it."""
        self.data_root(data_dir)
        found = self._find(data_dir)
        if found is None:
            if not download:
                raise DataError(f"{self.name}: not found{self._looked_in(data_dir)}, and downloading is off; "
                                f"{self._how_to_provide()}")
            found = self._obtain(progress, log)
            if found is None:
                return self._stand_in(download=download, progress=progress, log=log)
        return self._read(found, log)

    def _find(self, data_dir: str | os.PathLike | None) -> Any:
        raise NotImplementedError

    def _obtain(self, progress: bool, log: Log) -> Any:
        raise NotImplementedError

    def _read(self, found: Any, log: Log) -> ImageData:
        raise NotImplementedError

    def _stand_in(self, **load_args) -> ImageData:
        raise NotImplementedError(f"{self.name}: no other set stands in for this one")

    def _looked_in(self, data_dir: str | os.PathLike | None) -> str:
        return ""

    def _how_to_provide(self) -> str:
        raise NotImplementedError

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
