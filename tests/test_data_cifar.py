"""CIFAR-10's archive format on a small synthetic archive; the restricted unpickler against hostile pickles.

The archive is built the way the official one is: a ``.tar.gz`` of a
``cifar-10-batches-py`` folder holding pickled dicts (``data``: uint8 rows of
3072 pixels, red plane then green then blue; ``labels``: a list of ints) and
``batches.meta`` with the ``label_names``. Only the counts are smaller.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from aekit.data import describe_sources, load_dataset
from aekit.data.cifar import CIFAR10, CifarSource
from aekit.data.safe_pickle import loads
from aekit.errors import DataError, DownloadError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH, N_TEST = 4, 6


pytestmark = pytest.mark.usefixtures("isolated_cache")


def batches(seed: int = 0) -> dict[str, dict]:
    """Five training batches and a test batch of random images, and the meta file."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        n = N_TEST if name == "test_batch" else PER_BATCH
        out[name] = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     "labels": [int(v) for v in rng.integers(0, 10, n)],
                     "filenames": [f"{name}_{j}.png" for j in range(n)]}
    out["batches.meta"] = {"label_names": NAMES, "num_cases_per_batch": PER_BATCH, "num_vis": 3072}
    return out


def archive(contents: dict[str, object]) -> bytes:
    """A .tar.gz of cifar-10-batches-py/<name>, each member a protocol-2 pickle (or raw bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, obj in contents.items():
            data = obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tiny(md5: str = "0" * 32, mirrors=()) -> CifarSource:
    return CifarSource(name="tiny-cifar", description="a small CIFAR-format set", filename=CIFAR10.filename,
                       md5=md5, mirrors=tuple(mirrors) or ("http://127.0.0.1:9/",), download_mb=1,
                       folder=CIFAR10.folder, n_train=5 * PER_BATCH, n_test=N_TEST)


def expected(contents) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train = [contents[f"data_batch_{k}"] for k in range(1, 6)]
    x_train = np.concatenate([b["data"] for b in train]).reshape(-1, 3, 32, 32)
    y_train = np.concatenate([b["labels"] for b in train])
    test = contents["test_batch"]
    return x_train, y_train, test["data"].reshape(-1, 3, 32, 32), np.array(test["labels"])


def test_the_archive_in_data_dir_is_unpacked_in_order_with_its_class_names(tmp_path, register, isolated_cache):
    contents = batches()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / CIFAR10.filename).write_bytes(archive(contents))
    register(tiny())
    notices = []
    data = load_dataset("tiny-cifar", data_dir=tmp_path / "mine", log=notices.append)
    x_train, y_train, x_test, y_test = expected(contents)
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    np.testing.assert_array_equal(data.y_test, y_test)
    # row layout: the first 1024 values are the red plane, row-major
    assert data.x_train[0, 0, 0, 1] == contents["data_batch_1"]["data"][0, 1]
    assert data.x_train[0, 1, 0, 0] == contents["data_batch_1"]["data"][0, 1024]
    assert data.class_names == NAMES and data.image_shape == (3, 32, 32) and isinstance(data.x_train, np.memmap)
    assert len(notices) == 1 and "unpacked" in notices[0]
    notices.clear()
    again = load_dataset("tiny-cifar", data_dir=tmp_path / "mine", log=notices.append)
    assert notices == [] and (again.x_test == data.x_test).all()  # mapped from the cache, not re-read


def test_a_changed_archive_is_unpacked_again_and_replaces_the_old_copy(tmp_path, register, isolated_cache):
    path = tmp_path / CIFAR10.filename
    path.write_bytes(archive(batches(seed=0)))
    register(tiny())
    load_dataset("tiny-cifar", data_dir=tmp_path, log=lambda _: None)
    path.write_bytes(archive(batches(seed=1)))
    data = load_dataset("tiny-cifar", data_dir=tmp_path, log=lambda _: None)
    np.testing.assert_array_equal(data.x_test, expected(batches(seed=1))[2])
    assert len(list((isolated_cache / "tiny-cifar").glob("unpacked-*"))) == 1


def test_the_unpacked_folder_layout_of_torchvision_works_too(tmp_path, register):
    contents = batches()
    folder = tmp_path / CIFAR10.folder
    folder.mkdir()
    for name, obj in contents.items():
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    register(tiny())
    data = load_dataset("tiny-cifar", data_dir=tmp_path, log=lambda _: None)
    np.testing.assert_array_equal(data.y_test, expected(contents)[3])


def test_download_is_md5_checked_cached_and_used_once(serve, register, isolated_cache):
    body = archive(batches())
    server = serve({CIFAR10.filename: body})
    register(tiny(hashlib.md5(body).hexdigest(), [server.url]))
    notices = []
    data = load_dataset("tiny-cifar", log=notices.append, progress=False)
    assert len(data.x_train) == 20 and (isolated_cache / "tiny-cifar" / CIFAR10.filename).read_bytes() == body
    assert notices[0] == f"tiny-cifar: downloaded to {isolated_cache / 'tiny-cifar'}"
    load_dataset("tiny-cifar", log=notices.append)
    assert server.requests == [f"/{CIFAR10.filename}"]


def test_a_wrong_checksum_is_refused(serve, register, isolated_cache):
    server = serve({CIFAR10.filename: archive(batches())})
    register(tiny("0" * 32, [server.url]))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("tiny-cifar", log=lambda _: None)
    assert not (isolated_cache / "tiny-cifar" / CIFAR10.filename).exists()


def test_offline_says_in_one_line_where_to_put_the_archive(register, closed_port_url, isolated_cache):
    register(tiny(mirrors=[closed_port_url]))
    with pytest.raises(DownloadError) as excinfo:
        load_dataset("tiny-cifar", log=lambda _: None)
    message = str(excinfo.value)
    assert "\n" not in message and "could not download cifar-10-python.tar.gz" in message
    assert f"put cifar-10-python.tar.gz (from {closed_port_url}) in {isolated_cache / 'tiny-cifar'}" in message
    with pytest.raises(DataError, match="downloading is off"):
        load_dataset("tiny-cifar", download=False)


def test_wrong_counts_and_missing_members_are_named(tmp_path, register):
    register(tiny())
    contents = batches()
    contents["test_batch"]["data"] = contents["test_batch"]["data"][:2]
    contents["test_batch"]["labels"] = contents["test_batch"]["labels"][:2]
    (tmp_path / CIFAR10.filename).write_bytes(archive(contents))
    with pytest.raises(DataError, match="not tiny-cifar: 20 training and 2 test images, expected 20 and 6"):
        load_dataset("tiny-cifar", data_dir=tmp_path)
    del contents["batches.meta"]
    (tmp_path / CIFAR10.filename).write_bytes(archive(contents))
    with pytest.raises(DataError, match="missing batches.meta"):
        load_dataset("tiny-cifar", data_dir=tmp_path)
    (tmp_path / CIFAR10.filename).write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="corrupt archive"):
        load_dataset("tiny-cifar", data_dir=tmp_path)


class Evil:
    """Unpickling this runs a shell command: what a hostile 'dataset' would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_hostile_batch_is_refused_and_never_runs(tmp_path, register, isolated_cache):
    marker = tmp_path / "pwned"
    contents = batches()
    contents["data_batch_3"] = {"data": Evil(marker), "labels": []}
    (tmp_path / CIFAR10.filename).write_bytes(archive(contents))
    register(tiny())
    with pytest.raises(DataError) as excinfo:
        load_dataset("tiny-cifar", data_dir=tmp_path)
    assert "(data_batch_3): refused to unpickle: it calls posix.system" in str(excinfo.value)
    assert not marker.exists()
    assert not list((isolated_cache / "tiny-cifar").glob("unpacked-*"))  # nothing half-built left behind
    assert pickle.loads(pickle.dumps(Evil(marker))) == 0 and marker.exists()  # the plain unpickler would run it


