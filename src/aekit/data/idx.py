"""The IDX format of MNIST and Fashion-MNIST, gzip'd or not.

An IDX file is a big-endian header (a magic number, then one uint32 per
dimension) followed by the raw values; see http://yann.lecun.com/exdb/mnist/.
The whole body is decoded with one ``np.frombuffer``, so 60,000 images take
about as long as gunzip does.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from pathlib import Path

import numpy as np

from aekit import limits
from aekit.data.arrays import check_counts
from aekit.data.imagedata import ImageData
from aekit.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, H, W)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
_GUNZIP_PART = 1 << 24  # bytes gunzipped at a time, so the total can be checked as it grows

# The four files of a set, by role, under their standard names without ".gz".
STANDARD_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_bytes(path: Path) -> bytes:
    """Read a file, gunzipping it when it starts with the gzip magic bytes.

    The magic bytes decide, not the suffix, because copies get renamed (and
    some tools gunzip in place but keep ``.gz``). Gunzipping stops past this
    machine's memory: a few megabytes of gzip can expand a thousandfold.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    if raw[:2] != b"\x1f\x8b":
        return raw
    cap, parts, total = limits.ram_bytes(), [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            while part := f.read(_GUNZIP_PART):
                total += len(part)
                if total > cap:
                    raise DataError(f"{path}: gunzips to more than this machine's memory ({cap:,} bytes)")
                parts.append(part)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data ({e})") from e
    return b"".join(parts)


def images_bytes(x: np.ndarray) -> bytes:
    """Encode ``(N, H, W)`` uint8 images as an IDX image file (the inverse of :func:`parse_images`)."""
    return _header(IMAGES_MAGIC, x.shape) + np.ascontiguousarray(x, np.uint8).tobytes()


def labels_bytes(y: np.ndarray) -> bytes:
    """Encode ``(N,)`` labels in 0..255 as an IDX label file (the inverse of :func:`parse_labels`)."""
    return _header(LABELS_MAGIC, y.shape) + np.asarray(y).astype(np.uint8).tobytes()


def _header(magic: int, shape: tuple[int, ...]) -> bytes:
    return np.array([magic, *shape], dtype=">u4").tobytes()


def parse_images(buf: bytes, where: str) -> np.ndarray:
    """Decode an IDX image file's bytes into ``(N, 1, H, W)`` uint8."""
    n, h, w = _parse_header(buf, where, IMAGES_MAGIC, "image")
    too_many = limits.IMAGE_PIXELS.exceeded(h * w)
    if too_many:
        raise DataError(f"{where}: images of {w}x{h} are {too_many}")
    body = np.frombuffer(buf, dtype=np.uint8, offset=16)
    return body.reshape(n, 1, h, w).copy()  # copy: frombuffer over bytes is read-only


def parse_labels(buf: bytes, where: str) -> np.ndarray:
    """Decode an IDX label file's bytes into ``(N,)`` int64."""
    (n,) = _parse_header(buf, where, LABELS_MAGIC, "label")
    return np.frombuffer(buf, dtype=np.uint8, offset=8).astype(np.int64)


def _parse_header(buf: bytes, where: str, magic: int, kind: str) -> tuple[int, ...]:
    """Check magic and size; return the dimensions the header declares."""
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(buf) < 4:
        raise DataError(f"{where}: truncated (expected at least {header_len} bytes of header, found {len(buf)})")
    found = int.from_bytes(buf[:4], "big")
    if found != magic:
        raise DataError(
            f"{where}: wrong magic number 0x{found:08x} (expected 0x{magic:08x} for an IDX {kind} file)"
        )
    if len(buf) < header_len:
        raise DataError(f"{where}: truncated (expected at least {header_len} bytes of header, found {len(buf)})")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    expected = header_len + math.prod(dims)  # a Python int: three uint32s overflow int64
    if len(buf) < expected:
        raise DataError(f"{where}: truncated (expected {expected} bytes, found {len(buf)})")
    if len(buf) > expected:
        raise DataError(f"{where}: {len(buf) - expected} bytes of trailing data "
                        f"(expected {expected} bytes, found {len(buf)})")
    return dims


def find_files(directory: Path) -> dict[str, Path | None]:
    """Map each role to its file in ``directory``, or ``None`` where it is missing.

    Accepts the standard names with or without ``.gz`` and the variant with a dot
    before ``idx`` (``train-images.idx3-ubyte``) that some re-distributions use.
    """
    found: dict[str, Path | None] = {}
    for role, name in STANDARD_NAMES.items():
        dotted = name.replace("-idx", ".idx", 1)
        candidates = [directory / f"{stem}{gz}" for stem in (name, dotted) for gz in (".gz", "")]
        found[role] = next((p for p in candidates if p.is_file()), None)
    return found


def missing_message(directory: Path, files: dict[str, Path | None]) -> str:
    """One line naming the standard files a directory lacks."""
    missing = [f"{STANDARD_NAMES[role]}[.gz]" for role, path in files.items() if path is None]
    return f"{directory}: missing IDX files: {', '.join(missing)}"


def load_files(files: dict[str, Path], name: str, origin: str, class_names: list[str] | None = None) -> ImageData:
    """Load the four files found by :func:`find_files` into an ImageData."""
    arrays = {}
    for split in ("train", "test"):
        images_path, labels_path = files[f"{split}_images"], files[f"{split}_labels"]
        x = parse_images(read_bytes(images_path), str(images_path))
        y = parse_labels(read_bytes(labels_path), str(labels_path))
        check_counts(len(x), len(y), str(images_path), str(labels_path))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return ImageData(name=name, origin=origin, class_names=list(class_names or []), **arrays)
