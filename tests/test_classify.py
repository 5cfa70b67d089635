"""Codes that classify: DEC/IDEC refinement, learning from a few labels, the code-space anomaly scores."""

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.cli.main import main
from aekit.config import ModelConfig
from aekit.models import create_model
from aekit.models.idec import DeepClustering, kl_divergence, soft_assignment, target_distribution


def test_soft_assignment_and_target_follow_dec_formulas():
    z = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])
    mu = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    q = soft_assignment(z, mu)
    for i in range(3):  # DEC eq. 1 written out, one point at a time
        kernel = [1 / (1 + float(((z[i] - m) ** 2).sum())) for m in mu]
        assert q[i].tolist() == pytest.approx([k / sum(kernel) for k in kernel])
    p = target_distribution(q)
    f = q.sum(0)
    for i in range(3):  # DEC eq. 3
        w = [float(q[i, j] ** 2 / f[j]) for j in range(2)]
        assert p[i].tolist() == pytest.approx([v / sum(w) for v in w])
    pn, qn = p.numpy().astype(np.float64), q.numpy().astype(np.float64)
    expected = float(np.mean([sum(pn[i, j] * np.log(pn[i, j] / qn[i, j]) for j in range(2)) for i in range(3)]))
    assert float(kl_divergence(p, q)) == pytest.approx(expected)
    assert float(kl_divergence(q, q)) == pytest.approx(0.0, abs=1e-7)


