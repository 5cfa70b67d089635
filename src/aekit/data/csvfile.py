"""CSV image files: one image a row, the label first, then H*W pixel values.

This is the layout of the widely shared ``mnist_train.csv`` / ``mnist_test.csv``
(label, then 784 values in 0..255), with or without a header row. Parsing
is one ``np.loadtxt`` call as integers (about a second for 60,000 rows); only
when that fails, or a value is out of range, is the file scanned line by line
to say exactly where the problem is.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from aekit.data.arrays import images_from_array, labels_from_array
from aekit.errors import DataError

_ENCODING = "utf-8-sig"  # tolerate the byte-order mark spreadsheet programs write


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV image file.

    Returns
    -------
    x : ndarray of shape (N, 1, H, W), uint8
    y : ndarray of shape (N,), int64
    """
    header = _has_header(path)
    table = _parse(path, header)
    if table.size == 0:
        raise DataError(f"{path}: no data rows")
    if table.shape[1] < 2:
        raise DataError(f"{path}: wrong column count: {table.shape[1]} column(s); expected a label and pixel columns")
    pixels = table[:, 1:]
    out_of_range = (pixels < 0).any() or (pixels > 255).any() or (table[:, 0] < 0).any()
    fractional = table.dtype.kind == "f" and (table != np.round(table)).any()
    if out_of_range or fractional:
        raise DataError(_locate_problem(path, header) or f"{path}: values are not whole numbers in 0..255")
    y = labels_from_array(table[:, 0], f"{path} (label column)")
    x = images_from_array(pixels, str(path))  # (N, H*W) -> (N, 1, H, W)
    return x, y


def _has_header(path: Path) -> bool:
    """A first row whose first field is not a number is a header."""
    try:
        with open(path, encoding=_ENCODING) as f:
            for line in f:
                if line.strip():
                    return not _is_number(line.split(",", 1)[0])
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as CSV text ({e})") from e
    return False


def _parse(path: Path, header: bool) -> np.ndarray:
    """The whole table as numbers: integers fast, whole-number floats (``3.0``) as a fallback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": handled by the caller
        for dtype in (np.int32, np.float64):
            try:
                return np.loadtxt(
                    path, delimiter=",", dtype=dtype, skiprows=int(header), ndmin=2, comments=None, encoding=_ENCODING
                )
            except ValueError:
                continue
    raise DataError(_locate_problem(path, header) or f"{path}: cannot parse as CSV numbers")


def _locate_problem(path: Path, header: bool) -> str | None:
    """Scan line by line for the first bad value or row; ``None`` if none is found.

    Slow (pure Python) but only runs once a problem is known to exist, and stops
    at the first one.
    """
    n_cols = None
    with open(path, encoding=_ENCODING) as f:
        for line_no, line in enumerate(f, start=1):
            if (header and line_no == 1) or not line.strip():
                continue
            fields = line.rstrip("\r\n").split(",")
            if n_cols is None:
                n_cols = len(fields)
            elif len(fields) != n_cols:
                return f"{path}: line {line_no}: wrong column count: {len(fields)} columns, expected {n_cols}"
            for col, text in enumerate(fields, start=1):
                if not _is_number(text):
                    return f"{path}: line {line_no}, column {col}: non-numeric value {text.strip()!r}"
                value = float(text)
                what = "label" if col == 1 else "pixel value"
                if not value.is_integer():
                    return f"{path}: line {line_no}, column {col}: {what} {text.strip()} is not a whole number"
                if value < 0 or (col > 1 and value > 255):
                    allowed = "0 or more" if col == 1 else "0..255"
                    return (f"{path}: line {line_no}, column {col}: out-of-range {what} {text.strip()} "
                            f"(allowed {allowed})")
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