@pytest.mark.parametrize("payload, problem", [
    (pickle.dumps(eval, protocol=2), r"it calls __builtin__\.eval"),
    (pickle.dumps(np.array([1, "a"], dtype=object), protocol=2), "an array of Python objects"),
    (pickle.dumps({"x": np.float64(1.0)}, protocol=2), "it calls numpy"),
    (pickle.dumps(NAMES)[:-5], "corrupt pickle"),
    (b"cos\nsystem\n(S'true'\ntR.", "it calls os.system"),  # hand-written protocol 0
])
def test_the_restricted_unpickler_builds_arrays_and_nothing_else(payload, problem):
    with pytest.raises(DataError, match=problem):
        loads(payload, "x.pkl")


def test_the_restricted_unpickler_reads_arrays_and_containers_of_either_python():
    value = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2], "n": (3.5, None, True)}
    for protocol in (2, 4):
        got = loads(pickle.dumps(value, protocol=protocol), "x.pkl")
        np.testing.assert_array_equal(got["data"], value["data"])
        assert got[b"labels"] == [1, 2] and got["n"] == (3.5, None, True)


def test_cifar10_is_described_and_not_downloaded_by_describe(isolated_cache, tmp_path):
    row = next(r for r in describe_sources() if r["name"] == "cifar10")
    assert row["status"] == "missing" and "163 MB" in row["where"] and "cifar-10-python.tar.gz" in row["where"]
    (isolated_cache / "cifar10").mkdir(parents=True)
    (isolated_cache / "cifar10" / CIFAR10.filename).write_bytes(b"")
    row = next(r for r in describe_sources() if r["name"] == "cifar10")
    assert row == {**row, "status": "ok", "where": str(isolated_cache / "cifar10" / CIFAR10.filename)}
    row = next(r for r in describe_sources(data_dir=tmp_path / "typo") if r["name"] == "cifar10")
    assert row["status"] == "ok"  # a missing data_dir is not describe's error to raise
