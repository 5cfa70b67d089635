"""Metrics and probes against known answers, brute force and the libraries they stand on."""

import itertools

import numpy as np
import pytest

from aekit.errors import ConfigError
from aekit.evaluation import metrics, probes, suite, table


def brute_force_cluster_accuracy(labels, clusters):
    """Try every one-to-one map from clusters to labels."""
    ls, cs = list(np.unique(labels)), list(np.unique(clusters))
    best = 0
    if len(cs) <= len(ls):
        maps = (dict(zip(cs, perm)) for perm in itertools.permutations(ls, len(cs)))
    else:  # more clusters than labels: each label takes one cluster, the others count as wrong
        maps = (dict(zip(perm, ls)) for perm in itertools.permutations(cs, len(ls)))
    for m in maps:
        best = max(best, sum(m.get(c) == y for c, y in zip(clusters, labels)))
    return best / len(labels)


def test_relabelled_perfect_clustering_scores_one():
    labels = np.repeat(np.arange(5), 7)
    clusters = np.array([3, 0, 4, 1, 2])[labels] + 10  # a permutation of the label names
    assert metrics.cluster_accuracy(labels, clusters) == 1.0
    assert metrics.clustering_scores(labels, clusters) == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": 1.0}


@pytest.mark.parametrize("seed", range(24))
def test_hungarian_matching_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_labels, n_clusters = rng.integers(2, 6, size=2)
    labels = rng.integers(0, n_labels, size=15)
    clusters = rng.integers(0, n_clusters, size=15)
    assert metrics.cluster_accuracy(labels, clusters) == pytest.approx(brute_force_cluster_accuracy(labels, clusters))


def test_clustering_scores_are_scikit_learns():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(0)
    labels, clusters = rng.integers(0, 4, 200), rng.integers(0, 5, 200)
    scores = metrics.clustering_scores(labels, clusters)
    assert scores["nmi"] == normalized_mutual_info_score(labels, clusters)
    assert scores["ari"] == adjusted_rand_score(labels, clusters)


def test_kmeans_finds_separated_blobs():
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=300, centers=4, cluster_std=0.3, random_state=0)
    assert probes.kmeans_scores(x, y, n_init=2, seed=0) == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": 1.0}


def test_psnr_identical_images_is_infinite_and_otherwise_matches_skimage():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(1)
    x = rng.random((5, 1, 28, 28))
    assert metrics.psnr(x, x) == float("inf")
    noisy = np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1)
    assert metrics.psnr(x, noisy) == pytest.approx(peak_signal_noise_ratio(x, noisy, data_range=1.0), rel=1e-12)


def test_ssim_matches_skimage_on_a_known_pair():
    from skimage import data
    from skimage.metrics import structural_similarity

    camera = data.camera()[::4, ::4].astype(np.float64) / 255  # (128, 128)
    noisy = np.clip(camera + 0.1 * np.random.default_rng(2).standard_normal(camera.shape), 0, 1)
    blurred = (camera + np.roll(camera, 1, 0) + np.roll(camera, 1, 1)) / 3
    ref = [structural_similarity(camera, other, data_range=1.0) for other in (noisy, blurred)]
    x = np.stack([camera, camera])[:, None]  # (2, 1, H, W)
    assert metrics.ssim(x, np.stack([noisy, blurred])[:, None]) == pytest.approx(np.mean(ref), rel=1e-12)
    assert 0.1 < ref[0] < ref[1] < 1.0
    assert metrics.ssim(x, x) == pytest.approx(1.0)


@pytest.mark.parametrize("shape, win_size, dtype", [((7, 3, 32, 32), 7, np.float64), ((5, 1, 28, 28), 7, np.float32),
                                                   ((4, 3, 5, 6), 5, np.float32)])
def test_batched_ssim_gives_scikit_images_numbers(shape, win_size, dtype):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    x = rng.random(shape).astype(dtype)
    recon = np.clip(x + 0.2 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    colour = shape[1] > 1
    x64, recon64 = x.astype(np.float64), recon.astype(np.float64)  # scored in float64 whatever the input
    ref = [structural_similarity(a if colour else a[0], b if colour else b[0], data_range=1.0, win_size=win_size,
                                 channel_axis=0 if colour else None) for a, b in zip(x64, recon64)]
    assert metrics.ssim(x, recon, win_size=win_size) == pytest.approx(np.mean(ref), rel=1e-12)


def test_mse_and_bce_match_scikit_learn_and_torch():
    import torch
    from sklearn.metrics import mean_squared_error

    rng = np.random.default_rng(3)
    x = rng.random((4, 1, 6, 6))
    p = rng.uniform(0.01, 0.99, x.shape)
    assert metrics.mse(x, p) == pytest.approx(mean_squared_error(x.ravel(), p.ravel()), rel=1e-12)
    np.testing.assert_allclose(metrics.per_image_mse(x, p), ((x - p) ** 2).reshape(4, -1).mean(1))
    ref = torch.nn.functional.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(x)).item()
    assert metrics.bce(x, p) == pytest.approx(ref, rel=1e-10)
    hard = np.zeros_like(x)  # predictions of exactly 0 are clipped, not log(0)
    assert np.isfinite(metrics.bce(x, hard)) and metrics.bce(x, hard) > 1.0