def _digits(n_per=80, seed=0):
    """Three prototype 8x8 images with noise: ``(x uint8 (3 n_per, 1, 8, 8), y)``."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, (3, 1, 8, 8))
    y = np.repeat(np.arange(3), n_per)
    return np.clip(protos[y] + rng.normal(0, 40, (len(y), 1, 8, 8)), 0, 255).astype(np.uint8), y


def test_idec_training_lowers_the_kl_to_a_fixed_target_through_the_trainer():
    from aekit.config import TrainConfig
    from aekit.training.trainer import Trainer

    torch.manual_seed(0)
    x, _ = _digits()
    ae = create_model(ModelConfig(model="mlp", hidden=(16,), latent_dim=3), (1, 8, 8))
    images = torch.from_numpy(x)
    z = torch.from_numpy(ae.encode_images(x))
    module = DeepClustering(ae, z[:3].clone(), images, variant="dec", update_interval=10 ** 6)  # one fixed target

    def kl():
        _, q = module.assign()
        return float(kl_divergence(module.target(images.float() / 255), q))

    before = kl()
    history = Trainer(module, TrainConfig(epochs=3, batch_size=32, lr=0.01, precision="fp32")).fit(images, images)
    assert len(history) == 3 and {r["step"] for r in module.refreshes} == {0}  # before the first step only
    assert kl() < 0.5 * before
    assert history[-1]["train_reg_loss"] < history[0]["train_reg_loss"]


def test_dec_trains_the_encoder_and_centroids_but_not_the_decoder():
    from aekit.training.deep_clustering import initial_centroids, refine

    x, y = _digits()
    ae = create_model(ModelConfig(model="mlp", hidden=(16,), latent_dim=3), (1, 8, 8))
    decoder = {k: v.clone() for k, v in ae.state_dict().items() if k.startswith("decoder")}
    assert decoder
    refined = refine(ae, x, 3, variant="dec", epochs=2, batch_size=32, update_interval=5)
    after = refined.module.autoencoder.state_dict()
    assert all(torch.equal(after[k], v) for k, v in decoder.items())
    assert not torch.equal(after["encoder.0.weight"], ae.state_dict()["encoder.0.weight"])  # a copy was trained
    assert not torch.equal(refined.module.centroids.detach(), torch.from_numpy(
        initial_centroids(ae.encode_images(x).astype(np.float64), 3)).float())
    assert len(refined.refreshes) > 1 and refined.labels_.shape == y.shape


def test_cluster_idec_writes_the_outputs_and_the_refined_weights_beside_them(sample_run, tmp_path, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "idec"
    weights = (sample_run.path / "checkpoint.safetensors").read_bytes()
    assert main(["cluster", str(sample_run.path), "--method", "idec", "--k", "10", "--split", "test",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "IDEC (refined codes)" in printed and "k-means on the codes" in printed
    summary = json.loads((out / "clusters.json").read_text())
    assert summary["method"] == "idec" and summary["k"] == 10 and summary["params"]["update_interval"] == 140
    assert sum(summary["sizes"]) == 1000 == len((out / "assignments.csv").read_text().splitlines()) - 1
    assert (out / "members.png").is_file() and (out / "codes.png").is_file()
    state = load_file(out / "idec.safetensors")
    assert state["centroids"].shape == (10, sample_run.model.latent_dim)
    assert (sample_run.path / "checkpoint.safetensors").read_bytes() == weights  # the run's own weights untouched


# --------------------------------------------------------------------------- few labels

def test_few_labels_uses_exactly_n_balanced_labels_seeded():
    from aekit.evaluation.fewlabels import draw_labelled

    y = np.repeat(np.arange(10), 50)
    idx = draw_labelled(y, 30, seed=3)
    assert len(idx) == len(set(idx)) == 30 and np.bincount(y[idx]).tolist() == [3] * 10
    np.testing.assert_array_equal(idx, draw_labelled(y, 30, seed=3))
    assert not np.array_equal(idx, draw_labelled(y, 30, seed=4))


def test_both_methods_beat_a_classifier_on_the_few_labels_on_two_moons():
    from sklearn.datasets import make_moons

    from aekit.evaluation.fewlabels import few_labels

    z, y = make_moons(1200, noise=0.05, random_state=0)
    found = few_labels(z[:1000], y[:1000], z[1000:], y[1000:], 4, method="spreading", space="codes", seed=0)
    assert len(found.labelled) == 4 and set(y[found.labelled]) == {0, 1}
    assert found.scores["label spreading (codes)"] > 0.97
    assert found.scores["label spreading (codes)"] > found.scores["logistic regression on the codes"] + 0.05


def test_cluster_then_label_names_clusters_by_their_labelled_members():
    from aekit.evaluation.fewlabels import cluster_then_label, few_labels

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 8, (4, 3))
    y = np.repeat(np.arange(4), 100)
    z = centres[y] + rng.normal(0, 0.5, (400, 3))
    labels = np.full(400, -1)
    labels[[0, 100, 200]] = [0, 1, 2]  # class 3's cluster has no labelled member: its nearest labelled rows vote
    found = cluster_then_label(z, labels, n_clusters=4)
    assert np.mean(found[:300] == y[:300]) == 1.0 and set(found[300:]) <= {0, 1, 2}
    labels[300] = 3
    np.testing.assert_array_equal(cluster_then_label(z, labels), y)  # k = the 4 classes labelled
    perm = rng.permutation(400)
    train, test = perm[:300], perm[300:]
    result = few_labels(z[train], y[train], z[test], y[test], 8, space="codes", unlabelled="test")
    assert result.scores["cluster-then-label (codes)"] == 1.0 and result.params["unlabelled"] == "test"


def test_the_methods_see_no_label_but_the_n_drawn(monkeypatch):
    from aekit.evaluation import fewlabels

    seen = []

    def spy(features, labels, *args, **kwargs):
        seen.append(labels.copy())
        return np.zeros(len(labels), dtype=np.int64)

    monkeypatch.setattr(fewlabels, "spread_labels", spy)
    monkeypatch.setattr(fewlabels, "cluster_then_label", spy)
    z, y = np.random.default_rng(0).normal(size=(300, 4)), np.repeat(np.arange(3), 100)
    for method, pool, rows in (("spreading", "all", 300), ("cluster", "test", 109)):
        found = fewlabels.few_labels(z[:200], y[:200], z[200:], y[200:], 9, method=method, unlabelled=pool,
                                     space="codes")
        labels = seen[-1]
        assert np.sum(labels >= 0) == 9 and len(labels) == rows
        np.testing.assert_array_equal(labels[labels >= 0], y[:200][found.labelled])


def test_fewlabels_command_writes_its_json(sample_run, tmp_path, capsys):
    out = tmp_path / "few.json"
    assert main(["fewlabels", str(sample_run.path), "--labels", "20", "--space", "codes", "--unlabelled", "test",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads(out.read_text())
    assert summary["labels"] == 20 and len(summary["labelled"]) == 20
    assert set(summary["scores"]) == {"cluster-then-label (codes)", "logistic regression on the codes",
                                      "logistic regression on the pixels"}
    assert "cluster-then-label (codes)" in capsys.readouterr().out
    again = aekit.few_labels(sample_run, 20, space="codes", unlabelled="test", log=lambda m: None)
    assert again.scores == summary["scores"]  # seeded


# --------------------------------------------------------------------------- anomaly scores

def test_the_code_distance_finds_anomalies_the_reconstruction_error_misses():
    """Normal rows fill two far-apart spots of a line; anomalies sit on the same line between them. A linear
    autoencoder with a 1-D code reconstructs the whole line, so its error cannot tell them apart; their
    codes lie where no training code is.
    """
    from aekit.sklearn import AnomalyDetector, AutoencoderTransformer

    rng = np.random.default_rng(0)
    direction = rng.normal(size=12)
    t_normal = np.concatenate([rng.normal(-3, 0.2, 300), rng.normal(3, 0.2, 300)])
    t_anomaly = rng.uniform(-1, 1, 60)
    normal = t_normal[:, None] * direction + 0.02 * rng.normal(size=(600, 12))
    anomalies = t_anomaly[:, None] * direction + 0.02 * rng.normal(size=(60, 12))
    test = np.concatenate([normal[500:], anomalies])
    truth = np.r_[np.zeros(100), np.ones(60)]
    ae = AutoencoderTransformer(model="linear", latent_dim=1, epochs=30, device="cpu", random_state=0)
    auroc = {}
    from sklearn.metrics import roc_auc_score

    for score in ("reconstruction", "knn", "combined"):
        det = AnomalyDetector(ae, score_by=score).fit(normal[:500])
        auroc[score] = roc_auc_score(truth, det.decision_function(test))
        assert det.decision_scores_.shape == (500,)
    assert auroc["reconstruction"] < 0.7 and auroc["knn"] > 0.95 and auroc["combined"] > 0.95


def test_the_score_option_is_checked():
    from aekit.sklearn import AnomalyDetector

    with pytest.raises(ValueError, match="score_by: .density. is not allowed"):
        AnomalyDetector(score_by="density").fit(np.zeros((10, 4)))


def test_the_report_shows_the_few_labels_result(tmp_path):
    from aekit.visualization.report import ReportInputs, few_labels_section

    inputs = ReportInputs(run_dir=tmp_path, config={})
    assert few_labels_section(inputs) is None  # nothing to show before aekit fewlabels ran
    (tmp_path / "fewlabels.json").write_text(json.dumps({
        "labels": 100, "seed": 0, "train_images": 60000, "test_images": 10000,
        "scores": {"cluster-then-label (umap)": 0.9612, "logistic regression on the codes": 0.71}}))
    html = few_labels_section(inputs).body
    assert "100 labelled training images" in html and "70,000 images" in html and "0.9612" in html
    (tmp_path / "fewlabels.json").write_text("{")
    assert "could not be read" in few_labels_section(inputs).body
