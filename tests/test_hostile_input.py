"""Small crafted inputs that once cost unbounded memory or time, or broke on names that are not UTF-8.

Each file is made here, a few hundred bytes at most; each case must end fast
with an :class:`~aekit.errors.AekitError` that names the limit, or load fine.
The limits are in :mod:`aekit.limits` and docs/limits.md.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit import limits
from aekit.data import idx, load_dataset
from aekit.data.cifar import CIFAR10, CifarSource
from aekit.data.decode import _deep_to_grey
from aekit.data.safe_pickle import loads
from aekit.errors import ConfigError, DataError, RunError
from aekit.models import create_model
from aekit.resolve import build_config
from aekit.rundir import check_checkpoint_meta


def aekit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def png_bytes(width: int, height: int, depth: int = 16, body: bytes = b"\0" * 100) -> bytes:
    """A grey PNG whose header declares ``width`` x ``height``, with a few bytes of image data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body))
            + chunk(b"IEND", b""))


def npy_declaring(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """An .npy header declaring ``shape`` followed by 12 bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(12)


def small_images(folder, n: int = 12, size: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{i}.png")


# --------------------------------------------------------------------------- item 2: memory

def test_labels_of_ten_to_the_twelve_are_refused_not_given_names(tmp_path):
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((20, 8, 8), np.uint8), y=np.array([0] * 19 + [10**12]))
    start = time.monotonic()
    with pytest.raises(DataError, match=r"labels go up to 1000000000000: .*over the limit of 10,000.*MAX_CLASSES"):
        load_dataset(str(path))
    assert time.monotonic() - start < 5


def test_the_class_limit_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((20, 8, 8), np.uint8), y=np.array([0] * 19 + [12_000]))
    with pytest.raises(DataError, match="12,001 classes"):
        load_dataset(str(path))
    monkeypatch.setenv("AEKIT_MAX_CLASSES", "20000")
    assert load_dataset(str(path)).num_classes == 12_001


def test_a_bad_limit_in_the_environment_is_one_line_before_anything_runs(tmp_path, monkeypatch):
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((20, 8, 8), np.uint8), y=np.arange(20))
    monkeypatch.setenv("AEKIT_MAX_CLASSES", "lots")
    with pytest.raises(ConfigError, match="AEKIT_MAX_CLASSES: 'lots' is not a limit"):
        load_dataset(str(path))
    res = aekit("train", "--dataset", path, "--out", tmp_path / "run", env={"AEKIT_MAX_IMAGE_PIXELS": "-5"})
    assert (res.returncode, res.stderr) == (2, "aekit train: error: AEKIT_MAX_IMAGE_PIXELS: '-5' is not a limit; "
                                               "give a whole number >= 1 (default 100,000,000)\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_an_array_declaring_a_terabyte_is_refused_before_numpy_allocates_it(tmp_path, suffix):
    data = npy_declaring((1_000_000, 1_000_000))
    path = tmp_path / f"huge{suffix}"
    if suffix == ".npy":
        path.write_bytes(data)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x.npy", data)
    with pytest.raises(DataError, match=r"declares a 1000000x1000000 uint8 array \(1,000,000,000,000 bytes\)"):
        load_dataset(str(path))


def test_arrays_that_honestly_declare_more_than_the_machine_holds_are_refused_before_they_are_read(
        tmp_path, monkeypatch):
    # a compressed .npz or a gzip'd IDX file can expand a thousandfold: the machine's memory bounds it
    monkeypatch.setattr(limits, "ram_bytes", lambda: 1000)
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((20, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"zeros.npz: its arrays take 1,280 bytes, more than this machine's memory "
                                        r"\(1,000 bytes\)"):
        load_dataset(str(tmp_path / "zeros.npz"))
    (tmp_path / "idx").mkdir()
    x, y = np.zeros((20, 8, 8), np.uint8), np.zeros(20, np.uint8)
    for name, data in idx.STANDARD_NAMES.items():
        body = idx.images_bytes(x) if "images" in name else idx.labels_bytes(y)
        (tmp_path / "idx" / f"{data}.gz").write_bytes(gzip.compress(body))
    with pytest.raises(DataError, match=r"idx3-ubyte.gz: gunzips to more than this machine's memory \(1,000 bytes\)"):
        load_dataset(str(tmp_path / "idx"))


def test_a_tiny_png_declaring_13000_squared_pixels_is_skipped_from_its_header(tmp_path):
    folder = tmp_path / "set"
    small_images(folder)
    bomb = png_bytes(13000, 13000)
    assert len(bomb) < 120
    (folder / "bomb.png").write_bytes(bomb)
    start = time.monotonic()
    data = load_dataset(str(folder), log=lambda _: None)
    assert time.monotonic() - start < 10
    ((path, reason),) = data.skipped
    assert path.endswith("bomb.png")
    assert reason.startswith("13000x13000 is 169,000,000 pixels per image, over the limit of 100,000,000")
    assert "AEKIT_MAX_IMAGE_PIXELS" in reason
    with pytest.raises(DataError, match="bomb.png: cannot read this image \\(13000x13000 is"):
        load_dataset(str(folder), strict=True)


def test_the_pixel_limit_can_be_lowered_and_raised(tmp_path, monkeypatch):
    folder = tmp_path / "set"
    small_images(folder, size=8)
    monkeypatch.setenv("AEKIT_MAX_IMAGE_PIXELS", "63")
    with pytest.raises(DataError, match="none of its 12 image files could be read .*8x8 is 64 pixels per image"):
        load_dataset(str(folder), log=lambda _: None)
    monkeypatch.setenv("AEKIT_MAX_IMAGE_PIXELS", "64")
    assert load_dataset(str(folder), log=lambda _: None).image_shape == (1, 8, 8)
    Image.new("L", (9, 8)).save(folder / "big.png")
    assert [Path(p).name for p, _ in load_dataset(str(folder), log=lambda _: None).skipped] == ["big.png"]
    monkeypatch.setenv("AEKIT_MAX_IMAGE_PIXELS", "72")  # raised: the folder is packed again, the file now read
    data = load_dataset(str(folder), log=lambda _: None)
    assert not data.skipped and len(data.x_train) + len(data.x_test) == 13


def test_arrays_and_image_size_settings_obey_the_pixel_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_MAX_IMAGE_PIXELS", "100")
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((4, 11, 10), np.uint8))
    with pytest.raises(DataError, match="images of 10x11 are 110 pixels per image"):
        load_dataset(str(path))
    with pytest.raises(ConfigError, match="data.image_size: 20x10 is 200 pixels per image"):
        build_config(dataset=str(tmp_path), image_size="20x10")


@pytest.mark.parametrize("mode, values", [
    ("I;16", np.arange(1100 * 1000).reshape(1100, 1000) % 65536),
    ("I", np.arange(1100 * 1000).reshape(1100, 1000) * 3 - 5000),
    ("F", np.linspace(-2.5, 7.0, 1100 * 1000).reshape(1100, 1000)),
])
def test_deep_greys_are_scaled_block_by_block_as_the_whole_float64_formula_does(mode, values):
    # more than one block of rows (1100 x 1000 pixels > 2**20), and the same pixels as before the blocks
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    im = Image.fromarray(values.astype(dtype))
    assert im.mode == mode
    a = np.asarray(im).astype(np.float64)
    lo, hi = a.min(), a.max()
    if mode != "F" and lo >= 0 and hi <= 65535:
        lo, hi = 0.0, 65535.0
    expected = np.rint((a - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(_deep_to_grey(im)), expected)


@pytest.mark.parametrize("section, field, value, message", [
    ("model", "latent_dim", 1e30, r"model.latent_dim: must be <= 65536 \(allowed: 1 to 65536\), got 1e\+30"),
    ("model", "hidden", [100_000_000], r"model.hidden\[0\]: must be <= 65536 \(allowed: 1 to 65536\), got 100000000"),
    ("train", "seed", 1e20, r"train.seed: must be <= 4294967295 \(allowed: 0 to 4294967295\), got 1e\+20"),
    ("train", "epochs", 10**30, r"train.epochs: must be <= 1000000 \(allowed: 1 to 1000000\), got 1e\+30"),
])
def test_config_values_that_would_ask_for_terabytes_are_refused_naming_the_field(section, field, value, message):
    with pytest.raises(ConfigError, match=message):
        build_config(config={section: {field: value}})


def test_a_huge_config_is_one_line_and_leaves_no_run_directory(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"latent_dim": 1e30}}))
    res = aekit("train", "--config", config, "--out", tmp_path / "run")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "aekit train: error: model.latent_dim: must be <= 65536 (allowed: 1 to 65536), got 1e+30"]
    assert not (tmp_path / "run").exists()


def test_a_config_nested_thousands_deep_is_one_line(tmp_path):
    config = tmp_path / "config.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    res = aekit("train", "--config", config, "--out", tmp_path / "run")
    assert (res.returncode, res.stderr.strip()) == (2, f"aekit train: error: --config {config}: nested too deep "
                                                       "to be a config")


def test_checkpoint_metadata_with_a_huge_input_shape_is_refused():
    meta = {"format": "aekit", "model": "mlp", "input_shape": [1, 20000, 20000], "config": {}}
    with pytest.raises(RunError, match=r"where: field 'input_shape' 1x20000x20000 is out of range: at most 4 "
                                       "channels and 100,000,000 pixels per image"):
        check_checkpoint_meta(meta, "where")
    check_checkpoint_meta({**meta, "input_shape": [3, 64, 64]}, "where")


def with_checkpoint_meta(run: Path, out: Path, change) -> Path:
    """A copy of ``run`` whose checkpoints' aekit metadata went through ``change(meta)``."""
    shutil.copytree(run, out)
    for path in out.glob("*.safetensors"):
        data = path.read_bytes()
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size])
        meta = json.loads(header["__metadata__"]["aekit"])
        change(meta)
        header["__metadata__"]["aekit"] = json.dumps(meta)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size:])
    return out


