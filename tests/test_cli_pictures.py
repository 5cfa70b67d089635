"""``aekit plot``, ``aekit report`` and ``aekit train --no-plots`` from the command line."""

import numpy as np
import pytest
from PIL import Image
from test_cli import aekit


def test_plot_grid_draws_m_by_n_test_images(sample_run):
    res = aekit("plot", sample_run.path, "--what", "grid", "--n", "4x6")
    assert res.returncode == 0, res.stderr
    path = sample_run.path / "grid.png"
    assert res.stdout.strip() == str(path)
    dark = np.asarray(Image.open(path).convert("L")) < 128  # digit cells are black, gaps and margins white
    rows = dark.mean(1) > 0.5
    cols = dark[rows].mean(0) > 0.5
    runs = lambda mask: np.count_nonzero(np.diff(mask.astype(int)) == 1)  # noqa: E731
    assert (runs(rows), runs(cols)) == (4, 6)


@pytest.mark.parametrize("args, needle", [
    (["--what", "manifold"], "--what manifold: needs a 2-D code; this run's code is 3-D"),
    (["--n", "5"], "--n: sizes one picture; name it with a single --what"),
    (["--what", "grid", "--n", "8 by 8"], "--n: expected a grid size like 8x8"),
    (["--what", "scatter"], "argument --what: invalid choice: 'scatter'"),
])
def test_plot_bad_requests_are_one_line(sample_run, args, needle):
    res = aekit("plot", sample_run.path, *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr


@pytest.mark.slow
def test_report_of_a_run_trained_without_plots(tmp_path):
    out = tmp_path / "bare"
    res = aekit("train", "--dataset", "mnist-sample", "--epochs", 1, "--device", "cpu", "--out", out,
                "--no-plots", "--quiet")
    assert res.returncode == 0, res.stderr
    assert not (out / "recon").exists() and not (out / "report.html").exists()
    res = aekit("report", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out / "report.html")
    page = (out / "report.html").read_text()
    assert "<h2>Reconstructions</h2>" in page  # recon.png: no snapshots to animate
    assert "Plotly.newPlot" in page and "<h2>Training</h2>" in page
    for name in ("latent.png", "latent.html", "loss.png", "recon.png"):
        assert (out / name).exists(), name
    res = aekit("report", tmp_path / "missing")
    assert res.returncode == 2 and "no such run directory" in res.stderr


@pytest.mark.parametrize("command", ["plot", "report", "eval", "generate", "interpolate", "traverse", "encode"])
def test_every_run_command_picks_weights_with_the_same_flag(command):
    from aekit.cli.main import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices[command]
    flags = {s for a in sub._actions for s in a.option_strings}
    assert "--which" in flags and "--weights" not in flags


def test_plot_with_the_best_weights(sample_run):
    res = aekit("plot", sample_run.path, "--what", "loss", "--which", "best")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(sample_run.path / "loss.png")


def test_plot_grid_recon_names_one_file_once(sample_run):
    before = {p.name for p in sample_run.path.iterdir()}
    res = aekit("plot", sample_run.path, "--what", "grid", "--recon", "--n", "2x3")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [str(sample_run.path / "grid_recon.png")] and res.stderr == ""
    assert {p.name for p in sample_run.path.iterdir()} - before <= {"grid_recon.png"}
    assert Image.open(sample_run.path / "grid_recon.png").width > Image.open(sample_run.path / "grid_recon.png").height
    res = aekit("plot", sample_run.path, "--recon")  # the default pictures have no grid: not silently ignored
    assert res.returncode == 2
    assert res.stderr.strip() == ("aekit plot: error: --recon: shows reconstructions in the grid picture; "
                                  "add --what grid")
