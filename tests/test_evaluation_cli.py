"""End to end: a short run on mnist-sample, then aekit eval / encode / compare and the baseline cache."""

import csv
import json
import math

import numpy as np
import pytest

import aekit
from aekit.cli.main import main
from aekit.evaluation import metrics, suite

SMALL = ["--semi-sizes", "20,50", "--semi-draws", "2", "--kmeans-init", "2"]  # the CLI defaults are 10,100,1000 x 5
SMALL_SETTINGS = suite.EvalSettings(semi_sizes=(20, 50), semi_draws=2, kmeans_init=2)
METRIC_KEYS = {"kmeans_acc", "kmeans_nmi", "kmeans_ari", "knn_acc", "logreg_acc",
               "semi_20", "semi_20_std", "semi_50", "semi_50_std"}
RECON_KEYS = {"mse", "bce", "psnr", "ssim"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    return aekit.train(dataset="mnist-sample", epochs=2, device="cpu", out=out, verbose=False, progress=False)


@pytest.fixture(scope="module")
def evaluated(run, tmp_path_factory):
    """``aekit eval RUN --scores FILE`` once, with small semi-supervised settings."""
    scores = tmp_path_factory.mktemp("scores") / "scores.csv"
    code, out, err = _cli(["eval", str(run.path), "--scores", str(scores), *SMALL])
    assert code == 0, err
    return run.path / "eval.json", scores, out, err


def _cli(argv):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _numbers(obj, path=""):
    """Every leaf of a JSON tree with its path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    else:
        yield path, obj


def test_eval_json_has_every_field_and_every_number_is_finite(evaluated, run):
    path, _, stdout, stderr = evaluated
    summary = json.loads(path.read_text())
    assert summary["format"] == "aekit-eval/1" and "[0,1]" in summary["pixels"]
    assert summary["run"]["preset"] == "classic-3d-tanh" and summary["run"]["latent_dim"] == 3
    assert summary["dataset"]["name"] == "mnist-sample" and summary["dataset"]["test"] == 1000
    assert summary["settings"]["semi_sizes"] == [20, 50] and summary["settings"]["probe_train"] == 10000
    results = summary["results"]
    assert set(results["model"]) == set(results["pca"]) == RECON_KEYS | METRIC_KEYS
    assert set(results["pixels"]) == METRIC_KEYS
    assert summary["labels"] == {"model": "classic-3d-tanh", "pca": "PCA-3", "pixels": "pixels (784)"}
    assert [list(w) for w in summary["anomaly"]["worst"]] == [["index", "label", "class", "error"]] * 8
    assert all(w["class"] == str(w["label"]) for w in summary["anomaly"]["worst"])  # mnist's classes are its digits
    # Every number is finite. The one allowed non-number in a metric is the string "inf" for the PSNR of a
    # perfect reconstruction (JSON has no infinity); a trained model does not reconstruct perfectly.
    for where, value in _numbers(summary):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert math.isfinite(value), where
    for row in results.values():
        for key, value in row.items():
            if key == "psnr" and value == "inf":  # the documented exception, see above
                continue
            assert isinstance(value, (int, float)), key
            if key.endswith(("_acc", "_nmi")) or key in ("semi_20", "semi_50"):
                assert 0.0 <= value <= 1.0, key
            elif key in ("kmeans_ari", "ssim"):
                assert -1.0 <= value <= 1.0, key
    # the model's MSE is the trainer's test MSE of the last epoch (unit scale, sigmoid outputs: no clipping)
    assert results["model"]["mse"] == pytest.approx(run.metrics[-1]["test_mse"], rel=1e-5)
    assert "k-means accuracy" in stdout and "PCA-3" in stdout and "8 worst reconstructions" in stdout
    for section in ("reconstruction (model)", "k-means (pixels)", "semi-supervised (PCA-3)"):
        assert section in stderr


def test_scores_file_and_worst_images_agree_with_the_reconstructions(evaluated, run):
    from skimage.metrics import peak_signal_noise_ratio

    path, scores, _, _ = evaluated
    summary = json.loads(path.read_text())
    with open(scores) as f:
        rows = list(csv.DictReader(f))
    data = run.load_data()
    assert len(rows) == len(data.x_test) and list(rows[0]) == ["index", "file", "label", "class", "error"]
    assert {r["file"] for r in rows} == {""}  # mnist-sample has no files: the index names the image
    errors = np.array([float(r["error"]) for r in rows])
    assert np.all(np.diff(errors) <= 0)  # worst first
    assert [int(r["index"]) for r in rows[:8]] == [w["index"] for w in summary["anomaly"]["worst"]]

    x = data.x_test.astype(np.float32) / 255
    recon = np.clip(run.reconstruct(data.x_test), 0, 1)
    expected = ((x - recon) ** 2).reshape(len(x), -1).mean(1)
    idx = np.array([int(r["index"]) for r in rows])
    np.testing.assert_allclose(errors, expected[idx], rtol=1e-5)
    assert [int(r["label"]) for r in rows] == data.y_test[idx].tolist()
    assert [r["class"] for r in rows] == [data.class_names[y] for y in data.y_test[idx]]
    model = summary["results"]["model"]
    assert model["psnr"] == pytest.approx(peak_signal_noise_ratio(x, recon, data_range=1.0), rel=1e-5)
    assert model["ssim"] == pytest.approx(metrics.ssim(x, recon), rel=1e-6)


@pytest.mark.slow
def test_baselines_are_computed_once_then_read_from_the_cache(run, tmp_path, monkeypatch):
    calls = []
    real_pca, real_pixels = suite.pca_baseline, suite.pixel_baseline
    monkeypatch.setattr(suite, "pca_baseline", lambda *a: calls.append("pca") or real_pca(*a))
    monkeypatch.setattr(suite, "pixel_baseline", lambda *a: calls.append("pixels") or real_pixels(*a))
    first = aekit.evaluate(run, settings=SMALL_SETTINGS, cache_dir=tmp_path, log=lambda m: None)
    assert calls == ["pca", "pixels"] and first.summary["baselines_cached"] == {"pca": False, "pixels": False}
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].startswith("mnist-sample-pca3-") and files[1].startswith("mnist-sample-pixels-")

    def fail(*args):
        raise AssertionError("baseline recomputed although it is cached")

    monkeypatch.setattr(suite, "pca_baseline", fail)
    monkeypatch.setattr(suite, "pixel_baseline", fail)
    logged = []
    second = aekit.evaluate(run.path, settings=SMALL_SETTINGS, cache_dir=tmp_path, log=logged.append)
    assert second.summary["baselines_cached"] == {"pca": True, "pixels": True}
    assert second.summary["results"] == first.summary["results"]
    assert "PCA baseline: from the cache" in logged

    # other settings are another key: computed again, not read
    with pytest.raises(AssertionError, match="recomputed"):
        aekit.evaluate(run, settings=suite.EvalSettings(semi_sizes=(20,), semi_draws=1, kmeans_init=2),
                       cache_dir=tmp_path, log=lambda m: None)
    # a damaged entry is recomputed
    monkeypatch.setattr(suite, "pca_baseline", real_pca)
    (tmp_path / files[0]).write_text("{not json")
    third = aekit.evaluate(run, settings=SMALL_SETTINGS, cache_dir=tmp_path, log=lambda m: None)
    assert third.summary["baselines_cached"] == {"pca": False, "pixels": True}
    assert third.summary["results"]["pca"] == first.summary["results"]["pca"]


@pytest.mark.slow
def test_centred_run_is_scored_on_shifted_clipped_pixels(tmp_path):
    run = aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=1, device="cpu", out=tmp_path / "r",
                      verbose=False, progress=False)
    settings = suite.EvalSettings(semi_sizes=(20,), semi_draws=1, kmeans_init=1, probe_train=500)
    result = aekit.evaluate(run, settings=settings, cache_dir=tmp_path / "cache", log=lambda m: None)
    data = run.load_data()
    recon = run.reconstruct(data.x_test)  # tanh outputs, centred scale
    assert recon.min() < -0.5 or recon.max() > 0.5  # outside the image range: clipping matters
    unit = np.clip(recon + 0.5, 0, 1)
    x = data.x_test.astype(np.float32) / 255
    assert result.summary["run"]["scale"] == "centered"
    assert result.summary["results"]["model"]["mse"] == pytest.approx(np.mean((x - unit) ** 2), rel=1e-5)
    assert result.summary["results"]["model"]["mse"] <= run.metrics[-1]["test_mse"] + 1e-9


@pytest.mark.parametrize("split, n", [("test", 1000), ("all", 5000)])
def test_encode_exports_codes_with_labels(run, tmp_path, split, n):
    data = run.load_data()
    code, out, err = _cli(["encode", str(run.path), "--out", str(tmp_path / "codes.npy"), "--split", split])
    assert code == 0, err
    table = np.load(tmp_path / "codes.npy")  # a structured array: no pickle
    assert table.dtype.names == ("split", "index", "file", "label", "class", "z") and len(table) == n
    test = table[table["split"] == "test"]
    np.testing.assert_allclose(test["z"], run.encode(data.x_test), rtol=1e-6)
    assert np.array_equal(test["label"], data.y_test) and np.array_equal(test["index"], np.arange(1000))

    code, _, err = _cli(["encode", str(run.path), "--out", str(tmp_path / "codes.csv"), "--split", split])
    assert code == 0, err
    with open(tmp_path / "codes.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["split", "index", "file", "label", "class", "z0", "z1", "z2"] and len(rows) == n + 1
    np.testing.assert_allclose(np.array([r[5:] for r in rows[1:]], float), table["z"], rtol=1e-6)
    assert [(r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in rows[1:]] == table[["split", "index", "file", "label",
                                                                                  "class"]].tolist()


def test_compare_shows_runs_side_by_side(evaluated, run, tmp_path):
    other = aekit.train("classic-30-bce", dataset="mnist-sample", epochs=1, device="cpu", out=tmp_path / "bce",
                        verbose=False, progress=False)  # no eval.json
    code, out, err = _cli(["compare", str(run.path), str(other.path), "--csv", str(tmp_path / "c.csv"),
                           "--sort", "train_test_mse"])
    assert code == 0, err
    lines = out.strip().splitlines()
    header = [c.strip() for c in lines[0].split("|")[1:-1]]
    assert header[:3] == ["run", "preset", "model"] and {"knn_acc", "kmeans_acc", "semi_50", "pca_mse"} <= set(header)
    assert len(lines) == 4
    with open(tmp_path / "c.csv") as f:
        rows = list(csv.DictReader(f))
    by_preset = {r["preset"]: r for r in rows}
    summary = json.loads((run.path / "eval.json").read_text())
    assert float(by_preset["classic-3d-tanh"]["knn_acc"]) == summary["results"]["model"]["knn_acc"]
    assert by_preset["classic-30-bce"]["knn_acc"] == "" and by_preset["classic-30-bce"]["latent_dim"] == "30"
    mses = [float(r["train_test_mse"]) for r in rows]
    assert mses == sorted(mses)


@pytest.mark.parametrize("argv, needle", [
    (["compare", "no/such/run"], "no/such/run: no such run directory"),
    (["eval", "no/such/run"], "no/such/run: no such run directory"),
    (["encode", "RUN", "--out", "codes.txt"], "must end in .npy or .csv"),
    (["eval", "RUN", "--semi-sizes", "1"], "eval.semi_sizes[0]: must be >= 2"),
    (["eval", "RUN", "--dataset", "SMALL_IMAGES"], "images are 1x8x8 but the run's model takes 1x28x28"),
])
def test_user_errors_are_one_line_and_exit_2(run, tmp_path, argv, needle):
    small = tmp_path / "small.npz"
    rng = np.random.default_rng(0)
    np.savez(small, x_train=rng.integers(0, 255, (20, 8, 8), dtype=np.uint8), y_train=np.arange(20) % 2,
             x_test=rng.integers(0, 255, (10, 8, 8), dtype=np.uint8), y_test=np.arange(10) % 2)
    argv = [str(run.path) if a == "RUN" else str(small) if a == "SMALL_IMAGES" else a for a in argv]
    code, out, err = _cli(argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err, err


def test_eval_draws_the_worst_and_puts_the_table_in_the_report(evaluated, run):
    from PIL import Image

    summary = json.loads(evaluated[0].read_text())
    worst = summary["anomaly"]["worst"]
    assert len(worst) == 8
    picture = np.asarray(Image.open(run.path / "worst.png"))
    data = run.load_data()
    # top-left cell (after the 2 px border, upscaled x2) is the worst test image itself
    top_left = picture[2:2 + 56:2, 2:2 + 56:2]
    assert np.array_equal(top_left, data.x_test[worst[0]["index"], 0])
    page = (run.path / "report.html").read_text()
    assert '<section id="eval"><h2>Evaluation</h2>' in page
    assert "k-means accuracy" in page and f"#{worst[0]['index']} (class {worst[0]['class']}, " in page
