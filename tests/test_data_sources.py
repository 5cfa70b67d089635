"""Named sources: the bundled sample, resolution order, describe, downloads, Fashion-MNIST.

Downloads go to a local HTTP server on 127.0.0.1 that the test starts; the
source under test is a tiny one whose MD5 table matches the fake files, so
the real code paths run end to end without the internet.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from aekit.data import default_cache_dir, describe_sources, list_sources, load_dataset
from aekit.data.idx import STANDARD_NAMES
from aekit.data.sources import IdxSource
from aekit.errors import DataError, DownloadError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


pytestmark = pytest.mark.usefixtures("isolated_cache")


def idx_gz(magic: int, arr: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes())


def fake_files(seed: int = 0) -> dict[str, bytes]:
    """The four .gz files of a 12/6-image, 4x4, 3-class set, by file name."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": idx_gz(0x803, rng.integers(0, 256, (12, 4, 4))),
        "train-labels-idx1-ubyte.gz": idx_gz(0x801, np.arange(12) % 3),
        "t10k-images-idx3-ubyte.gz": idx_gz(0x803, rng.integers(0, 256, (6, 4, 4))),
        "t10k-labels-idx1-ubyte.gz": idx_gz(0x801, np.arange(6) % 3),
    }


def tiny_source(files: dict[str, bytes], mirrors=(), **overrides) -> IdxSource:
    fields = dict(
        name="tiny",
        description="a fake set for tests",
        md5={role: hashlib.md5(files[f"{stem}.gz"]).hexdigest() for role, stem in STANDARD_NAMES.items()},
        mirrors=tuple(mirrors),
        download_mb=1,
        class_names=("a", "b", "c"),
        n_train=12,
        n_test=6,
        image_shape=(1, 4, 4),
    )
    return IdxSource(**{**fields, **overrides})


def put(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


# --- the bundled sample --------------------------------------------------------------------------


def test_mnist_sample_is_500_per_class_split_400_100():
    data = load_dataset("mnist-sample")
    assert data.x_train.shape == (4000, 1, 28, 28) and data.x_test.shape == (1000, 1, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert (np.bincount(data.y_train, minlength=10) == 400).all()
    assert (np.bincount(data.y_test, minlength=10) == 100).all()
    assert data.class_names == [str(d) for d in range(10)] and data.origin == "bundled"
    # real digits, not noise: mostly black background, some full-white strokes
    assert 0.6 < (data.x_train == 0).mean() < 0.9 and data.x_train.max() == 255


def test_mnist_sample_is_the_same_on_every_load():
    first, second = load_dataset("mnist-sample"), load_dataset("mnist-sample")
    for part in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, part), getattr(second, part))
    # and no image sits in both halves
    train, test = {bytes(x) for x in first.x_train}, {bytes(x) for x in first.x_test}
    assert not train & test


# --- the cache location ---------------------------------------------------------------------------


def test_default_cache_dir_prefers_aekit_cache_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("AEKIT_CACHE")
    assert default_cache_dir() == tmp_path / "x" / "aekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "aekit"


# --- resolution order ---------------------------------------------------------------------------


def test_data_dir_beats_cache(tmp_path, isolated_cache, register):
    register(tiny_source(fake_files(seed=0)))
    put(isolated_cache / "tiny", fake_files(seed=0))
    user_dir = put(tmp_path / "mine", fake_files(seed=1))  # different pixels, same labels
    data = load_dataset("tiny", data_dir=str(user_dir), download=False)
    assert data.origin == str(user_dir)
    assert load_dataset("tiny", download=False).origin == str(isolated_cache / "tiny")


def test_data_dir_may_hold_the_set_in_a_named_or_torchvision_subdirectory(tmp_path, register):
    register(tiny_source(fake_files(), torchvision_dir="Tiny"))
    named = put(tmp_path / "a" / "tiny", fake_files())
    torchvision = put(tmp_path / "b" / "Tiny" / "raw", fake_files())
    assert load_dataset("tiny", data_dir=str(tmp_path / "a"), download=False).origin == str(named)
    assert load_dataset("tiny", data_dir=str(tmp_path / "b"), download=False).origin == str(torchvision)


