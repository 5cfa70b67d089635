"""``.npz`` archives holding ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Loaded with ``allow_pickle=False``: an archive is data, and unpickling would
run whatever code it carries. An optional ``class_names`` array of strings
names the labels.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from aekit.data.arrays import check_counts, images_from_array, labels_from_array
from aekit.data.imagedata import ImageData
from aekit.errors import DataError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: Path, name: str | None = None, origin: str | None = None) -> ImageData:
    """Load and check an ``.npz`` archive.

    Images may be ``(N, H*W)``, ``(N, H, W)`` or ``(N, C, H, W)``, uint8 or
    whole numbers in 0..255; labels ``(N,)`` non-negative integers.
    """
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz archive (expected a zip of x_train, y_train, x_test, y_test)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in REQUIRED if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)} (it has: {', '.join(archive.files) or 'none'})"
                )
            raw = {key: archive[key] for key in REQUIRED}
            class_names = [str(c) for c in archive["class_names"]] if "class_names" in archive.files else []
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(f"{path}: holds pickled objects, which aekit never loads; save plain numeric arrays") from e
        raise DataError(f"{path}: cannot read ({e})") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: corrupt .npz archive ({e})") from e

    arrays = {}
    for split in ("train", "test"):
        x_key, y_key = f"x_{split}", f"y_{split}"
        x = images_from_array(raw[x_key], f"{path} ({x_key})")
        y = labels_from_array(raw[y_key], f"{path} ({y_key})")
        check_counts(len(x), len(y), f"{path} ({x_key})", f"{path} ({y_key})")
        arrays[x_key], arrays[y_key] = x, y
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(
            f"{path}: x_train images are {_shape(arrays['x_train'])} but x_test images are {_shape(arrays['x_test'])}"
        )
    n_labels = int(max(arrays["y_train"].max(initial=0), arrays["y_test"].max(initial=0))) + 1
    if class_names and n_labels > len(class_names):
        raise DataError(f"{path}: labels go up to {n_labels - 1} but class_names names only {len(class_names)} classes")
    return ImageData(name=name or path.stem, origin=origin or str(path), class_names=class_names, **arrays)


def _shape(x: np.ndarray) -> str:
    return "x".join(str(d) for d in x.shape[1:])
