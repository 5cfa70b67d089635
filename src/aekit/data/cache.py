"""The user cache directory that downloads and packed sets go to, what named sources share, and the
packed sets in it listed and cleared (:func:`cache_entries`, :func:`clear_cache`; ``aekit cache``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aekit.errors import DataError
from aekit.io import Log
from aekit.io import log as log_to_stderr

if TYPE_CHECKING:
    from aekit.data.imagedata import ImageData

CACHE_ENV = "AEKIT_CACHE"
_CHANNEL_WORDS = {1: "grey", 3: "rgb", 4: "rgba"}


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


# --------------------------------------------------------------------------- the packed sets in the cache

@dataclass(frozen=True)
class CacheEntry:
    """One packed set in the cache (an image folder, or CIFAR-10 unpacked): what :func:`cache_entries` lists.

    ``source`` is what it was packed from (the folder's absolute path, or the archive); ``settings`` how it
    was decoded (image folders: ``size``, ``channels``, ``resize``, ``background``, ``test_fraction``);
    ``used`` when it was last loaded or built, in seconds since the epoch.
    """

    path: Path
    kind: str  # "folder", or the named source it belongs to ("cifar10")
    source: str
    settings: dict
    images: int
    shape: tuple[int, int, int]  # (C, H, W)
    nbytes: int
    used: float

    def describe(self) -> str:
        """The settings in words: ``32x32 rgb, crop, white background, test 0.1``."""
        s = self.settings
        if "size" not in s:
            return ""
        words = [f"{s['size'][0]}x{s['size'][1]} {_CHANNEL_WORDS.get(s.get('channels'), 'grey')}", s.get("resize", "")]
        words.append({255: "white background", 0: "black background"}.get(s.get("background"), ""))
        if s.get("test_fraction") is not None:
            words.append(f"test {s['test_fraction']:g}")
        return ", ".join(w for w in words if w)


def cache_entries(cache_dir: str | os.PathLike | None = None) -> list[CacheEntry]:
    """The packed sets in the cache (``default_cache_dir()`` unless given), most recently used first.

    Only directories that aekit wrote as packed entries are listed (their ``meta.json`` says so); the
    downloads and the evaluation baselines beside them are not entries.
    """
    from aekit.data import packed

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found = []
    for place in _subdirs(root):
        for path in _subdirs(place):
            meta = packed.read_meta(path) if packed.is_entry(path) else None
            if meta is not None:
                with contextlib.suppress(OSError):  # removed meanwhile
                    found.append(_entry(path, meta))
    return sorted(found, key=lambda e: -e.used)


def clear_cache(entries: list[CacheEntry] | None = None, *, folder: str | os.PathLike | None = None,
                older_than: float | None = None, cache_dir: str | os.PathLike | None = None,
                dry_run: bool = False) -> list[CacheEntry]:
    """Remove packed sets from the cache; returns those removed (with ``dry_run``: those that would be).

    By default every entry of :func:`cache_entries`; ``folder`` keeps to the entries packed from that
    folder (or archive), ``older_than`` (seconds) to those not used for that long. Only directories that
    aekit wrote as packed entries are removed, never anything else in the cache directory; so are the
    temp directories of builds whose process is gone.
    """
    from aekit.data import atomic, packed

    chosen = cache_entries(cache_dir) if entries is None else list(entries)
    if folder is not None:
        wanted = str(Path(folder).expanduser().resolve())
        chosen = [e for e in chosen if e.source == wanted]
    if older_than is not None:
        chosen = [e for e in chosen if time.time() - e.used >= older_than]
    if dry_run:
        return chosen
    for entry in chosen:
        if packed.is_entry(entry.path):  # checked again: only what aekit wrote
            shutil.rmtree(entry.path, ignore_errors=True)
    for place in {entry.path.parent for entry in chosen}:
        atomic.remove_stale(place)
    return chosen


def _subdirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir(follow_symlinks=False) and e.name[0] != "."]
    except OSError:  # no cache yet, or not readable
        return []


def _entry(path: Path, meta: dict) -> CacheEntry:
    settings = {k: v for k, v in meta.get("settings", {}).items() if k != "files"}  # where older entries kept them
    if isinstance(meta.get("key"), dict) and "test_fraction" in meta["key"]:
        settings["test_fraction"] = meta["key"]["test_fraction"]
    nbytes = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    return CacheEntry(
        path=path, kind="folder" if path.parent.name == "folders" else path.parent.name,
        source=meta.get("source", meta.get("origin", "")), settings=settings,
        images=int(meta.get("n_train", 0)) + int(meta.get("n_test", 0)), shape=tuple(meta.get("shape", ())),
        nbytes=nbytes, used=(path / "meta.json").stat().st_mtime,
    )
