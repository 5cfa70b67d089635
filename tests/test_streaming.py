"""Streaming from the packed memory map: the same batches as holding the images, chosen by the memory budget.

The end-to-end tests train on a folder of colour images packed into the memory-mapped
cache, once held on the device and once streamed, and compare the metrics and weights
bit for bit, also across a resume in the middle of an epoch.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

import aekit
from aekit.config import parse_bytes
from aekit.data import ImageData
from aekit.errors import ConfigError, Interrupted
from aekit.rundir import RunDir
from aekit.training import Callback, streaming
from aekit.training.streaming import Streamed, data_sources, memory_budget
from aekit.training.trainer import Resident

pytestmark = pytest.mark.usefixtures("isolated_cache")


def _images(n: int = 103, shape=(3, 4, 5)) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, *shape), dtype=np.uint8)


def _batches(source, batch_size, order=None, start=0) -> list[np.ndarray]:
    return [b.numpy().copy() for b in source.batches(batch_size, order, start)]


@pytest.mark.parametrize("batch_size, start", [(10, 0), (10, 30), (7, 98), (200, 0), (10, 103)])
@pytest.mark.parametrize("shuffled", [True, False])
def test_streamed_batches_are_the_resident_ones(monkeypatch, batch_size, start, shuffled):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1800)  # chunks of several batches
    x = _images()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(3)) if shuffled else None
    expected = _batches(Resident(torch.from_numpy(x)), batch_size, order, start)
    got = _batches(Streamed(x), batch_size, order, start)
    assert [len(b) for b in got] == [len(b) for b in expected]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    if start < len(x):
        rows = order[start:].numpy() if shuffled else np.arange(start, len(x))
        assert np.array_equal(np.concatenate(got), x[rows])


class _Recording(np.ndarray):
    """An image array that records the rows each read asks for."""

    reads: list

    def __getitem__(self, index):
        if isinstance(index, np.ndarray):
            self.reads.append(index.copy())
        return np.asarray(self)[index]


def test_each_chunk_is_read_in_file_order_then_put_back_in_the_shuffled_order(monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 16 * 60)
    x = _images()
    recording = x.view(_Recording)
    recording.reads = []
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    got = np.concatenate(_batches(Streamed(recording), 4, order))
    assert len(recording.reads) == -(-len(x) // 16)  # one read per chunk of four batches
    assert all((np.diff(rows) > 0).all() for rows in recording.reads)  # ascending: a file read forwards
    assert np.array_equal(got, x[order.numpy()])


def test_a_read_error_reaches_the_training_loop_and_the_reader_stops():
    class Failing(np.ndarray):
        def __getitem__(self, index):
            raise OSError("Input/output error")

    before = threading.active_count()
    with pytest.raises(OSError, match="Input/output error"):
        next(Streamed(_images().view(Failing)).batches(10))
    assert threading.active_count() == before


def test_a_loop_that_stops_early_stops_the_reader():
    before = threading.active_count()
    batches = Streamed(_images(5000)).batches(10)
    assert next(batches).shape == (10, 3, 4, 5)
    batches.close()
    assert threading.active_count() == before


# --------------------------------------------------------------------------- the budget and the choice

def test_memory_sizes_parse_and_bad_ones_name_the_field():
    assert parse_bytes("2GB") == 2 * 10**9 and parse_bytes("500MB") == 500 * 10**6
    assert parse_bytes("1.5GiB") == 3 * 2**29 and parse_bytes("0") == 0 and parse_bytes(1024) == 1024
    assert parse_bytes("auto") is None and parse_bytes(" 64 kb ") == 64000
    cpu = torch.device("cpu")
    assert memory_budget("2GB", cpu) == (2 * 10**9, "--max-memory 2GB")
    budget, why = memory_budget("auto", cpu)
    assert 0 < budget < 2**50 and why.startswith("auto: 50% of the RAM")
    for bad in ("2XB", "-1", "lots", "1e9"):
        with pytest.raises(ConfigError, match=r"^data.max_memory: .* is not a memory size"):
            aekit.build_config(max_memory=bad)


@pytest.mark.parametrize("max_memory, kinds, says", [
    ("auto", (Resident, Resident), "fit the memory budget"),
    ("0", (Streamed, Streamed), "--max-memory 0 always streams"),
    ("1000", (Resident, Streamed), "the test images (600 B) stream"),  # 800 B of training images fit, 1400 do not
    ("700", (Streamed, Resident), "the training images (800 B) stream"),
])
def test_each_split_is_held_or_streamed_by_the_budget_with_one_line(max_memory, kinds, says):
    data = ImageData("x", _images(40, (1, 4, 5)), None, _images(30, (1, 4, 5)), None)
    lines = []
    train, test = data_sources(data, torch.device("cpu"), max_memory, lines.append)
    assert (type(train), type(test)) == kinds and len(lines) == 1 and says in lines[0]
    assert np.array_equal(np.concatenate(_batches(test, 7)), data.x_test)


# --------------------------------------------------------------------------- training, end to end

@pytest.fixture
def colour_folder(tmp_path):
    """120 colour images of 16x16 in three class folders (a packed, memory-mapped set once loaded)."""
    rng = np.random.default_rng(0)
    for k in range(120):
        tint = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]][k % 3], np.uint8)
        pixels = (rng.integers(0, 128, (16, 16, 3)) + tint // 2).astype(np.uint8)
        path = tmp_path / "folder" / f"class{k % 3}" / f"{k:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
    return tmp_path / "folder"


FAST = dict(model="conv", channels="4,8", latent_dim=3, epochs=3, batch_size=8, seed=4, device="cpu",
            test_fraction=0.25, plots=False, verbose=False, progress=False)


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_training_streamed_from_the_memory_map_equals_training_held(colour_folder, tmp_path):
    held = aekit.train(dataset=str(colour_folder), out=tmp_path / "held", **FAST)
    data = held.load_data()
    assert isinstance(data.x_train, np.memmap) and data.image_shape == (3, 16, 16)
    streamed = aekit.train(dataset=str(colour_folder), out=tmp_path / "streamed", max_memory="0", **FAST)
    assert _strip(streamed.metrics) == _strip(held.metrics) and len(held.metrics) == 3
    assert _same_weights(streamed, held)
    assert RunDir(tmp_path / "streamed").read_config()["data"]["max_memory"] == "0"


class CtrlCAt(Callback):
    """Acts as Ctrl-C would after optimisation step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            trainer._interrupted = True


# resumed streaming (None), or held from then on ("auto")
@pytest.mark.parametrize("resume_memory", [None, pytest.param("auto", marks=pytest.mark.slow)])
def test_a_streamed_run_stopped_mid_epoch_resumes_exactly(colour_folder, tmp_path, resume_memory):
    whole = aekit.train(dataset=str(colour_folder), out=tmp_path / "whole", **FAST)  # held throughout
    with pytest.raises(Interrupted):
        aekit.train(dataset=str(colour_folder), out=tmp_path / "cut", max_memory="0", callbacks=[CtrlCAt(17)],
                    **FAST)
    assert RunDir(tmp_path / "cut").read_checkpoint_meta()["position"]["batch"] == 17 - 12  # 12 steps per epoch
    again = aekit.train(resume=tmp_path / "cut", max_memory=resume_memory, verbose=False, progress=False,
                        plots=False)
    assert _strip(again.metrics) == _strip(whole.metrics)
    assert _same_weights(again, whole)
