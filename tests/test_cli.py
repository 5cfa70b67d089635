import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aekit.presets import PRESETS


def aekit(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run1"
    res = aekit("train", "--dataset", "mnist-sample", "--epochs", 2, "--device", "cpu", "--out", out)
    assert res.returncode == 0, res.stderr
    return out, res


def test_train_writes_the_whole_run_directory(cli_run):
    out, res = cli_run
    epoch_lines = [line for line in res.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "train loss" in epoch_lines[0] and "test loss" in epoch_lines[0]
    assert "Traceback" not in res.stderr

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "classic-3d-tanh" and cfg["train"]["epochs"] == 2
    assert cfg["data"]["dataset"] == "mnist-sample" and cfg["model"]["hidden"] == [128, 64, 12]
    # what precision auto came to on this machine, and the shape of one code
    assert cfg["resolved"] == {"precision": "fp32", "code_shape": [3]}

    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert {"train_loss", "test_loss", "test_mse", "seconds"} <= set(m)
        assert np.isfinite([m["train_loss"], m["test_loss"]]).all()

    from aekit.rundir import RunDir

    for stem in ("checkpoint", "best"):
        meta = RunDir(out).read_checkpoint_meta(stem)
        assert meta["format"] == "aekit-checkpoint/2" and meta["config"] == {k: v for k, v in cfg.items()
                                                                             if k != "resolved"}
        assert (out / f"{stem}.safetensors").stat().st_size > 100_000
        assert not (out / f"{stem}.json").exists()  # one file per checkpoint
    assert RunDir(out).read_checkpoint_meta("checkpoint")["epoch"] == 2

    frames = sorted(p.name for p in (out / "recon").glob("epoch_*.png"))
    assert frames == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    for name in ("recon.gif", "latent.png", "latent.html", "loss.png", "report.html"):
        assert (out / name).stat().st_size > 1000, name
    assert res.stdout.splitlines()[-1] == f"report: {out / 'report.html'}"
    first = np.asarray(Image.open(out / "recon" / "epoch_000.png"))
    last = np.asarray(Image.open(out / "recon" / "epoch_002.png"))
    assert first.shape == last.shape and first.shape[1] > first.shape[0]  # 2 rows x 10 columns
    half = first.shape[0] // 2
    assert np.array_equal(first[:half], last[:half])  # originals on top stay fixed
    assert not np.array_equal(first[half:], last[half:])  # reconstructions below change
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_config_json_re_runs_the_same_training(cli_run, tmp_path):
    """... with or without pictures: the snapshots during training do not change it."""
    out, _ = cli_run
    res = aekit("train", "--config", out / "config.json", "--out", tmp_path / "again", "--quiet", "--no-plots")
    assert res.returncode == 0, res.stderr
    first = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(x) for x in (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()]
    assert [m["test_loss"] for m in first] == [m["test_loss"] for m in again]


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "train.epochs: must be >= 1"),
    (["--activation", "swish"], "model.activation: 'swish' is not allowed; choose one of: relu"),
    (["--lr", "fast"], "argument --lr: invalid float value"),
    (["--batch-size", "-4"], "train.batch_size: must be >= 1"),
    (["--preset", "nope"], "preset: unknown preset 'nope'"),
    (["--dataset", "no/such/file.csv"], "no/such/file.csv"),
    (["--wings", "2"], "unrecognized arguments: --wings"),
    (["--loss", "bce", "--preset", "classic-2d-relu"], "data.scale"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    res = aekit("train", *args, "--out", tmp_path / "r", "--device", "cpu")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert not (tmp_path / "r" / "config.json").exists()


def test_bad_config_file_key(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"train": {"epochs": 1, "momentum": 0.9}}))
    res = aekit("train", "--config", tmp_path / "c.json")
    assert res.returncode == 2
    assert res.stderr.strip() == "aekit train: error: train.momentum: unknown field; allowed: " \
        "epochs, batch_size, lr, weight_decay, seed, device, snapshot_images, precision, checkpoint_every, on_nan, " \
        "steps, optimizer, lr_schedule, warmup_steps, augment, shift, val_fraction, patience, compile"


def test_presets_lists_every_preset_with_its_source():
    res = aekit("presets")
    assert res.returncode == 0
    for name, entry in PRESETS.items():
        assert name in res.stdout and entry["source"] in res.stdout
    assert "classic-3d-tanh (default)" in res.stdout


def test_models_and_datasets_commands():
    from aekit.models import get_model_class, list_models

    res = aekit("models")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert len(lines) == len(list_models()) >= 8
    for line, name in zip(lines, list_models()):
        assert line.split()[0] == name and line.endswith(get_model_class(name).summary)
    res = aekit("datasets")
    assert res.returncode == 0
    for name in ("mnist", "mnist-sample", "fashion-mnist"):
        assert any(line.startswith(name + " ") for line in res.stdout.splitlines())


def test_help_shows_defaults_and_does_not_import_torch():
    res = aekit("train", "--help")
    assert res.returncode == 0 and "[default: 0.005]" in res.stdout and "[default: 128,64,12]" in res.stdout
    assert "--beta" in res.stdout and "--noise-level" in res.stdout  # every model's own flags, without torch
    code = ("import sys; from aekit.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "False"


def test_python_dash_m_and_version():
    res = aekit("--version")
    assert res.returncode == 0 and res.stdout.startswith("aekit ")


def _closed_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the socket is: connections are refused


@pytest.mark.slow
def test_offline_mnist_falls_back_to_the_sample_with_one_line(tmp_path):
    env = {"AEKIT_MIRRORS": f"http://127.0.0.1:{_closed_port()}/", "AEKIT_CACHE": str(tmp_path / "cache")}
    res = aekit("train", "--epochs", 1, "--device", "cpu", "--out", tmp_path / "r", "--quiet", env=env)
    assert res.returncode == 0, res.stderr
    notices = [line for line in res.stderr.splitlines() if "mnist-sample" in line]
    assert len(notices) == 1 and "--data-dir" in notices[0]
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data"]["dataset"] == "mnist-sample"  # the config re-runs what was really used


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_a_clear_error(tmp_path):
    res = aekit("train", "--dataset", "mnist-sample", "--device", "cuda", "--out", tmp_path / "r")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "aekit train: error: train.device: 'cuda' requested but no CUDA device is available; use auto or cpu"]
