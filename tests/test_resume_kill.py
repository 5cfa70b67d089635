"""Runs killed for real: SIGKILL at random moments, Ctrl-C, a full or read-only disk (separate processes)."""

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aekit.rundir import RunDir

TRAIN = ["--dataset", "mnist-sample", "--device", "cpu", "--quiet", "--no-plots", "--model", "vae", "--hidden", "48",
         "--latent-dim", "2", "--batch-size", "64", "--kl-warmup-epochs", "1", "--epochs", "3"]


def _sigint_as_at_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job inherits SIGINT ignored


def aekit(*args, **kwargs) -> subprocess.Popen:
    """``python -m aekit ARGS``, with Ctrl-C working as in a terminal even when pytest runs in the background."""
    kwargs.setdefault("preexec_fn", _sigint_as_at_a_terminal)
    return subprocess.Popen([sys.executable, "-m", "aekit", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _rows(run: Path):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _state(run: Path):
    from safetensors.numpy import load_file

    tensors = load_file(run / "checkpoint.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("model/", "optimizer/"))}


def _training_started(proc: subprocess.Popen) -> float:
    """Wait for the line a run prints as its training starts ("training ..." or "resuming ..."); its time."""
    seen = []
    for line in proc.stderr:
        if line.startswith(("training ", "resuming ")):
            return time.monotonic()
        seen.append(line)
    raise AssertionError(f"the run ended before training (exit {proc.wait()}): {''.join(seen)}")


@pytest.mark.slow
def test_killed_at_ten_random_moments_and_resumed_equals_a_run_never_killed(tmp_path):
    # A checkpoint every ~0.1 s; each kill lands at a random moment of the training itself (before, between
    # and inside epochs, and now and then inside a checkpoint write), not in the process's start-up.
    args = [a for a in TRAIN if a != "--quiet"] + ["--epochs", "2", "--checkpoint-every", "0.002"]
    whole = aekit("train", *args, "--out", tmp_path / "whole")
    start = _training_started(whole)
    assert whole.wait(timeout=300) == 0
    duration = time.monotonic() - start

    run, rng, kills = tmp_path / "killed", random.Random(7), 0
    command = ["train", *args, "--out", run]
    while kills < 10:
        proc = aekit(*command)
        _training_started(proc)
        time.sleep(rng.uniform(0.0, duration))
        if proc.poll() is not None:  # it finished first: start over for another try
            shutil.rmtree(run)
            command = ["train", *args, "--out", run]
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        command = ["train", "--resume", run, "--no-plots"]
        if (run / "checkpoint.safetensors").exists() and RunDir(run).read_checkpoint_meta().get("finished"):
            break  # killed after the run had finished and saved: resuming it is a no-op
    proc = aekit(*command)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    assert _rows(run) == _rows(tmp_path / "whole")
    a, b = _state(tmp_path / "whole"), _state(run)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not [p for p in run.rglob(".*") if p.name.endswith(".tmp")]


def test_a_write_killed_half_way_leaves_the_old_file_and_its_temp_goes_at_the_next_start(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("old")
    writer = subprocess.Popen([sys.executable, "-c", f"""
import time
from aekit.io import atomic_write
def slow(tmp):
    with open(tmp, "w") as f:
        f.write("half of the new")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
atomic_write({str(run / "config.json")!r}, slow)
"""], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert (run / "config.json").read_text() == "old"
    (leftover,) = [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert RunDir(run).remove_stale_temp_files() == [leftover] and not leftover.exists()


def _wait_for(path: Path, proc: subprocess.Popen, timeout=120):
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < end
        time.sleep(0.05)


def test_ctrl_c_saves_the_run_and_says_how_to_continue(tmp_path):
    run = tmp_path / "run"
    proc = aekit("train", *TRAIN[:-1], "20", "--out", run)
    _wait_for(run / "metrics.jsonl", proc)
    while not (run / "metrics.jsonl").read_text():  # at least one epoch done
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aekit train: interrupted during epoch "), err
    assert f"the run is saved in {run}" in lines[0] and f"continue it with: aekit train --resume {run}" in lines[0]
    meta = RunDir(run).read_checkpoint_meta()
    assert meta["kind"] == "state" and meta["epoch"] >= 1


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9])  # past the interpreter's own start-up, even on a busy machine
def test_ctrl_c_in_the_first_second_is_one_line(tmp_path, delay):
    proc = aekit("train", *TRAIN, "--out", tmp_path / "run")
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists() or (tmp_path / "run" / "checkpoint.safetensors").exists()



def test_a_run_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path):
    """nohup, or a shell's background job: SIGINT arrives ignored, and training does not take it back."""
    proc = aekit("train", *TRAIN, "--out", tmp_path / "run", preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                                               signal.SIG_IGN))
    _wait_for(tmp_path / "run" / "metrics.jsonl", proc)  # inside training
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3  # all its epochs

@contextlib.contextmanager
def _tmpfs(path: Path, size: str, readonly=False):
    """A small tmpfs mounted at ``path`` (root only; the test is skipped where mounting is not allowed)."""
    path.mkdir()
    opts = f"size={size}" + (",ro" if readonly else "")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    # room for one checkpoint (~1.5 MB) and its best, not for the temp copy of the next one
    with _tmpfs(tmp_path / "small", "2500k") as small:
        proc = aekit("train", *TRAIN[:-1], "20", "--hidden", "256", "--checkpoint-every", "0.0001", "--out",
                     small / "run")
        out, err = proc.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"aekit train: error: {small / 'run'}/") and "No space left on device" in lines[0]
        if (small / "run" / "checkpoint.safetensors").exists():
            import aekit as api

            run = api.load_run(small / "run")  # what was saved still loads
            assert run.metrics and np.isfinite(run.metrics[-1]["test_loss"])
        assert not [p for p in (small / "run").rglob(".*") if p.name.endswith(".tmp")]


def test_a_read_only_run_is_one_line_in_every_writing_command(sample_run, tmp_path):
    ro = tmp_path / "ro"
    with _tmpfs(ro, "20m"):
        shutil.copytree(sample_run.path, ro / "run")
        assert subprocess.run(["mount", "-o", "remount,ro", str(ro)], capture_output=True).returncode == 0
        for command in (["eval", ro / "run", "--quiet"], ["plot", ro / "run", "--what", "loss"], ["report", ro / "run"],
                        ["generate", ro / "run", "--from-codes"], ["train", "--resume", ro / "run", "--epochs", "3"]):
            proc = aekit(*command)
            out, err = proc.communicate(timeout=300)
            lines = err.strip().splitlines()
            assert proc.returncode == 2 and "Traceback" not in err, (command, err)
            assert lines[-1].startswith(f"aekit {command[0]}: error: {ro / 'run'}"), lines
            assert "Read-only file system" in lines[-1] and not [x for x in lines if "error" in x][1:], lines


def test_a_killed_download_leaves_a_part_file_that_the_next_fetch_removes(tmp_path):
    from aekit.data.download import fetch

    stale = tmp_path / ".t10k-images-idx3-ubyte.gz.999999999.abcd1234.part"  # a pid no process has
    live = tmp_path / f".t10k-images-idx3-ubyte.gz.{os.getpid()}.abcd1234.part"  # a download under way
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    with pytest.raises(Exception):
        fetch("t10k-images-idx3-ubyte.gz", "0" * 32, ["http://127.0.0.1:9/"], tmp_path, timeout=0.5)
    assert not stale.exists() and live.exists()


def test_an_empty_out_is_refused_and_a_failed_start_leaves_no_directory(tmp_path):
    res = subprocess.run([sys.executable, "-m", "aekit", "train", "--out", ""], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip() == "aekit train: error: --out: an empty path; give the run " \
                                                         "directory a name"
    res = subprocess.run([sys.executable, "-m", "aekit", "train", "--dataset", str(tmp_path / "none.npz"), "--out",
                          tmp_path / "run"], capture_output=True, text=True)
    assert res.returncode == 2 and "none.npz: path not found" in res.stderr
    assert not (tmp_path / "run").exists()
