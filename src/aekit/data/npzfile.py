"""``.npz`` and ``.npy`` files of images, with or without labels.

- ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``: the split as given;
- ``.npz`` with ``x`` (or ``images``) and optionally ``y`` (or ``labels``): one
  set, split seeded (stratified when labelled) by ``test_fraction``;
- ``.npy``: images alone, an unlabeled set split the same way.

Images are uint8 (or whole numbers in 0..255) shaped ``(N, H, W)``,
``(N, H, W, C)`` or ``(N, C, H, W)`` with 1 or 3 channels (which axis holds
the channels is read from the shape), or ``(N, H*W)`` for square grey images.
An optional ``class_names`` array of strings names the labels.

Loaded with ``allow_pickle=False``: an archive is data, and unpickling would
run whatever code it carries. Each array's header is read first: an array that
declares more bytes than the file holds (a few bytes can declare a terabyte) is
refused before numpy allocates it.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from aekit import limits
from aekit.data.arrays import check_counts, images_from_array, labels_from_array
from aekit.data.imagedata import ImageData
from aekit.data.split import stratified_split
from aekit.errors import DataError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
IMAGE_KEYS, LABEL_KEYS = ("x", "images"), ("y", "labels")
DEFAULT_TEST_FRACTION = 0.1
_CHANNELS = (1, 3)


def load_npz(path: Path, name: str | None = None, origin: str | None = None,
             test_fraction: float = DEFAULT_TEST_FRACTION) -> ImageData:
    """Load and check an ``.npz`` archive (see the module docstring for what it may hold)."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz archive (expected a zip of x_train, y_train, x_test, y_test)")
    raw = _read_npz(path)
    class_names = [str(c) for c in raw.pop("class_names", [])]
    if all(key in raw for key in REQUIRED):
        arrays = _given_split(raw, path)
    elif any(key in raw for key in IMAGE_KEYS):
        arrays = _split(*_one_set(raw, path), test_fraction, path)
    else:
        missing = [key for key in REQUIRED if key not in raw]
        raise DataError(f"{path}: missing arrays {', '.join(missing)} (it has: {', '.join(raw) or 'none'}); "
                        "expected x_train, y_train, x_test, y_test, or x with an optional y")
    _check_class_names(arrays, class_names, path)
    return ImageData(name=name or path.stem, origin=origin or str(path), class_names=class_names, **arrays)


def load_npy(path: Path, test_fraction: float = DEFAULT_TEST_FRACTION) -> ImageData:
    """Load an ``.npy`` of images as an unlabeled set, split seeded by ``test_fraction``."""
    try:
        with open(path, "rb") as f:
            _check_fits(path, _declared_size(f, path.stat().st_size, str(path)))
        x = np.load(path, allow_pickle=False)
    except MemoryError:
        raise DataError(f"{path}: too large to load into this machine's memory") from None
    except (ValueError, OSError, EOFError) as e:
        raise _unreadable(path, e, "not a readable .npy file") from e
    return ImageData(name=path.stem, origin=str(path), **_split(images(x, str(path)), None, test_fraction, path))


def images(x: np.ndarray, where: str) -> np.ndarray:
    """Any accepted image layout (see the module docstring) as C-contiguous ``(N, C, H, W)`` uint8."""
    if x.ndim == 4:
        first, last = x.shape[1] in _CHANNELS, x.shape[3] in _CHANNELS
        if first and last:
            raise DataError(f"{where}: image shape {x.shape} is ambiguous: axis 1 and axis 3 could both hold "
                            "the channels; store the images as (N, C, H, W)")
        if not (first or last):
            raise DataError(f"{where}: image shape {x.shape} has no channel axis of 1 or 3 (axis 1 or axis 3); "
                            "store grey or RGB images as (N, H, W), (N, H, W, C) or (N, C, H, W)")
        if last:
            x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return np.ascontiguousarray(images_from_array(x, where))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            declared = 0
            for info in archive.zip.infolist():
                with archive.zip.open(info) as f:
                    declared += _declared_size(f, info.file_size, f"{path} ({info.filename})")
            _check_fits(path, declared)
            return {key: archive[key] for key in archive.files}
    except MemoryError:
        raise DataError(f"{path}: too large to load into this machine's memory") from None
    except ValueError as e:
        raise _unreadable(path, e, "cannot read") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: corrupt .npz archive ({e})") from e


