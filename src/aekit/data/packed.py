r"""The packed cache: a decoded set as one raw uint8 file that is memory-mapped, not read.

An entry is a directory holding

- ``images.u8``: every image, ``(N, C, H, W)`` uint8 in C order, the training
  images first and the test images after them, so each split is one
  contiguous slice of the file;
- ``labels.npy``: ``(N,)`` int64 in the same order (absent when unlabeled);
- ``files.json``: each image's file, relative to its folder, in the same
  order (image folders only; JSON's ``\udcXX`` escapes keep a non-UTF-8
  name's bytes);
- ``meta.json``: the counts, shape, class names, the files left out, the
  settings the set was decoded with and what it was packed from (``source``).
  It is written last, and its ``format`` marks the directory as aekit's own
  (see :func:`is_entry`).

Entries are built in a temp directory and renamed into place whole (see
:func:`aekit.data.atomic.building_dir`), so an entry that exists is complete.
Loading maps the file copy-on-write: nothing is read until a page is touched,
a set larger than memory never has to fit in it, and writing to the arrays
changes memory, never the cache.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aekit.data import atomic
from aekit.data.imagedata import ImageData
from aekit.errors import DataError
from aekit.io import fsync_file

FORMAT = "aekit-packed/1"
IMAGES, LABELS, FILES, META = "images.u8", "labels.npy", "files.json", "meta.json"


def read_meta(entry: Path) -> dict | None:
    """``entry``'s ``meta.json``, or ``None`` when it is not a packed entry of this format."""
    try:
        meta = json.loads((entry / META).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def is_entry(path: Path) -> bool:
    """Whether ``path`` is a directory (not a link) that aekit wrote as a packed entry: only these are removed."""
    return path.is_dir() and not path.is_symlink() and read_meta(path) is not None


def read(entry: Path) -> ImageData | None:
    """The set packed at ``entry``, or ``None`` when there is no complete entry of this format."""
    meta = read_meta(entry)
    if meta is None:
        return None
    try:
        n_train, n_test, shape = meta["n_train"], meta["n_test"], tuple(meta["shape"])
        if (entry / IMAGES).stat().st_size != (n_train + n_test) * int(np.prod(shape)):
            return None
        images = np.memmap(entry / IMAGES, np.uint8, "c", shape=(n_train + n_test, *shape))
        labels = np.load(entry / LABELS, allow_pickle=False) if meta["labeled"] else None
        files = _read_files(entry, meta, n_train + n_test)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    _touch(entry / META)
    y_train, y_test = (labels[:n_train], labels[n_train:]) if labels is not None else (None, None)
    return ImageData(
        name=meta["name"], origin=meta["origin"], x_train=images[:n_train], y_train=y_train,
        x_test=images[n_train:], y_test=y_test, class_names=meta["class_names"],
        skipped=[tuple(item) for item in meta["skipped"]],
        paths_train=None if files is None else files[:n_train], paths_test=None if files is None else files[n_train:],
    )


def _read_files(entry: Path, meta: dict, n: int) -> list[str] | None:
    """The images' file paths: ``files.json``, or in an entry packed before it, the list in its settings;
    ``None`` for an entry without files (CIFAR-10) or a list that does not match the images.
    """
    if (entry / FILES).exists():
        files = json.loads((entry / FILES).read_text())
    else:
        files = meta.get("settings", {}).get("files")
    return files if isinstance(files, list) and len(files) == n and all(isinstance(f, str) for f in files) else None


def _touch(path: Path) -> None:
    """Mark the entry as used now (``aekit cache list`` shows it, ``clear --older-than`` goes by it)."""
    try:
        os.utime(path)
    except OSError:  # a read-only cache still loads
        pass


def read_or_build(entry: Path, build: Callable[[Path], None],
                  replaces: Callable[[Path], bool]) -> tuple[ImageData, bool]:
    """The set at ``entry``, built first when there is none; and whether it was built.

    ``build(directory)`` fills a temp directory (with a :class:`Writer`) that
    then becomes ``entry``; the entries beside it for which ``replaces(path)``
    is true are older versions of the same set and are removed.
    """
    data = read(entry)
    if data is not None:
        return data, False
    shutil.rmtree(entry, ignore_errors=True)  # a damaged or older-format entry, if any
    with atomic.building_dir(entry) as tmp:
        build(tmp)
    data = read(entry)
    if data is None:
        raise DataError(f"{entry}: the packed set just written cannot be read back")
    for old in entry.parent.iterdir():
        if old.name != entry.name and not old.name.startswith(".") and is_entry(old) and replaces(old):
            shutil.rmtree(old, ignore_errors=True)
    return data, True


class Writer:
    """Fills one entry's files inside a directory being built (see :func:`atomic.building_dir`).

    Parameters
    ----------
    directory : Path
        The (temp) entry directory.
    n : int
        Image slots to allocate, some of which may later be dropped.
    shape : (C, H, W)
    """

    def __init__(self, directory: Path, n: int, shape: tuple[int, int, int]):
        self.directory, self.n, self.shape = directory, n, tuple(shape)
        self.path = directory / IMAGES
        _allocate(self.path, n * self.image_bytes)

    @property
    def image_bytes(self) -> int:
        return int(np.prod(self.shape))

    def open(self) -> np.memmap:
        """The images file as a writable ``(n, C, H, W)`` map."""
        return np.memmap(self.path, np.uint8, "r+", shape=(self.n, *self.shape))

    def drop(self, failed: list[int]) -> np.ndarray:
        """Remove the slots in ``failed`` and close the gaps in place; return the kept slot indices."""
        keep = np.setdiff1d(np.arange(self.n), failed)
        if len(keep) < self.n:
            images = self.open()
            step = max(1, (64 << 20) // self.image_bytes)  # about 64 MB a block
            # keep[i] >= i, so each block reads from slots no earlier block has overwritten.
            for start in range(0, len(keep), step):
                block = keep[start:start + step]
                images[start:start + len(block)] = images[block]
            images.flush()
            del images
            os.truncate(self.path, len(keep) * self.image_bytes)
            self.n = len(keep)
        return keep

    def finish(self, *, name: str, origin: str, n_train: int, labels: np.ndarray | None,
               class_names: list[str], skipped: list[tuple[str, str]], settings: dict, source: str,
               files: list[str] | None = None, key: dict | None = None) -> None:
        """Write labels, file paths and metadata, after the images are safely on disk.

        ``source`` is the absolute path the set was packed from; ``key`` what a
        later load compares to reuse the entry (image folders).
        """
        fsync_file(self.path)
        if labels is not None:
            np.save(self.directory / LABELS, np.asarray(labels, np.int64), allow_pickle=False)
        if files is not None:
            (self.directory / FILES).write_text(json.dumps(list(files)))  # ASCII: \udcXX keeps non-UTF-8 bytes
        meta = {
            "format": FORMAT, "name": name, "origin": origin, "source": source, "n_train": int(n_train),
            "n_test": int(self.n - n_train), "shape": list(self.shape), "labeled": labels is not None,
            "class_names": list(class_names), "skipped": [list(item) for item in skipped], "settings": settings,
            **({"key": key} if key is not None else {}),
        }
        (self.directory / META).write_text(json.dumps(meta, indent=1))


def _allocate(path: Path, nbytes: int) -> None:
    """Create the file at full size, reserving the disk space now.

    Reserving matters: a worker writing into a memory-mapped file on a full
    disk is killed by SIGBUS, where ``posix_fallocate`` fails with a message.
    """
    with open(path, "wb") as f:
        if not nbytes:
            return
        try:
            os.posix_fallocate(f.fileno(), 0, nbytes)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise DataError(f"{path.parent.parent}: not enough disk space for the packed cache "
                                f"({nbytes / 1e6:,.0f} MB)") from e
            f.truncate(nbytes)  # a file system without fallocate
        except AttributeError:  # no posix_fallocate on this platform
            f.truncate(nbytes)
