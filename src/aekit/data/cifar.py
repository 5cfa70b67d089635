"""CIFAR-10 from its official python archive, unpacked once into the packed cache.

The archive resolves, first hit wins:

1. ``data_dir`` if given: ``cifar-10-python.tar.gz`` in it or in
   ``data_dir/cifar10``, or the unpacked ``cifar-10-batches-py`` folder
   (torchvision's layout);
2. the user cache, ``default_cache_dir()/cifar10``;
3. a download from the official site into the cache, MD5 checked.

Its batches are pickles: they are read with :mod:`aekit.data.safe_pickle`,
which builds numpy arrays and plain containers and nothing else, straight
from the archive (nothing is extracted to disk). The images are then packed
(see :mod:`aekit.data.packed`) into ``default_cache_dir()/cifar10/unpacked-<key>``,
keyed by the archive's path, size and modification time, so later loads map
that file instead of reading the archive.
"""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aekit.data import packed
from aekit.data.cache import CachedSource
from aekit.data.download import fetch, mirrors_from_env
from aekit.data.imagedata import ImageData
from aekit.data.safe_pickle import loads
from aekit.errors import DataError, DownloadError
from aekit.io import Log

_KEY_VERSION = 1
_MAX_MEMBERS = 1000  # entries read from an archive; the official one holds 9


