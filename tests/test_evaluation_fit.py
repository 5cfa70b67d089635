"""aekit eval on data its defaults do not fit: what shrinks, what is skipped, and the PCA method per shape."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

import aekit
from aekit.cli.main import main
from aekit.data import ImageData
from aekit.errors import EvalError
from aekit.evaluation import probes, suite
from aekit.evaluation.cache import BaselineCache

TUX_CLASSES = ("animals", "food", "plants", "clothes", "medical", "naturalforces")  # 146 ... 3 images


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _data(n_train, n_test, shape=(1, 8, 8), y_train=None, y_test=None, seed=0):
    rng = np.random.default_rng(seed)
    return ImageData("synthetic", rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
                     None if y_train is None else np.asarray(y_train, np.int64),
                     rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
                     None if y_test is None else np.asarray(y_test, np.int64))


# --------------------------------------------------------------------------- a real colour folder, every default

@pytest.fixture(scope="module")
def stamps_run(testdata, tmp_path_factory):
    """One epoch of a small conv model on six Tux Paint stamp classes at 32x32, the smallest with 3 images."""
    source = testdata / "tuxpaint-stamps"
    if not source.is_dir():
        pytest.skip(f"{source} is missing (scripts/test fetches it)")
    root = tmp_path_factory.mktemp("stamps") / "stamps"
    for name in TUX_CLASSES:
        shutil.copytree(source / name, root / name)
    out = tmp_path_factory.mktemp("stamps-run") / "run"
    code, _, err = _cli(["train", "--model", "conv", "--channels", "8,16", "--latent-dim", "8", "--epochs", "1",
                         "--device", "cpu", "--dataset", str(root), "--image-size", "32", "--out", str(out), "--quiet"])
    assert code == 0, err
    return out


def test_eval_with_every_default_on_a_folder_with_a_class_of_three_images(stamps_run):
    code, printed, err = _cli(["eval", str(stamps_run)])
    assert code == 0, err
    summary = json.loads((stamps_run / "eval.json").read_text())
    n_train = summary["dataset"]["train"]
    assert n_train < 1000 and summary["settings"]["semi_sizes"] == [10, 100, 1000]  # the defaults, as asked
    # 1000 labels cannot be drawn from fewer training images: skipped, saying why and which flag to change
    assert summary["skipped"] == [f"semi-supervised with 1000 labels: the training split has {n_train} images "
                                  "(--semi-sizes, eval.semi_sizes)"]
    # 100 labels over 6 classes is up to 17 per class; the small classes give all they have
    (shrunk,) = summary["shrunk"]
    assert shrunk.startswith("semi-supervised with 100 labels: a class's share is up to 17 training images, but class")
    assert "(naturalforces) has 3" in shrunk and "(medical) has " in shrunk
    model = summary["results"]["model"]
    assert {"semi_10", "semi_100", "knn_acc", "kmeans_acc"} <= set(model) and "semi_1000" not in model
    assert 0 <= model["semi_100"] <= 1 and summary["results"]["pixels"]["semi_100"] > 0
    # 3x32x32 = 3072 values: the pixel probes use the first 256 principal components (here as many as there are
    # training images), fitted exactly through the Gram matrix
    width = min(256, n_train)
    assert summary["methods"] == {"pca": "gram", "pca_components": width, "pixels": f"pca-{width}"}
    assert summary["labels"]["pixels"] == f"pixels (3072 -> PCA-{width})"
    assert any("exact, from the Gram matrix" in n for n in summary["notes"])
    # each line in the log, under the table, and in the report
    for line in summary["shrunk"] + summary["skipped"]:
        assert line in err and line in printed
    assert "Not computed: semi-supervised with 1000 labels" in (stamps_run / "report.html").read_text()
    # every section said when it started, and took a recorded time
    assert "k-means (pixels) ..." in err and "semi-supervised (PCA-8) ..." in err
    assert set(summary["sections"]) >= {"reconstruction (model)", "k-means (pixels)",
                                        f"PCA-{width} of the training pixels (gram, {n_train} x 3072)"}


def test_one_class_skips_a_class_without_test_images_and_notes_a_handful(stamps_run, tmp_path):
    data = aekit.load_run(stamps_run).load_data()
    small = data.class_names.index("naturalforces")
    few = data.class_names.index("clothes")
    assert np.sum(data.y_test == small) == 0 and 0 < np.sum(data.y_test == few) < 10
    code, printed, err = _cli(["eval", str(stamps_run), "--one-class", f"{small},{few}", "--out",
                               str(tmp_path / "oc.json")])
    assert code == 0, err
    summary = json.loads((tmp_path / "oc.json").read_text())
    assert [r["class"] for r in summary["rows"]] == [few]
    assert summary["skipped"] == [f"one-class {small} (naturalforces): it has no test images, so AUROC and AP "
                                  "are not defined"]
    assert summary["notes"][0].startswith(f"one-class {few} (clothes): only ")
    assert "Not computed: one-class" in printed and "Traceback" not in err
    # the PCA row depends on the data alone: a second run of the protocol reads it from the cache
    code, _, err = _cli(["eval", str(stamps_run), "--one-class", str(few), "--out", str(tmp_path / "oc2.json")])
    assert code == 0 and f"one-class {few} (clothes): PCA-8 from the cache" in err
    assert json.loads((tmp_path / "oc2.json").read_text())["rows"][0]["pca"] == summary["rows"][0]["pca"]


# --------------------------------------------------------------------------- settings fitted to the data

def test_plan_shrinks_k_and_skips_what_one_class_cannot_give():
    data = _data(30, 10, y_train=[0] * 20 + [1] * 10, y_test=[0] * 10)
    plan = suite.plan(data, suite.EvalSettings(knn_k=50, probe_train=12), latent_dim=3)
    assert plan.settings.knn_k == 12 and not plan.kmeans and plan.probes and plan.semi
    assert plan.shrunk == ["kNN: k = 12 instead of 50: the probes learn from 12 training images (--knn-k, eval.knn_k)"]
    assert plan.skipped[0] == "k-means: every test image is of class 0; there is nothing to cluster"
    assert [s for s in plan.skipped if "semi" in s] == [
        "semi-supervised with 100 labels: the training split has 30 images (--semi-sizes, eval.semi_sizes)",
        "semi-supervised with 1000 labels: the training split has 30 images (--semi-sizes, eval.semi_sizes)"]

    single = suite.plan(_data(30, 10, y_train=[2] * 30, y_test=[2] * 10), suite.EvalSettings(), 3)
    assert not single.labels and len(single.skipped) == 2 and "a classifier needs two" in single.skipped[1]
    tiny = suite.plan(_data(30, 10, shape=(1, 5, 6)), suite.EvalSettings(), 40)
    assert tiny.components == 30 and tiny.ssim_window == 5 and not tiny.labels
    assert tiny.shrunk == ["PCA-40: 30 components, as many as 30 training images of 30 values allow",
                           "SSIM: a 5x5 window instead of 7x7: the images are 5x6 pixels"]


@pytest.mark.parametrize("labels", ["single class", "one test class", "unlabeled"])
def test_the_whole_evaluation_runs_where_the_defaults_cannot_fit(labels):
    y_train, y_test = {"single class": ([1] * 40, [1] * 12), "one test class": ([0] * 30 + [1] * 10, [1] * 12),
                       "unlabeled": (None, None)}[labels]
    data = _data(40, 12, y_train=y_train, y_test=y_test)
    rng = np.random.default_rng(1)
    lines = []
    result = suite.evaluate(data, rng.standard_normal((40, 2)), rng.standard_normal((12, 2)),
                            rng.random((12, 1, 8, 8)).astype(np.float32), log=lines.append)
    summary = json.loads(suite.to_json(result.summary))
    assert summary["skipped"] and all(line in lines for line in summary["skipped"])
    assert {"mse", "ssim"} <= set(summary["results"]["model"]) and "mse" in summary["results"]["pca"]
    if labels == "one test class":  # the probes learn from two classes and score the one
        assert "knn_acc" in summary["results"]["model"] and "kmeans_acc" not in summary["results"]["model"]


def test_a_failing_section_is_one_line_naming_its_flags(sample_run, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Expected n_neighbors <= n_samples_fit\nmore detail")

    monkeypatch.setattr(probes, "knn_accuracy", broken)
    settings = suite.EvalSettings(semi_sizes=(20,), semi_draws=1, kmeans_init=1)
    with pytest.raises(EvalError, match=r"kNN and logistic probes \(classic-3d-tanh\) failed \(ValueError: Expected "
                                        r"n_neighbors <= n_samples_fit\); change eval.knn_k or eval.probe_train "
                                        r"or eval.logreg_max_iter$"):
        aekit.evaluate(sample_run, settings=settings, cache=False, log=lambda m: None)
    code, out, err = _cli(["eval", str(sample_run.path), "--semi-sizes", "20", "--semi-draws", "1", "--quiet",
                           "--no-cache", "--out", "/dev/null"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("aekit eval: error: kNN and logistic probes (classic-3d-tanh) failed")
    assert err.strip().endswith("; change --knn-k or --probe-train or --logreg-max-iter")


def test_codes_that_are_not_numbers_are_one_line():
    data = _data(20, 5, y_train=[0, 1] * 10, y_test=[0, 1, 0, 1, 0])
    z_test = np.zeros((5, 2))
    z_test[3, 1] = np.nan
    with pytest.raises(EvalError, match="codes of the test images are not finite numbers for 1 of 5 images"):
        suite.evaluate(data, np.zeros((20, 2)), z_test, np.zeros((5, 1, 8, 8), np.float32))
    empty = _data(20, 0, y_train=[0, 1] * 10, y_test=[])
    with pytest.raises(EvalError, match="synthetic has no test images to score"):
        suite.evaluate(empty, np.zeros((20, 2)), np.zeros((0, 2)), np.zeros((0, 1, 8, 8), np.float32))


# --------------------------------------------------------------------------- PCA: the method per shape

def test_pca_method_follows_the_shape_of_the_data():
    assert suite.pca_method(60000, 784, 3) == "covariance"  # MNIST: as before, exact
    assert suite.pca_method(4000, 784, 128) == "covariance"
    assert suite.pca_method(700, 3072, 256) == "gram"  # few images of many pixels: exact through N x N
    assert suite.pca_method(1716, 12288, 16) == "randomized"  # the 64x64 folder of the report: not 858 s
    assert suite.pca_method(50000, 3072, 256) == "randomized"  # CIFAR-10
    assert suite.pca_method(300, 50000, 200) == "gram"  # most of the rank: exact whatever it costs


def _low_rank_rows(n, d, seed=0):
    """Rows in [0, 1] with a decaying spectrum, like images."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((40, d)) * (0.7 ** np.arange(40))[:, None]
    return (0.5 + 0.05 * rng.standard_normal((n, 40)) @ basis + 0.01 * rng.standard_normal((n, d))).astype(np.float32)