def test_cache_is_used_when_present_and_aekit_cache_moves_it(tmp_path, monkeypatch, register):
    register(tiny_source(fake_files()))
    moved = tmp_path / "elsewhere"
    put(moved / "tiny", fake_files())
    monkeypatch.setenv("AEKIT_CACHE", str(moved))
    data = load_dataset("tiny", download=False)
    assert data.origin == str(moved / "tiny") and data.class_names == ["a", "b", "c"]


def test_system_copy_is_used_after_the_cache(tmp_path, register, isolated_cache):
    system = put(tmp_path / "usr-share", fake_files(seed=3))
    register(tiny_source(fake_files(), system_dirs=(str(system),)))
    assert load_dataset("tiny", download=False).origin == str(system)
    put(isolated_cache / "tiny", fake_files())
    assert load_dataset("tiny", download=False).origin == str(isolated_cache / "tiny")


def test_data_dir_with_only_some_files_names_the_missing_ones(tmp_path, register):
    register(tiny_source(fake_files()))
    files = fake_files()
    del files["t10k-labels-idx1-ubyte.gz"]
    user_dir = put(tmp_path / "mine", files)
    with pytest.raises(DataError, match=r"missing IDX files: t10k-labels-idx1-ubyte\[\.gz\]$"):
        load_dataset("tiny", data_dir=str(user_dir))


def test_missing_data_dir_is_an_error_not_a_silent_download(tmp_path, register):
    register(tiny_source(fake_files()))
    with pytest.raises(DataError, match="data directory not found"):
        load_dataset("tiny", data_dir=str(tmp_path / "typo"))


def test_not_found_with_download_off_says_where_it_looked(isolated_cache, register):
    register(tiny_source(fake_files()))
    with pytest.raises(DataError, match="downloading is off") as excinfo:
        load_dataset("tiny", download=False)
    assert str(isolated_cache / "tiny") in str(excinfo.value)


def test_a_local_copy_of_the_wrong_size_is_not_taken_for_mnist(isolated_cache):
    put(isolated_cache / "mnist", fake_files())  # parses fine, but 12 images of 4x4
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", download=False)
    message = str(excinfo.value)
    assert "not mnist: 12 training images of 4x4 pixels, expected 60000 of 28x28" in message
    assert "delete it" in message


# --- describe ---------------------------------------------------------------------------------------


def test_describe_sources_reports_status_and_never_downloads(isolated_cache, serve, monkeypatch):
    server = serve(fake_files())
    monkeypatch.setenv("AEKIT_MIRRORS", server.url)
    rows = {row["name"]: row for row in describe_sources()}
    assert list(rows) == list_sources() == ["mnist", "mnist-sample", "fashion-mnist", "cifar10"]
    assert all(set(row) == {"name", "description", "status", "where"} for row in rows.values())
    assert rows["mnist"]["status"] == "missing"
    assert "not downloaded" in rows["mnist"]["where"] and "11 MB" in rows["mnist"]["where"]
    assert rows["mnist-sample"]["status"] == "ok"
    assert server.requests == [] and not isolated_cache.exists()


def test_describe_sources_sees_a_data_dir(tmp_path):
    put(tmp_path / "mnist", fake_files())
    rows = {row["name"]: row for row in describe_sources(data_dir=str(tmp_path))}
    assert rows["mnist"] == {**rows["mnist"], "status": "ok", "where": str(tmp_path / "mnist")}


# --- downloads ---------------------------------------------------------------------------------------


def test_download_caches_verified_files_and_loads_them(isolated_cache, serve, register):
    files = fake_files()
    server = serve(files)
    register(tiny_source(files, mirrors=[server.url]))
    notices = []
    data = load_dataset("tiny", log=notices.append, progress=False)
    assert data.x_train.shape == (12, 1, 4, 4) and data.origin == str(isolated_cache / "tiny")
    assert sorted(p.name for p in (isolated_cache / "tiny").iterdir()) == sorted(files)  # no temp files left
    assert len(server.requests) == 4 and notices == [f"tiny: downloaded to {isolated_cache / 'tiny'}"]
    load_dataset("tiny", log=notices.append)  # second time: from the cache, no request
    assert len(server.requests) == 4