@pytest.mark.parametrize("change, error, message", [
    (lambda m: m["config"]["model"].update(latent_dim=1e30), ConfigError, r"model.latent_dim: must be <= 65536"),
    (lambda m: m["config"]["model"].update(hidden=[10**8]), ConfigError, r"model.hidden\[0\]: must be <= 65536"),
    (lambda m: m["config"]["train"].update(seed=1e20), ConfigError, r"train.seed: must be <= 4294967295"),
    (lambda m: m.update(input_shape=[1, 20000, 20000]), RunError, r"checkpoint.safetensors: field 'input_shape' "
                                                                  r"1x20000x20000 is out of range"),
    (lambda m: m.update(input_shape=[1, 9000, 9000]), ConfigError, r"model: mlp for 1x9000x9000 images would have "
                                                                   r"20,817,018,403 model parameters"),
])
def test_a_crafted_checkpoint_is_refused_before_its_model_is_built(sample_run, tmp_path, change, error, message):
    import aekit

    crafted = with_checkpoint_meta(sample_run.path, tmp_path / "crafted", change)
    with pytest.raises(error, match=message):
        aekit.load_run(crafted)


def test_a_model_over_the_parameter_limit_is_refused_before_it_is_allocated(monkeypatch):
    # 10**8 pixels into 128 units and back: 2 * 128 * 10**8 weights, 10**8 output biases and the small layers
    with pytest.raises(ConfigError, match=r"model: mlp for 1x10000x10000 images would have 25,700,018,403 model "
                                          "parameters, over the limit of 1,000,000,000"):
        create_model("mlp", (1, 10000, 10000))
    n = sum(p.numel() for p in create_model("mlp", (1, 28, 28)).parameters())
    monkeypatch.setenv("AEKIT_MAX_PARAMETERS", str(n - 1))
    with pytest.raises(ConfigError, match="AEKIT_MAX_PARAMETERS"):
        create_model("mlp", (1, 28, 28))