def test_gram_and_randomized_pca_match_the_exact_covariance_route():
    x, x_test = _low_rank_rows(300, 900), _low_rank_rows(50, 900, seed=1)
    exact = suite.fit_pca(x, 8, method="covariance")
    for method in ("gram", "randomized"):
        other = suite.fit_pca(x, 8, method=method)
        assert other.method == method and other.components.shape == (8, 900)
        # the same axes up to the sign of each: |cos| = 1
        cos = np.abs(np.sum(exact.components * other.components, axis=1))
        np.testing.assert_allclose(cos, 1.0, atol=1e-4 if method == "gram" else 2e-3)
        recon = [b.inverse_transform(b.transform(x_test)) for b in (exact, other)]
        err = [np.mean((x_test - r) ** 2) for r in recon]
        assert err[1] == pytest.approx(err[0], rel=1e-5 if method == "gram" else 1e-3)
    # the basis gives scikit-learn's own numbers on the exact route
    from sklearn.decomposition import PCA

    ref = PCA(8, svd_solver="covariance_eigh").fit(x)
    np.testing.assert_array_equal(exact.transform(x_test), ref.transform(x_test))
    np.testing.assert_array_equal(exact.inverse_transform(exact.transform(x_test)),
                                  ref.inverse_transform(ref.transform(x_test)))


