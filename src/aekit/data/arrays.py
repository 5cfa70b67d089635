"""Turn raw arrays from any file format into ImageData's uint8 images and int64 labels.

Every format (IDX, CSV, ``.npz``) ends here, so the checks on pixel values,
image shapes and label counts are written once and their messages read alike.
"""

from __future__ import annotations

import math

import numpy as np

from aekit import limits
from aekit.errors import DataError


def images_from_array(x: np.ndarray, where: str) -> np.ndarray:
    """Check pixel values and reshape to ``(N, C, H, W)`` uint8.

    Parameters
    ----------
    x : ndarray
        ``(N, D)`` with ``D`` a perfect square (flattened square images),
        ``(N, H, W)`` or ``(N, C, H, W)``; uint8, or integers / whole-number
        floats in ``0..255``.
    where : str
        The file (and array) this came from, for error messages.

    Returns
    -------
    ndarray of shape ``(N, C, H, W)``, dtype uint8.
    """
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1] or side == 0:
            raise DataError(
                f"{where}: wrong image size: {x.shape[1]} pixel columns is not a square image (28x28 needs 784)"
            )
        x = x.reshape(len(x), 1, side, side)  # (N, D) -> (N, 1, H, W)
    elif x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif x.ndim != 4:
        raise DataError(f"{where}: images have shape {x.shape}; expected (N, H*W), (N, H, W) or (N, C, H, W)")
    too_many = limits.IMAGE_PIXELS.exceeded(x.shape[2] * x.shape[3])
    if too_many:
        raise DataError(f"{where}: images of {x.shape[3]}x{x.shape[2]} are {too_many}")
    return checked_uint8(x, where)


def checked_uint8(x: np.ndarray, where: str) -> np.ndarray:
    """Return ``x`` as uint8 after checking every value is a whole number in 0..255."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: pixel values have type {x.dtype}; expected uint8 or integers in 0..255")
    if x.size:
        lo, hi = x.min(), x.max()
        if np.issubdtype(x.dtype, np.floating):
            if not np.isfinite(x).all():
                raise DataError(f"{where}: pixel values include NaN or infinity")
            if not (x == np.round(x)).all():
                # A float array with fractions is almost always already scaled; taking it
                # as 0..255 would silently train on near-black images.
                hint = "; it looks scaled to [0, 1]: multiply by 255" if lo >= 0 and hi <= 1 else ""
                raise DataError(f"{where}: pixel values are not whole numbers in 0..255{hint}")
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: pixel values range {_num(lo)}..{_num(hi)}, outside 0..255")
    return x.astype(np.uint8)


def labels_from_array(y: np.ndarray, where: str) -> np.ndarray:
    """Check labels are whole numbers from 0 to below the class limit and return them as ``(N,)`` int64.

    The limit (:data:`aekit.limits.CLASSES`) keeps a label such as 10**12 from asking
    for that many class names.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; expected (N,)")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{where}: labels have type {y.dtype}; expected integers")
    if y.size:
        if np.issubdtype(y.dtype, np.floating) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{where}: labels are not whole numbers")
        if y.min() < 0:
            raise DataError(f"{where}: labels include the negative value {_num(y.min())}")
        too_many = limits.CLASSES.exceeded(int(y.max()) + 1)
        if too_many:
            raise DataError(f"{where}: labels go up to {_num(y.max())}: {too_many}")
    return y.astype(np.int64)


def check_counts(n_images: int, n_labels: int, images_where: str, labels_where: str) -> None:
    """Raise when an image set and its labels differ in length."""
    if n_images != n_labels:
        raise DataError(
            f"{labels_where}: label count mismatch: {n_labels} labels for {n_images} images in {images_where}"
        )


def _num(v) -> str:
    """Print 255.0 as 255 so messages show the values a user would have typed."""
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)