def test_to_unit_shifts_centred_outputs_and_clips():
    from aekit.pixels import to_unit

    recon = np.array([-0.7, -0.5, 0.0, 0.5, 0.9])
    np.testing.assert_allclose(to_unit(recon, "centered"), [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(to_unit(recon, "unit"), [0.0, 0.0, 0.0, 0.5, 0.9])


def test_knn_probe_agrees_with_a_brute_force_vote():
    rng = np.random.default_rng(4)
    train_x, test_x = rng.standard_normal((80, 3)), rng.standard_normal((30, 3))
    train_y, test_y = rng.integers(0, 3, 80), rng.integers(0, 3, 30)
    dist = ((test_x[:, None] - train_x[None]) ** 2).sum(-1)  # (30, 80)
    votes = train_y[np.argsort(dist, axis=1)[:, :5]]
    pred = np.array([np.bincount(v, minlength=3).argmax() for v in votes])
    assert probes.knn_accuracy(train_x, train_y, test_x, test_y, k=5) == np.mean(pred == test_y)


def test_balanced_draws_and_subsamples_are_reproducible():
    labels = np.repeat(np.arange(10), 30)
    a = probes.balanced_subset(labels, 25, np.random.default_rng([0, 25, 0]))
    b = probes.balanced_subset(labels, 25, np.random.default_rng([0, 25, 0]))
    c = probes.balanced_subset(labels, 25, np.random.default_rng([0, 25, 1]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(set(a)) == 25 and sorted(np.bincount(labels[a])) == [2] * 5 + [3] * 5
    assert np.array_equal(probes.subsample(50, 0, 0), np.arange(50))
    assert np.array_equal(probes.subsample(50, 80, 0), np.arange(50))
    s = probes.subsample(50, 20, 1)
    assert len(set(s)) == 20 and np.array_equal(s, np.sort(s)) and np.array_equal(s, probes.subsample(50, 20, 1))
    with pytest.raises(ValueError, match="310 labels: there are only 300 images"):
        probes.balanced_subset(labels, 310, np.random.default_rng(0))


def test_a_class_short_of_its_share_gives_all_it_has_and_the_others_the_rest():
    labels = np.concatenate([np.repeat(np.arange(9), 100), np.full(7, 9)])  # class 9 has 7 images
    for draw in range(3):
        picked = labels[probes.balanced_subset(labels, 100, np.random.default_rng([0, 100, draw]))]
        counts = np.bincount(picked, minlength=10)
        assert len(picked) == 100 and counts[9] == 7 and set(counts[:9]) <= {10, 11} and counts.sum() == 100
    # a size every class can give draws exactly as before the redistribution existed
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    shares = probes.balanced_shares(np.full(10, 30), 25, rng_a)
    expected = np.full(10, 2)
    expected[rng_b.choice(10, 5, replace=False)] += 1
    assert np.array_equal(shares, expected)


def test_semi_supervised_probe_on_separable_classes():
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=600, centers=3, cluster_std=0.5, random_state=1)
    out = probes.semi_supervised_accuracy(x[:400], y[:400], x[400:], y[400:], sizes=(6, 30), draws=3, seed=0)
    assert list(out) == [6, 30] and all(len(v) == 3 for v in out.values())
    assert min(min(v) for v in out.values()) > 0.95


def test_infinite_psnr_round_trips_through_json_as_a_string():
    summary = {"format": suite.FORMAT, "results": {"model": {"mse": 0.0, "psnr": float("inf")}}}
    text = suite.to_json(summary)
    assert '"psnr": "inf"' in text and "Infinity" not in text
    assert suite.from_json(text)["results"]["model"]["psnr"] == float("inf")
    psnr_row = next(line for line in table.eval_table(summary).splitlines() if line.startswith("| PSNR"))
    assert [cell.strip() for cell in psnr_row.split("|")][2] == "inf"
    with pytest.raises(ValueError):
        suite.to_json({"results": {"model": {"mse": float("nan")}}})


def test_settings_are_validated_with_the_field_name():
    assert suite.EvalSettings.from_values(semi_sizes="20,50").semi_sizes == (20, 50)
    with pytest.raises(ConfigError, match=r"eval.semi_sizes\[0\]: must be >= 2"):
        suite.EvalSettings.from_values(semi_sizes="1,50")
    with pytest.raises(ConfigError, match="eval.knn_k: must be >= 1"):
        suite.EvalSettings.from_values(knn_k=0)


def test_markdown_tables():
    text = table.markdown_table(["name", "value"], [["a", "1.0"], ["bbbb", "22.5"]])
    assert text.splitlines() == ["| name | value |", "|:-----|------:|", "| a    |   1.0 |", "| bbbb |  22.5 |"]
    assert table.format_value(None) == "–" and table.format_value(float("inf")) == "inf"
    assert table.metric_info("semi_100") == ("100 labels: accuracy", "higher", ".4f")


def test_compare_rows_sort_best_first_and_show_missing_evaluations():
    def entry(run, model=None, pca=None):
        ev = None if model is None else {"results": {"model": model, "pca": pca or {}}, "dataset": {"name": "d"}}
        return {"run": run, "latent_dim": 3, "eval": ev}

    columns, rows = table.compare_rows([entry("a", {"mse": 0.02, "knn_acc": 0.7}, {"mse": 0.03}), entry("b"),
                                        entry("c", {"mse": 0.01, "knn_acc": 0.6})])
    assert columns[-4:] == ["mse", "knn_acc", "pca_mse", "pca_knn_acc"]
    assert rows[1]["mse"] is None and rows[0]["pca_mse"] == 0.03 and rows[0]["eval_dataset"] == "d"
    assert [r["run"] for r in table.sort_rows(rows, "knn_acc")] == ["a", "c", "b"]  # higher is better
    assert [r["run"] for r in table.sort_rows(rows, "mse")] == ["c", "a", "b"]  # lower is better
    lines = table.compare_table(columns, rows).splitlines()
    b_cells = [cell.strip() for cell in lines[3].split("|")[1:-1]]
    assert b_cells[0] == "b" and b_cells[columns.index("latent_dim")] == "3" and b_cells[-1] == "–"
