"""Many processes with torchrun: 2 CPU processes (gloo) train as one does; a crashed rank ends the run in one line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAIN = ["train", "--dataset", "mnist-sample", "--hidden", "64", "--latent-dim", "3", "--batch-size", "64",
         "--device", "cpu", "--no-plots", "--seed", "4"]
TOLERANCE = 1e-5  # relative: the processes add the same numbers in another order, nothing more


def aekit(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


def _metrics(run: Path):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    run = tmp_path_factory.mktemp("dist") / "one"
    res = aekit(*TRAIN, "--epochs", "3", "--quiet", "--out", run)
    assert res.returncode == 0, res.stderr
    return _metrics(run)


@pytest.mark.slow
def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path, one_process):
    res = aekit(*TRAIN, "--epochs", "3", "--nproc", "2", "--out", tmp_path / "two")
    assert res.returncode == 0, res.stderr
    assert "on cpu x 2 processes" in res.stderr and res.stdout.count("done:") == 1  # rank 0 alone prints
    two = _metrics(tmp_path / "two")
    assert [m["step"] for m in two] == [m["step"] for m in one_process] == [63, 126, 189]
    for a, b in zip(two, one_process):
        for key in ("train_loss", "test_loss", "test_mse"):
            assert a[key] == pytest.approx(b[key], rel=TOLERANCE), key
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert files == ["best.safetensors", "checkpoint.safetensors", "config.json", "metrics.jsonl"]


def test_a_global_batch_that_does_not_split_evenly_is_one_line(tmp_path):
    res = aekit(*TRAIN, "--epochs", "1", "--nproc", "2", "--batch-size", "63", "--out", tmp_path / "odd")
    assert res.returncode == 2
    assert "train.batch_size: the global batch of 63 must split evenly among the 2 processes" in res.stderr


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
def test_a_crashed_process_ends_the_others_in_one_line_and_the_run_resumes(tmp_path, one_process):
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "aekit", *TRAIN, "--epochs", "3", "--nproc", "2", "--out",
                                 run, "--checkpoint-every", "0.0005", "--quiet"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 300
    while not (run / "checkpoint.safetensors").exists():  # killed once it has something to resume from
        assert launcher.poll() is None and time.monotonic() < end, launcher.stderr.read()
        time.sleep(0.05)
    workers = [p for p in _children(launcher.pid) if "aekit" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(workers) == 2, workers
    os.kill(max(workers), signal.SIGKILL)
    out, err = launcher.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert launcher.returncode != 0 and "Traceback" not in err, err
    assert "was killed by signal SIGKILL, so the others were stopped" in lines[-1], lines
    assert lines[-1].startswith("aekit train: error: process ")

    res = aekit("train", "--resume", run, "--nproc", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    again = _metrics(run)
    assert [m["epoch"] for m in again] == [1, 2, 3]
    assert again[-1]["test_loss"] == pytest.approx(one_process[-1]["test_loss"], rel=TOLERANCE)


def test_a_rank_with_no_image_in_the_last_batch_takes_an_empty_step():
    """10 images, global batch 4, 2 ranks... and 9 images: the last batch has one image, so rank 1 has none."""
    import torch

    from aekit.training.trainer import Resident

    images = torch.arange(9).reshape(9, 1, 1, 1)
    order = torch.arange(9)
    assert [b.flatten().tolist() for b in Resident(images).batches(2, order[1::2])] == [[1, 3], [5, 7]]
    assert [b.flatten().tolist() for b in Resident(images).batches(2, order[0::2])] == [[0, 2], [4, 6], [8]]


@pytest.mark.slow
def test_two_processes_match_one_when_a_rank_has_nothing_in_the_last_batch(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    data = tmp_path / "odd.npz"  # 101 training images, global batch 4: the last batch has 1 image
    np.savez(data, x_train=rng.integers(0, 256, (101, 8, 8), dtype=np.uint8), y_train=np.arange(101) % 3,
             x_test=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), y_test=np.arange(20) % 3)
    args = ["train", "--dataset", data, "--hidden", "16", "--latent-dim", "2", "--batch-size", "4", "--epochs", "2",
            "--device", "cpu", "--no-plots", "--quiet"]
    assert aekit(*args, "--out", tmp_path / "one").returncode == 0
    res = aekit(*args, "--nproc", "2", "--out", tmp_path / "two")
    assert res.returncode == 0, res.stderr
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert [m["step"] for m in two] == [26, 52]
    for a, b in zip(two, one):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=TOLERANCE)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=TOLERANCE)
