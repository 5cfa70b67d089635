"""Your own images through the commands: the data settings as config fields and flags, skipped files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.cli.main import main
from aekit.rundir import RunDir

pytestmark = pytest.mark.usefixtures("isolated_cache")

FAST = ["--model", "conv", "--channels", "4,8", "--latent-dim", "2", "--epochs", "1", "--batch-size", "16",
        "--device", "cpu", "--no-plots"]


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def wide_folder(tmp_path):
    """40 colour images of 20x12 in two classes, plus two 30x30 ones and one broken file."""
    rng = np.random.default_rng(0)
    for k in range(40):
        _save(tmp_path / "wide" / f"c{k % 2}" / f"{k:02d}.png", rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))
    for k in range(2):
        _save(tmp_path / "wide" / "c0" / f"big{k}.png", rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    (tmp_path / "wide" / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return tmp_path / "wide"


def test_the_data_flags_shape_the_data_and_are_recorded_for_re_runs_and_every_command(wide_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", *FAST, "--dataset", str(wide_folder), "--image-size", "16", "--resize", "pad",
                 "--color-mode", "grayscale", "--test-fraction", "0.2", "--alpha-background", "black",
                 "--max-memory", "0", "--quiet", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "config.json").read_text())["data"]
    assert data == {"dataset": str(wide_folder), "data_dir": None, "scale": "unit", "image_size": "16x16",
                    "resize": "pad", "color_mode": "grayscale", "alpha_background": "black", "test_fraction": 0.2,
                    "strict": False, "max_memory": "0"}
    run = aekit.load_run(out)
    assert run.model.input_shape == (1, 16, 16)
    loaded = run.load_data()  # with the run's settings: grey, 16x16, a fifth for test
    assert loaded.image_shape == (1, 16, 16) and len(loaded.x_test) == 8 and len(loaded.x_train) == 34
    # a 20x12 image padded on black into 16x16 (16x10 in the middle): the rows above and below it are black
    x = np.concatenate([loaded.x_train, loaded.x_test])
    padded = (x[:, :, :3] == 0).all(axis=(1, 2, 3)) & (x[:, :, 13:] == 0).all(axis=(1, 2, 3))
    assert padded.sum() == 40 and (x[:, :, 3:13].max(axis=(1, 2, 3)) > 0).all()  # the two 30x30 ones fill it

    assert main(["eval", str(out), "--quiet", "--semi-sizes", "2", "--probe-train", "0"]) == 0
    assert main(["encode", str(out), "--out", str(tmp_path / "codes.npy"), "--split", "all"]) == 0
    assert len(np.load(tmp_path / "codes.npy")) == 42
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "config.json"), "--out", str(again), "--quiet", "--no-plots"]) == 0
    assert _strip(RunDir(again).read_metrics()) == _strip(RunDir(out).read_metrics())  # the same data, again


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_skipped_files_are_listed_in_the_run_directory_and_the_summary_line(wide_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--dataset", str(wide_folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith(
        f"1 unreadable data files skipped, listed in {out / 'skipped.txt'}")
    assert "skipped 1 of 43 image files that could not be read: c1/broken.png" in captured.err
    ((path, reason),) = RunDir(out).read_skipped()
    assert path == str(wide_folder / "c1" / "broken.png") and "not an image" in reason
    assert (out / "skipped.txt").read_text() == f"{path}\t{reason}\n"


def test_strict_stops_at_the_first_broken_file_with_one_line_and_leaves_no_run(wide_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--dataset", str(wide_folder), "--strict", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(wide_folder / "c1" / "broken.png") in err
    assert not out.exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--image-size", "0", "data.image_size: '0' is not a size; give N or WIDTHxHEIGHT"),
    ("--image-size", "64by48", "data.image_size: '64by48' is not a size"),
    ("--resize", "squash", "data.resize: 'squash' is not allowed; choose one of: crop, stretch, pad"),
    ("--color-mode", "grey", "data.color_mode: 'grey' is not allowed; choose one of: auto, grayscale, rgb"),
    ("--alpha-background", "pink", "data.alpha_background: 'pink' is not allowed; choose one of: white, black"),
    ("--test-fraction", "1", "data.test_fraction: must be < 1.0, got 1.0"),
    ("--test-fraction", "-0.1", "data.test_fraction: must be >= 0.0, got -0.1"),
    ("--max-memory", "lots", "data.max_memory: 'lots' is not a memory size; give auto, 0 (always stream)"),
])
def test_a_bad_data_setting_is_one_line_naming_the_field(tmp_path, capsys, flag, value, message):
    assert main(["train", "--dataset", "mnist-sample", flag, value, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aekit train: error: {message}") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_image_settings_for_a_named_source_are_one_line(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist-sample", "--image-size", "32", "--out", str(tmp_path / "r")]) == 2
    assert "image_size: applies to image folders only, and mnist-sample is not one" in capsys.readouterr().err


def test_the_python_api_takes_the_same_settings(wide_folder, tmp_path):
    run = aekit.train(dataset=str(wide_folder), image_size=[16, 8], color_mode="rgb", model="conv", channels="4",
                      latent_dim=2, epochs=1, device="cpu", out=tmp_path / "api", plots=False, verbose=False,
                      progress=False)
    assert run.config.data.image_size == "16x8" and run.model.input_shape == (3, 8, 16)
    assert os.path.exists(tmp_path / "api" / "skipped.txt")