def test_large_images_share_one_cached_pca_across_code_sizes(tmp_path, monkeypatch):
    data = _data(300, 60, shape=(3, 20, 20), y_train=np.arange(300) % 3, y_test=np.arange(60) % 3)
    fits = []
    real = suite.fit_pca
    monkeypatch.setattr(suite, "fit_pca", lambda *a, **k: fits.append(a[1]) or real(*a, **k))
    settings = suite.EvalSettings(semi_sizes=(30,), semi_draws=1, kmeans_init=1)
    rng = np.random.default_rng(0)
    rows = {}
    for latent_dim in (4, 9):
        result = suite.evaluate(data, rng.standard_normal((300, latent_dim)), rng.standard_normal((60, latent_dim)),
                                rng.random((60, 3, 20, 20)).astype(np.float32), settings,
                                baseline=BaselineCache(tmp_path), log=lambda m: None)
        rows[latent_dim] = result.summary["results"]
        assert result.summary["labels"]["pca"] == f"PCA-{latent_dim}"
    assert fits == [256]  # one PCA of the pixels, for both code sizes and the pixel probes
    assert rows[4]["pixels"] == rows[9]["pixels"]
    assert rows[9]["pca"]["mse"] < rows[4]["pca"]["mse"]  # more components reconstruct better
    # PCA-4 is the first 4 of the 256 components: the same as a PCA with 4 fitted directly (exact route)
    x_train = suite.flat_unit(data.x_train)
    direct = suite.fit_pca(x_train, 4, method="covariance")
    x_test = suite.flat_unit(data.x_test)
    recon = np.clip(direct.inverse_transform(direct.transform(x_test)), 0, 1)
    assert rows[4]["pca"]["mse"] == pytest.approx(np.mean((x_test - recon) ** 2), rel=1e-4)