# --------------------------------------------------------------------------- item 3: time

def shared_nesting(levels: int) -> bytes:
    """A pickle of a list holding the same list twice, ``levels`` deep: 2**levels paths, a few bytes each level."""
    inner: list = []
    for _ in range(levels):
        inner = [inner, inner]
    return pickle.dumps(inner, protocol=2)


def test_a_pickle_of_shared_references_is_checked_in_linear_time():
    data = shared_nesting(60)  # 2**60 paths through it; once 48 s at 40 levels
    assert len(data) < 500
    start = time.monotonic()
    obj = loads(data, "nested")
    assert time.monotonic() - start < 1
    assert obj[0] is obj[1]


def test_a_pickle_that_holds_itself_ends():
    cycle: list = []
    cycle.append(cycle)
    obj = loads(pickle.dumps(cycle, protocol=2), "cycle")
    assert obj[0] is obj


def test_a_pickle_nested_deeper_than_any_dataset_is_refused():
    with pytest.raises(DataError, match="deep: refused to unpickle: containers nested more than 100 deep"):
        loads(shared_nesting(150), "deep")


def cifar_archive(members: dict[str, bytes], count: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for i in range(count):
            tar.addfile(tarfile.TarInfo(f"cifar-10-batches-py/empty{i}"), io.BytesIO())
    return buf.getvalue()


def tiny_cifar() -> CifarSource:
    return CifarSource(name="tiny-cifar", description="", filename=CIFAR10.filename, md5="0" * 32,
                       mirrors=("http://127.0.0.1:9/",), download_mb=1, folder=CIFAR10.folder, n_train=20, n_test=6)


def test_a_cifar_archive_of_a_few_hundred_bytes_does_not_stall(tmp_path, isolated_cache):
    batch = shared_nesting(60)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    (tmp_path / CIFAR10.filename).write_bytes(cifar_archive(dict.fromkeys(names, batch)))
    assert (tmp_path / CIFAR10.filename).stat().st_size < 1000
    start = time.monotonic()
    with pytest.raises(DataError, match=r"data_batch_1\): not a CIFAR batch"):
        tiny_cifar().load(tmp_path, download=False, progress=False, log=lambda _: None)
    assert time.monotonic() - start < 5


def test_a_cifar_archive_with_too_many_entries_or_a_huge_member_is_refused(tmp_path, isolated_cache):
    (tmp_path / CIFAR10.filename).write_bytes(cifar_archive({}, count=1001))
    with pytest.raises(DataError, match="more than 1000 entries; not a CIFAR archive"):
        tiny_cifar().load(tmp_path, download=False, progress=False, log=lambda _: None)
    (tmp_path / CIFAR10.filename).write_bytes(cifar_archive({"data_batch_1": bytes(2_000_000)}))
    with pytest.raises(DataError, match=r"data_batch_1\): 2,000,000 bytes, more than the 1,\d{3},\d{3} any batch"):
        tiny_cifar().load(tmp_path, download=False, progress=False, log=lambda _: None)


# --------------------------------------------------------------------------- item 5: names that are not UTF-8

@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names may hold any bytes")
def test_names_that_are_not_utf8_train_and_report(tmp_path):
    root = os.fsencode(tmp_path / "set")
    rng = np.random.default_rng(0)
    for cls in (b"plain", b"caf\xff"):
        os.makedirs(os.path.join(root, cls))
        for i in range(12):
            image = Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8))
            image.save(os.fsdecode(os.path.join(root, cls, b"%d.png" % i)))
    with open(os.path.join(root, b"plain", b"broken\xfe.png"), "wb") as f:
        f.write(b"not an image")
    run = tmp_path / "run"
    res = aekit("train", "--dataset", tmp_path / "set", "--epochs", 1, "--device", "cpu", "--out", run)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    # random pixels teach nothing in an epoch, and the run says so; no other warning (about a name, say)
    assert [line for line in res.stderr.splitlines() if "warning" in line and "did not learn" not in line] == []
    assert "plain/broken\\xfe.png (not an image Pillow can read)" in res.stderr
    skipped = (run / "skipped.txt").read_bytes().decode("utf-8")  # valid UTF-8
    assert skipped == f"{tmp_path}/set/plain/broken\\xfe.png\tnot an image Pillow can read\n"
    res = aekit("report", run)
    assert res.returncode == 0, res.stderr
    assert "caf\\\\xff" in (run / "report.html").read_text()  # the class name, as JSON writes a backslash
