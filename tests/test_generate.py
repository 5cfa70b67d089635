"""The commands that draw from a trained run: generate, interpolate, traverse."""

import numpy as np
import pytest
from PIL import Image

from aekit.cli.main import main

CELL = 2 * 28 + 2  # an upscaled 28x28 image and its padding


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    common = ["--dataset", "mnist-sample", "--epochs", "1", "--batch-size", "128", "--device", "cpu", "--quiet"]
    assert main(["train", "--model", "vae", "--latent-dim", "2", "--hidden", "64", "--out", str(root / "vae"),
                 *common]) == 0
    assert main(["train", "--model", "mlp", "--latent-dim", "3", "--hidden", "64", "--out", str(root / "mlp"),
                 *common]) == 0
    return root


def _png(path):
    return np.asarray(Image.open(path))


def test_generate_samples_the_prior_of_a_vae(runs, capsys):
    assert main(["generate", str(runs / "vae"), "--n", "10"]) == 0
    grid = _png(runs / "vae" / "samples.png")
    assert grid.shape == (3 * CELL + 2, 4 * CELL + 2)  # 10 images in a 4-wide grid: 3 rows
    assert "10 samples (prior)" in capsys.readouterr().out
    assert main(["generate", str(runs / "vae"), "--n", "10", "--out", str(runs / "again.png")]) == 0
    assert np.array_equal(_png(runs / "again.png"), grid)  # same seed, same draws
    assert main(["generate", str(runs / "vae"), "--n", "10", "--seed", "1", "--out", str(runs / "other.png")]) == 0
    assert not np.array_equal(_png(runs / "other.png"), grid)


def test_generate_refuses_a_model_without_a_prior_and_says_what_to_do(runs, capsys):
    assert main(["generate", str(runs / "mlp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model 'mlp' has no prior" in err[0] and "--from-codes" in err[0]
    assert "vae" in err[0]
    assert not (runs / "mlp" / "samples.png").exists()

    assert main(["generate", str(runs / "mlp"), "--from-codes", "--n", "4"]) == 0
    grid = _png(runs / "mlp" / "samples_from_codes.png")
    assert grid.shape == (2 * CELL + 2, 2 * CELL + 2)
    assert grid.std() > 10  # decoded digits, not a blank page


def test_interpolate_writes_the_strip(runs, capsys):
    assert main(["interpolate", str(runs / "vae"), "--a", "3", "--b", "7", "--steps", "6"]) == 0
    strip = _png(runs / "vae" / "interpolate_3_7.png")
    assert strip.shape == (CELL + 2, 8 * CELL + 2)  # image 3, six steps, image 7
    cells = [strip[2:2 + 56, 2 + i * CELL:2 + i * CELL + 56] for i in range(8)]
    assert not np.array_equal(cells[1], cells[6])  # it moves from one end to the other
    assert main(["interpolate", str(runs / "vae"), "--a", "0", "--b", "1000"]) == 2
    assert "--b 1000: mnist-sample has test images 0 to 999" in capsys.readouterr().err


def test_traverse_one_row_per_code_unit(runs, capsys):
    assert main(["traverse", str(runs / "vae"), "--steps", "5"]) == 0
    assert _png(runs / "vae" / "traverse.png").shape == (2 * CELL + 2, 5 * CELL + 2)  # 2 units, 5 values
    assert main(["traverse", str(runs / "mlp"), "--dim", "2", "--range=-1,1", "--steps", "4"]) == 0
    assert _png(runs / "mlp" / "traverse_dim2.png").shape == (CELL + 2, 4 * CELL + 2)
    assert main(["traverse", str(runs / "mlp"), "--dim", "3"]) == 2
    assert "--dim 3: the code has units 0 to 2" in capsys.readouterr().err


def test_missing_run_is_one_line(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"aekit generate: error: {tmp_path / 'nope'}: no such run directory"
