"""aekit cluster: the methods on data whose answer is known, the files it writes, unlabelled folders, the extra."""

import csv
import itertools
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.cli.main import main
from aekit.errors import AekitError, ConfigError
from aekit.evaluation.clustering import cluster_codes
from aekit.evaluation.metrics import cluster_accuracy, clustering_scores


def blobs(n_per: int = 60, k: int = 4, d: int = 8, seed: int = 0):
    """``k`` well-separated Gaussian blobs in ``d`` dimensions: ``(z (k*n_per, d), labels)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, d))
    z = np.concatenate([rng.normal(c, 0.5, (n_per, d)) for c in centres])
    return z, np.repeat(np.arange(k), n_per)


def test_hungarian_accuracy_is_the_best_relabelling_found_by_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(20):
        labels, clusters = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
        best = max(np.mean(np.array(perm)[clusters] == labels) for perm in itertools.permutations(range(4)))
        assert cluster_accuracy(labels, clusters) == pytest.approx(best)


def test_a_mixture_on_separated_blobs_finds_their_number_and_members():
    z, y = blobs()
    found = cluster_codes(z, method="gmm")
    assert found.n_clusters_ == 4 and found.k_chosen_by == "bic"
    assert min(found.k_scores_, key=found.k_scores_.get) == 4 and sorted(found.k_scores_) == list(range(2, 16))
    assert clustering_scores(y, found.labels_) == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})
    assert found.probabilities_.min() > 0.99 and found.sizes == [60] * 4
    assert "k = 4: lowest BIC of a Gaussian mixture on the codes over k = 2..15" in found.why_k()
    typical, atypical = found.members(0, 5)
    assert len(typical) == len(atypical) == 5 and (found.labels_[np.r_[typical, atypical]] == 0).all()
    d = found.distances_
    assert d[typical].max() <= np.sort(d[found.labels_ == 0])[4] and d[atypical[0]] == d[found.labels_ == 0].max()
    again = cluster_codes(z, method="gmm")
    np.testing.assert_array_equal(again.labels_, found.labels_)  # seeded


def test_clusters_are_numbered_largest_first_and_small_ones_split_their_members():
    z, y = blobs(n_per=10, k=3)
    z, y = z[:25], y[:25]  # sizes 10, 10, 5
    found = cluster_codes(z, 3, method="gmm")
    assert found.sizes == [10, 10, 5] and found.k_chosen_by == "given" and found.k_scores_ == {}
    typical, atypical = found.members(2, 4)  # 5 members: 4 typical, the 1 left over
    assert len(typical) == 4 and len(atypical) == 1 and not set(typical) & set(atypical)


def test_n2d_on_separated_blobs_estimates_k_by_the_silhouette():
    z, y = blobs(n_per=50, k=5, d=12)
    found = cluster_codes(z, method="n2d", k_max=8)
    assert found.k_chosen_by == "silhouette" and found.n_clusters_ == 5
    assert max(found.k_scores_, key=found.k_scores_.get) == 5
    assert found.embedding_.shape == (250, 10) and found.params["umap_neighbors"] == 20
    assert clustering_scores(y, found.labels_)["acc"] == 1.0
    again = cluster_codes(z, 5, method="n2d")  # seeded UMAP (single-threaded) and mixture: the same embedding
    np.testing.assert_array_equal(again.embedding_, found.embedding_)
    np.testing.assert_array_equal(again.labels_, found.labels_)


def test_merging_keeps_a_two_lobed_group_whole_where_one_mixture_splits_it(monkeypatch):
    """The Fashion-MNIST pattern in two dimensions: groups P and Q overlap, S has two lobes. A mixture of three
    joins P and Q and splits S; so does merging by connection alone. The cap on a group's size keeps P and Q
    apart and joins S's lobes.
    """
    from aekit.evaluation import clustering

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal([0, 0], [1.5, 0.6], (200, 2)), rng.normal([0, 1.6], [1.5, 0.6], (200, 2)),
                        rng.normal([12, 0], 0.5, (100, 2)), rng.normal([16, 0], 0.5, (100, 2))])
    y = np.repeat([0, 1, 2], 200)
    assert cluster_accuracy(y, clustering._mixture(x, 3, 0, 3).predict(x)) == 0.5
    lines = []
    labels, proba, distances, params = clustering._merge(x, 3, 0, 3, lines.append)
    assert cluster_accuracy(y, labels) > 0.85 and np.bincount(labels).tolist() != [400, 100, 100]
    assert (labels[y == 2] == labels[400]).all()  # S whole
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert (proba.argmax(1) == labels).mean() > 0.99 and (distances >= 0).all()
    assert params == {"overcluster": 2, "merge_neighbors": 15, "merge_cap": 1.3}
    assert lines == ["over-clustering: a Gaussian mixture of 6 components, merged into 3 groups along the "
                     "15-neighbour graph, none past 1.3 x 600 / 3 images while another join fits"]
    monkeypatch.setattr(clustering, "MERGE_CAP", np.inf)  # connection alone
    assert cluster_accuracy(y, clustering._merge(x, 3, 0, 3, lines.append)[0]) == 0.5


def test_n2d_merge_on_separated_blobs_estimates_k_and_keeps_the_embedding():
    z, y = blobs(n_per=50, k=5, d=12)
    found = cluster_codes(z, method="n2d-merge", k_max=8)
    assert found.method == "n2d-merge" and found.k_chosen_by == "silhouette" and found.n_clusters_ == 5
    assert found.embedding_.shape == (250, 10) and found.params["overcluster"] == 2
    assert clustering_scores(y, found.labels_)["acc"] == 1.0 and found.sizes == [50] * 5
    assert found.probabilities_.min() > 0.99
    assert "highest mean silhouette of a Gaussian mixture on the UMAP embedding" in found.why_k()
    typical, atypical = found.members(0, 5)
    assert (found.labels_[np.r_[typical, atypical]] == 0).all()


def test_the_pca_baseline_of_wide_images_projects_as_scikit_learn_does_from_uint8_or_floats():
    """More pixels than images (a folder of 64x64 photos): the baseline goes through fit_pca's Gram route, not an
    eigendecomposition of the pixels' covariance, and projects as scikit-learn's exact PCA does (up to sign).
    """
    from sklearn.decomposition import PCA

    from aekit.evaluation.clustering import pca
    from aekit.evaluation.suite import flat_unit, pca_method

    rng = np.random.default_rng(0)
    images = (rng.random((40, 3, 16, 16)) * rng.random((40, 1, 1, 1)) * 255).astype(np.uint8)
    assert pca_method(40, 3 * 16 * 16, 5) == "gram"
    expected = PCA(5, svd_solver="full").fit_transform(flat_unit(images))
    for x in (images, flat_unit(images)):
        got = pca(x, 5)
        assert got.shape == (40, 5)
        signs = np.sign((got * expected).sum(0))
        np.testing.assert_allclose(got * signs, expected, atol=2e-4)


@pytest.mark.parametrize("k, k_max, message", [(0, 15, "k: must be between 1 and the number of images"),
                                               (None, 1, "k_max: must be >= 2")])
def test_bad_k_is_a_config_error(k, k_max, message):
    with pytest.raises(ConfigError, match=message):
        cluster_codes(blobs()[0], k, method="gmm", k_max=k_max)


def test_n2d_without_umap_names_the_extra(sample_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "umap", None)  # any 'import umap' now fails
    with pytest.raises(AekitError, match=r"pip install 'aekit\[cluster\]'"):
        aekit.cluster(sample_run, 3)
    assert main(["cluster", str(sample_run.path)]) == 2
    assert capsys.readouterr().err == ("aekit cluster: error: --method n2d (UMAP) needs aekit's cluster extra: "
                                       "pip install 'aekit[cluster]'\n")
    result = aekit.cluster(sample_run, 3, method="gmm", split="test")  # the mixture alone needs no extra
    assert result.labels_.shape == (1000,)


def test_help_imports_neither_umap_nor_torch():
    code = ("import sys\nfrom aekit.cli.main import main\n"
            "for argv in (['--help'], ['cluster', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('umap', 'numba', 'torch', 'sklearn') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip().splitlines()[-1] == "[]" and "highest mean silhouette" in res.stdout


def test_cluster_command_on_labelled_digits(sample_run, tmp_path, capsys):
    out = tmp_path / "clusters"
    assert main(["cluster", str(sample_run.path), "--split", "test", "--k", "10", "--out", str(out)]) == 0
    printed, progress = capsys.readouterr()
    assert "UMAP: 3-D codes of 1,000 images to 10-D" in progress
    summary = json.loads((out / "clusters.json").read_text())
    assert summary["k"] == 10 and summary["k_chosen_by"] == "given" and summary["data"]["images"] == 1000
    scores = summary["scores"]
    assert list(scores) == ["N2D (UMAP + GMM)", "k-means on the codes", "k-means on PCA-3"]
    with open(out / "assignments.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["split", "index", "file", "label", "class", "cluster", "probability", "distance"]
    data = sample_run.load_data()
    assert [int(r["index"]) for r in rows] == list(range(1000)) and {r["split"] for r in rows} == {"test"}
    assert [int(r["label"]) for r in rows] == data.y_test.tolist()
    clusters = np.array([int(r["cluster"]) for r in rows])
    assert np.bincount(clusters, minlength=10).tolist() == summary["sizes"]
    assert clustering_scores(data.y_test, clusters) == pytest.approx(scores["N2D (UMAP + GMM)"])
    assert all(0 < float(r["probability"]) <= 1 for r in rows)
    for name, row in scores.items():
        assert f"{name:<20}  {row['acc']:8.3f}  {row['nmi']:5.3f}  {row['ari']:5.3f}" in printed
    members = np.asarray(Image.open(out / "members.png"))
    assert members.shape[0] > 10 * 40 and members.shape[1] > 17 * 40  # a row per cluster, 8 + gap + 8 cells
    assert Image.open(out / "codes.png").size[0] > 500


def test_cluster_command_with_n2d_merge(sample_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "merged"
    assert main(["cluster", str(sample_run.path), "--split", "test", "--k", "10", "--method", "n2d-merge",
                 "--out", str(out)]) == 0
    printed, progress = capsys.readouterr()
    assert "over-clustering: a Gaussian mixture of 20 components, merged into 10 groups" in progress
    summary = json.loads((out / "clusters.json").read_text())
    assert summary["method"] == "n2d-merge" and summary["k"] == 10 and sum(summary["sizes"]) == 1000
    assert summary["params"]["merge_cap"] == 1.3 and max(summary["sizes"]) <= 1.3 * 1000 / 10
    assert list(summary["scores"])[0] == "N2D, over-clustered and merged" and "over-clustered and merged" in printed
    monkeypatch.setitem(sys.modules, "umap", None)
    assert main(["cluster", str(sample_run.path), "--method", "n2d-merge"]) == 2
    assert "--method n2d-merge (UMAP) needs aekit's cluster extra" in capsys.readouterr().err


def test_cluster_an_unlabelled_folder_of_photos(testdata, tmp_path, capsys):
    nebulae = testdata / "stellarium-nebulae"
    if not nebulae.is_dir():
        pytest.skip(f"no real photos in {testdata} (scripts/test fetches them from Debian)")
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(nebulae.glob("*.png"))[:60]:
        shutil.copy(path, photos / path.name)
    run_dir = tmp_path / "run"
    assert main(["train", "--latent-dim", "4", "--epochs", "2", "--dataset", str(photos), "--image-size", "16",
                 "--out", str(run_dir), "--no-plots", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["cluster", str(run_dir), "--method", "gmm", "--k-max", "5", "--members", "3"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((run_dir / "cluster" / "clusters.json").read_text())
    assert "scores" not in summary and summary["k_chosen_by"] == "bic" and 2 <= summary["k"] <= 5
    assert f"in {summary['k']} clusters by GMM on the codes; k = {summary['k']}: lowest BIC" in printed
    assert "against the labels" not in printed
    with open(run_dir / "cluster" / "assignments.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    data = aekit.load_run(run_dir).load_data()
    assert [r["file"] for r in rows] == data.paths_train + data.paths_test  # every photo named by its file
    assert {(r["label"], r["class"]) for r in rows} == {("-1", "")}
    assert aekit.api.RunDir(run_dir).read_clusters() == summary


def test_cluster_errors_are_one_line(sample_run, capsys):
    assert main(["cluster", str(sample_run.path), "--members", "0"]) == 2
    assert capsys.readouterr().err.strip() == "aekit cluster: error: --members: must be >= 1, got 0"
    assert main(["cluster", str(sample_run.path), "--k", "0", "--method", "gmm", "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "aekit cluster: error: --k: must be between 1 and the number of images (1,000), got 0"


def test_the_report_shows_the_runs_own_clustering(sample_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(sample_run.path, run_dir)
    assert (run_dir / "report.html").exists()
    assert main(["cluster", str(run_dir), "--method", "gmm", "--k", "4", "--split", "test", "--quiet"]) == 0
    summary = json.loads((run_dir / "cluster" / "clusters.json").read_text())
    report = (run_dir / "report.html").read_text()
    assert '<section id="clusters"><h2>Clusters</h2>' in report
    assert "1,000 images (test) in 4 clusters by GMM on the codes; k = 4: given." in report
    acc = summary["scores"]["GMM on the codes"]["acc"]
    assert f"<td>{acc:.6g}</td>" in report and report.count('alt="each cluster&#x27;s most typical') == 1


def test_a_scikit_learn_clusterer_on_the_codes_of_separated_groups():
    from sklearn.base import clone

    from aekit.sklearn import AutoencoderTransformer, CodeClusterer

    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1, (3, 20))
    X = np.concatenate([c + rng.normal(0, 0.03, (80, 20)) for c in centres])
    y = np.repeat(np.arange(3), 80)
    clusterer = CodeClusterer(AutoencoderTransformer(latent_dim=3, hidden=[16], epochs=30, batch_size=32),
                              method="gmm", k_max=6)
    labels = clusterer.fit_predict(X)
    assert clusterer.n_clusters_ == 3 and cluster_accuracy(y, labels) == 1.0
    assert clusterer.transformer_.n_components_ == 3 and clusterer.probabilities_.shape == (240,)
    assert clone(clusterer).get_params()["k_max"] == 6 and not hasattr(clone(clusterer), "labels_")
    merged = clone(clusterer).set_params(method="n2d-merge", n_clusters=3).fit(X)
    assert cluster_accuracy(y, merged.labels_) == 1.0 and merged.clustering_.method == "n2d-merge"
    with pytest.raises(ValueError, match="use fit_predict"):
        merged.predict(X)


def test_a_scikit_learn_idec_clusterer_refines_the_encoder_and_assigns_new_digits():
    import pickle

    import torch
    from sklearn.base import clone

    from aekit.data import load_dataset
    from aekit.sklearn import AutoencoderTransformer, CodeClusterer

    data = load_dataset("mnist-sample")
    X, y = data.x_train[:1000].reshape(1000, -1), data.y_train[:1000]  # uint8 pixels
    ae = AutoencoderTransformer(latent_dim=10, hidden=[64], epochs=20, batch_size=32, device="cpu")
    clusterer = CodeClusterer(ae, n_clusters=10, method="idec", refine_epochs=30)
    before = torch.random.get_rng_state()
    labels = clusterer.fit_predict(X)
    assert torch.equal(torch.random.get_rng_state(), before)  # the refinement's seeding stays inside
    assert labels.shape == (1000,) and labels.dtype == np.int64 and set(labels) == set(range(10))
    assert list(np.bincount(labels)) == sorted(np.bincount(labels), reverse=True)  # numbered largest first
    assert clusterer.n_clusters_ == 10 and clusterer.centroids_.shape == (10, 10)
    assert np.all((clusterer.probabilities_ > 0.1) & (clusterer.probabilities_ <= 1))  # a max over 10 clusters
    assert clusterer.clustering_.method == "idec" and clusterer.clustering_.params["epochs"] == 30
    # the transformer now holds the refined encoder: its codes moved from the unrefined ones
    unrefined = clone(ae).fit(X).transform(X)
    assert not np.allclose(clusterer.transformer_.transform(X), unrefined, atol=1e-3)
    np.testing.assert_array_equal(clusterer.predict(X), labels)
    acc, shuffled = cluster_accuracy(y, labels), cluster_accuracy(np.random.default_rng(0).permutation(y), labels)
    assert acc > 0.4 and acc > 2.5 * shuffled  # chance is about 0.13 here; IDEC reached 0.52
    X_new, y_new = data.x_test[:500].reshape(500, -1), data.y_test[:500]
    new = clusterer.predict(X_new)
    assert new.shape == (500,) and cluster_accuracy(y_new, new) > 0.35
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clusterer)).predict(X_new), new)


def test_a_scikit_learn_dec_clusterer_and_its_errors():
    from aekit.data import load_dataset
    from aekit.sklearn import AutoencoderTransformer, CodeClusterer

    data = load_dataset("mnist-sample")
    X = data.x_train[:300].reshape(300, -1)
    ae = AutoencoderTransformer(latent_dim=4, hidden=[32], epochs=1, device="cpu")
    dec = CodeClusterer(ae, n_clusters=5, method="dec", refine_epochs=2).fit(X)
    assert dec.labels_.shape == (300,) and set(dec.labels_) <= set(range(5)) and dec.clustering_.method == "dec"
    np.testing.assert_array_equal(dec.predict(X), dec.labels_)
    with pytest.raises(ValueError, match=r"^n_clusters: method 'idec' needs the number of clusters; give n_clusters$"):
        CodeClusterer(ae, method="idec").fit(X)
    with pytest.raises(ValueError,
                       match=r"^method: 'kmeans' is not allowed; choose one of: n2d, n2d-merge, gmm, idec, dec$"):
        CodeClusterer(ae, n_clusters=3, method="kmeans").fit(X)
    # standardised features lie outside any pixel range: the centroids start from the transformer's codes as they are
    rng = np.random.default_rng(0)
    blobs_x = np.concatenate([c + rng.normal(0, 0.03, (40, 6)) for c in rng.uniform(0, 1, (3, 6))])
    tabular = AutoencoderTransformer(latent_dim=2, hidden=[8], epochs=20, batch_size=16, scaling="standard")
    found = CodeClusterer(tabular, n_clusters=3, method="idec", refine_epochs=3).fit(blobs_x)
    assert cluster_accuracy(np.repeat(np.arange(3), 40), found.labels_) == 1.0
    gmm = CodeClusterer(ae, n_clusters=3, method="gmm").fit(X)
    with pytest.raises(ValueError, match="predict: method 'gmm' clusters the training codes only; use fit_predict"):
        gmm.predict(X)


def test_members_picture_leaves_blank_cells_for_small_and_empty_clusters():
    from aekit.visualization.plots import plot_cluster_members

    img = np.full((1, 1, 4, 4), 7, np.uint8)
    rows = [(np.repeat(img, 3, 0), np.repeat(img, 2, 0)), (np.zeros((0, 1, 4, 4), np.uint8),) * 2, (img, img[:0])]
    fig = plot_cluster_members(rows, ["0 (5)", "1 (0)", "2 (1)"], 3)
    grid = fig.axes[0].images[0].get_array()  # 3 rows of 7 cells of 4 px, 2 px apart
    assert grid.shape == (3 * 6 + 2, 7 * 6 + 2)
    drawn = [[grid[2 + r * 6, 2 + c * 6] == 7 for c in range(7)] for r in range(3)]
    assert drawn == [[1, 1, 1, 0, 1, 1, 0], [0] * 7, [1, 0, 0, 0, 0, 0, 0]]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0 (5)", "1 (0)", "2 (1)"]