def test_download_fetches_only_what_the_cache_lacks(isolated_cache, serve, register):
    files = fake_files()
    server = serve(files)
    register(tiny_source(files, mirrors=[server.url]))
    put(isolated_cache / "tiny", {k: v for k, v in files.items() if k.startswith("train")})
    load_dataset("tiny", log=lambda _: None)
    assert sorted(server.requests) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]


def test_wrong_checksum_is_a_clear_error_and_nothing_is_cached(isolated_cache, serve, register):
    files = fake_files()
    tampered = {**files, "train-images-idx3-ubyte.gz": fake_files(seed=9)["train-images-idx3-ubyte.gz"]}
    server = serve(tampered)
    source = register(tiny_source(files, mirrors=[server.url]))  # the MD5s of the untampered files
    with pytest.raises(DataError) as excinfo:
        load_dataset("tiny", log=lambda _: None)
    message = str(excinfo.value)
    assert not isinstance(excinfo.value, DownloadError)
    assert "checksum mismatch" in message and "nothing was cached" in message
    assert source.md5["train_images"] in message
    assert hashlib.md5(tampered["train-images-idx3-ubyte.gz"]).hexdigest() in message
    assert list((isolated_cache / "tiny").iterdir()) == []  # not even a hidden temp file


@pytest.mark.parametrize("first", ["closed port", "404"])
def test_a_failing_first_mirror_falls_through_to_the_second(first, isolated_cache, serve, register,
                                                            closed_port_url):
    files = fake_files()
    good = serve(files)
    bad_url = closed_port_url if first == "closed port" else serve({}).url
    register(tiny_source(files, mirrors=[bad_url, good.url]))
    data = load_dataset("tiny", log=lambda _: None)
    assert len(data.x_test) == 6 and len(good.requests) == 4


def test_a_corrupt_first_mirror_falls_through_to_a_good_second(isolated_cache, serve, register):
    files = fake_files()
    corrupt = serve({name: data[:-5] + b"xxxxx" for name, data in files.items()})
    good = serve(files)
    register(tiny_source(files, mirrors=[corrupt.url, good.url]))
    assert len(load_dataset("tiny", log=lambda _: None).x_train) == 12


def test_aekit_mirrors_overrides_the_source_mirrors(serve, register, monkeypatch, closed_port_url):
    files = fake_files()
    server = serve(files)
    register(tiny_source(files, mirrors=[closed_port_url]))
    monkeypatch.setenv("AEKIT_MIRRORS", f" {server.url} ,")
    assert len(load_dataset("tiny", log=lambda _: None).x_train) == 12


def test_no_network_without_a_fallback_is_a_download_error(isolated_cache, register, closed_port_url):
    register(tiny_source(fake_files(), mirrors=[closed_port_url]))
    with pytest.raises(DownloadError) as excinfo:
        load_dataset("tiny", log=lambda _: None)
    message = str(excinfo.value)
    assert "\n" not in message and "tiny: could not download" in message and closed_port_url in message
    assert not any((isolated_cache / "tiny").iterdir())


def test_no_network_mnist_falls_back_to_the_sample_with_one_notice(isolated_cache, monkeypatch,
                                                                     closed_port_url):
    monkeypatch.setenv("AEKIT_MIRRORS", closed_port_url)
    notices = []
    data = load_dataset("mnist", log=notices.append, progress=False)
    assert data.name == "mnist-sample" and len(data.x_train) == 4000
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "mnist-sample" in notices[0] and str(isolated_cache / "mnist") in notices[0]
    assert "--data-dir" in notices[0]


# --- real Fashion-MNIST ---------------------------------------------------------------------------------


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_system_copy():
    data = load_dataset("fashion-mnist", download=False)
    assert data.origin == str(FASHION_DIR)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert (np.bincount(data.y_train) == 6000).all() and (np.bincount(data.y_test) == 1000).all()
    assert data.num_classes == 10 and data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