@dataclass(frozen=True)
class CifarSource(CachedSource):
    """A CIFAR-style set: pickled batches of ``(n, 3*H*W)`` uint8 rows in a ``.tar.gz``.

    Each row holds the red plane, then green, then blue, each row-major, so
    it reshapes directly to ``(3, H, W)``.
    """

    filename: str
    md5: str
    mirrors: tuple[str, ...]
    download_mb: int
    folder: str  # the archive's top folder
    train_batches: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_batches: tuple[str, ...] = ("test_batch",)
    meta_file: str = "batches.meta"
    n_train: int = 50_000
    n_test: int = 10_000
    image_shape: tuple[int, int, int] = (3, 32, 32)

    def describe(self, data_dir: str | Path | None = None) -> dict:
        """Where the set would load from now, without downloading or reading anything."""
        found = self._find(data_dir)
        row = {"name": self.name, "description": self.description}
        if found is not None:
            return {**row, "status": "ok", "where": str(found)}
        return {**row, "status": "missing", "where": f"not downloaded; `aekit train --dataset {self.name}` downloads "
                f"it ({self.download_mb} MB), or {self._how_to_provide()}"}

    def _find(self, data_dir: str | Path | None) -> Path | None:
        places = []
        if data_dir is not None:
            root = Path(data_dir).expanduser()  # not data_root(): describe() must not raise for a missing one
            places += [root / self.filename, root / self.name / self.filename, root / self.folder,
                       root / self.name / self.folder]
        places.append(self.cache_dir() / self.filename)
        return next((p for p in places if (p.is_dir() if p.name == self.folder else p.is_file())), None)

    def _obtain(self, progress: bool, log: Log) -> Path:
        try:
            path = fetch(self.filename, self.md5, mirrors_from_env() or self.mirrors, self.cache_dir(),
                         progress=progress)
        except DownloadError as e:
            raise DownloadError(f"{self.name}: {e}; {self._how_to_provide()}") from e
        log(f"{self.name}: downloaded to {self.cache_dir()}")
        return path

    def _how_to_provide(self) -> str:
        return (f"put {self.filename} (from {self.mirrors[0]}) in {self.cache_dir()} or pass --data-dir "
                f"with it or its unpacked {self.folder} folder")

    def _read(self, source: Path, log: Log) -> ImageData:
        """The archive's (or folder's) images, unpacked once into the cache and mapped from there."""
        st = source.stat()
        key = hashlib.sha256(repr((_KEY_VERSION, str(source.resolve()), st.st_size, st.st_mtime_ns)).encode())
        entry = self.cache_dir() / f"unpacked-{key.hexdigest()[:16]}"
        data, built = packed.read_or_build(entry, lambda directory: self._unpack(source, directory),
                                           replaces=lambda old: old.name.startswith("unpacked-"))
        if built:
            log(f"{self.name}: unpacked {source} into {entry}")
        return data

    def _unpack(self, source: Path, directory: Path) -> None:
        """Read every batch from ``source`` (archive or folder) and pack them in order into ``directory``."""
        # no member can be larger than all the set's images with generous room for the pickle around them
        max_bytes = (self.n_train + self.n_test) * (int(np.prod(self.image_shape)) + 64) + 2**20
        members = _read_members(source, {*self.train_batches, *self.test_batches, self.meta_file}, max_bytes)
        batches = [self._batch(members, name, source) for name in (*self.train_batches, *self.test_batches)]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        n_train = sum(len(b[1]) for b in batches[:len(self.train_batches)])
        if (n_train, len(y) - n_train) != (self.n_train, self.n_test):
            raise DataError(f"{source}: not {self.name}: {n_train} training and {len(y) - n_train} test images, "
                            f"expected {self.n_train} and {self.n_test}")
        class_names = self._class_names(members, source)
        if y.max(initial=0) >= len(class_names):
            raise DataError(f"{source}: label {y.max()} found, but {self.meta_file} names {len(class_names)} classes")
        writer = packed.Writer(directory, len(x), self.image_shape)
        writer.open()[:] = x.reshape(len(x), *self.image_shape)  # (N, 3*H*W) -> (N, 3, H, W)
        writer.finish(name=self.name, origin=str(source), n_train=n_train, labels=y, class_names=class_names,
                      skipped=[], settings={}, source=str(source.resolve()))

    def _batch(self, members: dict[str, bytes], name: str, source: Path) -> tuple[np.ndarray, np.ndarray]:
        where = f"{source} ({name})"
        batch = _plain_keys(loads(members[name], where), where)
        data, labels = batch.get("data"), batch.get("labels")
        size = int(np.prod(self.image_shape))
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == size):
            raise DataError(f"{where}: not a CIFAR batch: expected 'data' as uint8 rows of {size} pixels")
        if not isinstance(labels, list) or len(labels) != len(data) or not all(isinstance(v, int) and v >= 0
                                                                             for v in labels):
            raise DataError(f"{where}: not a CIFAR batch: expected {len(data)} 'labels', whole numbers from 0")
        return data, np.asarray(labels, np.int64)

    def _class_names(self, members: dict[str, bytes], source: Path) -> list[str]:
        where = f"{source} ({self.meta_file})"
        names = _plain_keys(loads(members[self.meta_file], where), where).get("label_names")
        if not isinstance(names, list) or not names:
            raise DataError(f"{where}: no 'label_names' list")
        return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def _read_members(source: Path, wanted: set[str], max_bytes: int) -> dict[str, bytes]:
    """The files named ``wanted`` (by base name) from a ``.tar.gz`` or a folder.

    A file over ``max_bytes``, or an archive of more than :data:`_MAX_MEMBERS` entries,
    is refused before it is read: a small archive can declare a huge member or
    millions of empty ones.
    """
    found = {}
    if source.is_dir():
        for name in wanted:
            if (source / name).is_file():
                _check_member_size(source / name, (source / name).stat().st_size, max_bytes)
                found[name] = (source / name).read_bytes()
    else:
        try:
            with tarfile.open(source, "r:gz") as tar:
                for count, member in enumerate(tar, 1):
                    if count > _MAX_MEMBERS:
                        raise DataError(f"{source}: more than {_MAX_MEMBERS} entries; not a CIFAR archive")
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in wanted:
                        _check_member_size(f"{source} ({member.name})", member.size, max_bytes)
                        found[base] = tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise DataError(f"{source}: corrupt archive ({e}); delete it and aekit will fetch a fresh copy") from e
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{source}: missing {', '.join(missing)}")
    return found


def _check_member_size(where, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DataError(f"{where}: {size:,} bytes, more than the {max_bytes:,} any batch of this set can be")


def _plain_keys(obj, where: str) -> dict:
    """A batch dict with str keys: Python 2 pickles give str or bytes keys depending on how they are read."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a CIFAR batch (expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


CIFAR10 = CifarSource(
    name="cifar10",
    description="CIFAR-10 tiny colour photos, 50,000 train / 10,000 test, 3x32x32, 10 classes",
    filename="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    download_mb=163,
    folder="cifar-10-batches-py",
)