def _declared_size(f: IO[bytes], size: int, where: str) -> int:
    """The bytes an ``.npy`` stream's header declares; refused when more than the ``size`` bytes it has.

    numpy allocates the declared shape before reading; a zip member cannot give more
    than its stated ``file_size``, so this bounds the memory by the data really there.
    A header numpy cannot parse counts 0 and is left for ``np.load`` to report.
    """
    try:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError):
        return 0
    declared = math.prod(shape) * dtype.itemsize
    if declared > size - f.tell():
        dims = "x".join(map(str, shape)) or "a scalar"
        raise DataError(f"{where}: its header declares a {dims} {dtype} array ({declared:,} bytes), but the "
                        f"file holds {max(size - f.tell(), 0):,} bytes after it; truncated or crafted")
    return declared


def _check_fits(path: Path, declared: int) -> None:
    """Refuse arrays larger than this machine's memory (a compressed .npz can declare them honestly)."""
    if declared > limits.ram_bytes():
        raise DataError(f"{path}: its arrays take {declared:,} bytes, more than this machine's memory "
                        f"({limits.ram_bytes():,} bytes)")


def _unreadable(path: Path, e: Exception, problem: str) -> DataError:
    if "pickle" in str(e):  # numpy's words when allow_pickle=False meets an object array
        return DataError(f"{path}: holds pickled objects, which aekit never loads; save plain numeric arrays")
    return DataError(f"{path}: {problem} ({e})")


def _given_split(raw: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for split in ("train", "test"):
        x_key, y_key = f"x_{split}", f"y_{split}"
        x = images(raw[x_key], f"{path} ({x_key})")
        y = labels_from_array(raw[y_key], f"{path} ({y_key})")
        check_counts(len(x), len(y), f"{path} ({x_key})", f"{path} ({y_key})")
        arrays[x_key], arrays[y_key] = x, y
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(
            f"{path}: x_train images are {_shape(arrays['x_train'])} but x_test images are {_shape(arrays['x_test'])}"
        )
    return arrays


def _one_set(raw: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    x_key = next(key for key in IMAGE_KEYS if key in raw)
    x = images(raw[x_key], f"{path} ({x_key})")
    y_key = next((key for key in LABEL_KEYS if key in raw), None)
    if y_key is None:
        return x, None
    y = labels_from_array(raw[y_key], f"{path} ({y_key})")
    check_counts(len(x), len(y), f"{path} ({x_key})", f"{path} ({y_key})")
    return x, y


def _split(x: np.ndarray, y: np.ndarray | None, test_fraction: float, path: Path) -> dict[str, np.ndarray | None]:
    """Seeded split: stratified when labelled, a plain random one when not."""
    train, test = stratified_split(y if y is not None else np.zeros(len(x), np.int64), test_fraction)
    if not len(train):
        raise DataError(f"{path}: no training images: all {len(x)} images are in the test split; "
                        "lower test_fraction")
    return {"x_train": x[train], "x_test": x[test],
            "y_train": None if y is None else y[train], "y_test": None if y is None else y[test]}


def _check_class_names(arrays: dict, class_names: list[str], path: Path) -> None:
    if arrays["y_train"] is None:
        if class_names:
            raise DataError(f"{path}: has class_names but no labels")
        return
    n_labels = int(max(arrays["y_train"].max(initial=0), arrays["y_test"].max(initial=0))) + 1
    if class_names and n_labels > len(class_names):
        raise DataError(f"{path}: labels go up to {n_labels - 1} but class_names names only {len(class_names)} classes")


def _shape(x: np.ndarray) -> str:
    return "x".join(str(d) for d in x.shape[1:])
