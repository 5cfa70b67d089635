"""AnomalyDetector in PyOD's conventions, the VAE's negative ELBO, and the one-class protocol."""

import json
import pickle

import numpy as np
import pytest

from aekit.sklearn import AnomalyDetector, AutoencoderTransformer


def small(**params):
    return AutoencoderTransformer(**{"hidden": (16,), "latent_dim": 2, "epochs": 5, "device": "cpu", **params})


@pytest.fixture(scope="module")
def planes():
    """Normal rows near a 2-D plane in 12-D; anomalies far from it."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 12))
    normal = rng.normal(size=(600, 2)) @ basis + 0.05 * rng.normal(size=(600, 12))
    anomalies = rng.normal(size=(60, 12)) * 2
    return normal, anomalies


@pytest.fixture(scope="module")
def detector(planes):
    normal, _ = planes
    return AnomalyDetector(small(), contamination=0.05).fit(normal[:500])


def test_thresholds_labels_and_scores_follow_pyod(detector, planes):
    normal, anomalies = planes
    scores = detector.decision_scores_
    assert scores.shape == (500,) and detector.labels_.shape == (500,)
    assert detector.threshold_ == pytest.approx(np.percentile(scores, 95))
    np.testing.assert_array_equal(detector.labels_, (scores > detector.threshold_).astype(int))
    assert detector.labels_.sum() == 25  # the contamination share
    np.testing.assert_array_equal(detector.predict(normal[:500]), detector.labels_)
    np.testing.assert_allclose(detector.decision_function(normal[:500]), scores)
    np.testing.assert_array_equal(detector.score_samples(anomalies), -detector.decision_function(anomalies))
    # higher is more anomalous: the off-plane rows score above the held-out normal ones
    from sklearn.metrics import roc_auc_score

    held_out = np.concatenate([normal[500:], anomalies])
    is_anomaly = np.r_[np.zeros(100), np.ones(60)]
    assert roc_auc_score(is_anomaly, detector.decision_function(held_out)) > 0.95
    assert set(np.unique(detector.predict(held_out))) == {0, 1}


def test_predict_proba_linear_and_unify(detector, planes):
    from scipy.special import erf

    _, anomalies = planes
    train, scores = detector.decision_scores_, detector.decision_function(anomalies)
    linear = detector.predict_proba(anomalies)
    assert linear.shape == (60, 2)
    np.testing.assert_allclose(linear.sum(1), 1)
    expected = np.clip((scores - train.min()) / (train.max() - train.min()), 0, 1)  # PyOD's MinMaxScaler route
    np.testing.assert_allclose(linear[:, 1], expected)
    unify = detector.predict_proba(anomalies, method="unify")
    np.testing.assert_allclose(unify[:, 1], np.clip(erf((scores - train.mean()) / (train.std() * np.sqrt(2))), 0, 1))
    with pytest.raises(ValueError, match="method"):
        detector.predict_proba(anomalies, method="softmax")


def test_contamination_is_checked_and_the_default_autoencoder_is_cloned(planes):
    normal, _ = planes
    with pytest.raises(ValueError, match=r"contamination: must be in \(0, 0.5\]"):
        AnomalyDetector(small(), contamination=0.7).fit(normal)
    ae = small(epochs=1)
    det = AnomalyDetector(ae).fit(normal)
    assert det.autoencoder_ is not ae and not hasattr(ae, "model_")
    assert det.get_params()["autoencoder__latent_dim"] == 2  # reachable by GridSearchCV


def test_saving_and_loading_by_pickle(detector, planes):
    _, anomalies = planes
    again = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(again.decision_function(anomalies), detector.decision_function(anomalies))
    assert again.threshold_ == detector.threshold_


def test_a_vae_scores_by_its_negative_elbo(planes):
    import torch

    normal, anomalies = planes
    det = AnomalyDetector(small(model="vae", overrides={"beta": 1.0})).fit(normal)
    model = det.autoencoder_.model_
    x = det.autoencoder_._to_model(anomalies)
    with torch.no_grad():
        out = model(x)  # eval mode: z = mu and the full beta, so the loss is the mean negative ELBO per feature
        scores = model.anomaly_score(x).numpy()  # the VAE's own hook
    np.testing.assert_allclose(scores.mean(), out.loss.item(), rtol=1e-5)
    np.testing.assert_allclose(det.decision_function(anomalies), scores, rtol=1e-6)
    mse = det.autoencoder_.reconstruction_error(anomalies)
    assert np.all(det.decision_function(anomalies) > mse)  # the KL term adds to the error


def test_one_class_protocol_on_the_sample(sample_run, tmp_path, capsys):
    from aekit.cli.main import main

    out = tmp_path / "one-class.json"
    assert main(["eval", str(sample_run.path), "--one-class", "1", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| class" in printed and "PCA-3 AUROC" in printed
    summary = json.loads(out.read_text())
    (row,) = summary["rows"]
    assert row["class"] == 1 and row["train"] > 300
    assert row["model"]["auroc"] > 0.8 and row["pca"]["auroc"] > 0.8  # 1s are easy to tell from the rest
    assert summary["epochs"] == 2 and summary["latent_dim"] == 3


def test_one_class_scores_by_the_code_space_from_the_cli(sample_run, tmp_path, capsys):
    from aekit.cli.eval import SCORES as CLI_SCORES
    from aekit.cli.main import main
    from aekit.integrations.anomaly import SCORES

    assert CLI_SCORES == SCORES  # the CLI keeps its own copy so that --help does not load scikit-learn
    summaries = {}
    for score in SCORES:
        out = tmp_path / f"{score}.json"
        assert main(["eval", str(sample_run.path), "--one-class", "7", "--score", score, "--quiet", "--no-cache",
                     "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        summaries[score] = json.loads(out.read_text())
        assert summaries[score]["score"] == score
        if score == "reconstruction":  # the table's column as before; the line above the table names the score
            assert "the model scored by its reconstruction error" in printed and "(reconstruction)" not in printed
        else:
            assert f" ({score}) AUROC |" in printed
        (row,) = summaries[score]["rows"]
        assert 0.5 < row["model"]["auroc"] <= 1 and 0 < row["model"]["ap"] <= 1
    # the same model trained three times (one seed): only the score differs, so PCA's row does not, the model's does
    assert summaries["knn"]["rows"][0]["pca"] == summaries["reconstruction"]["rows"][0]["pca"]
    assert summaries["knn"]["rows"][0]["model"] != summaries["reconstruction"]["rows"][0]["model"]
    assert summaries["combined"]["rows"][0]["model"] not in (summaries["knn"]["rows"][0]["model"],
                                                             summaries["reconstruction"]["rows"][0]["model"])


def test_one_class_score_errors_are_one_line(sample_run, capsys):
    from aekit.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", str(sample_run.path), "--one-class", "1", "--score", "mahalanobis"])
    assert exc.value.code == 2 and "--score: invalid choice: 'mahalanobis'" in capsys.readouterr().err
    assert main(["eval", str(sample_run.path), "--score", "knn", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().endswith("--score: only with --one-class (it chooses the one-class "
                                                    "protocol's anomaly score)")


def test_one_class_rejects_a_class_the_data_has_not(sample_run, capsys):
    from aekit.cli.main import main

    assert main(["eval", str(sample_run.path), "--one-class", "12", "--quiet"]) == 2
    assert "--one-class 12: mnist-sample has classes 0 to 9" in capsys.readouterr().err
    assert main(["eval", str(sample_run.path), "--one-class", "x", "--quiet"]) == 2


def test_one_class_agrees_with_scikit_learns_metrics():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from aekit.data import ImageData
    from aekit.integrations.anomaly import one_class

    rng = np.random.default_rng(0)
    data = ImageData("toy", rng.integers(0, 255, (40, 1, 4, 4), dtype=np.uint8), np.arange(40) % 2,
                     rng.integers(0, 255, (20, 1, 4, 4), dtype=np.uint8), np.arange(20) % 2)
    seen = {}

    def brightness(x_train, x_test):
        seen["train"] = x_train
        return x_test.mean(1)

    row = one_class(data, 1, {"bright": brightness})
    assert seen["train"].shape == (20, 16)
    truth, scores = (data.y_test != 1).astype(int), data.x_test.reshape(20, -1).mean(1)
    assert row["bright"] == {"auroc": roc_auc_score(truth, scores), "ap": average_precision_score(truth, scores)}


def test_the_one_class_protocol_on_colour_images():
    """Colour rows in aekit's own (C, H, W) order: one_class_run says so, as colour rows now must."""
    from aekit.data.imagedata import ImageData
    from aekit.integrations.anomaly import one_class_run
    from aekit.resolve import build_config

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (80, 3, 8, 8), dtype=np.uint8)
    x[40:, 0] //= 4  # class 1: less red
    y = np.r_[np.zeros(40, np.int64), np.ones(40, np.int64)]
    data = ImageData("colour", x[::2], y[::2], x[1::2], y[1::2], class_names=["red", "dim"])
    config = build_config(None, None, epochs=1, hidden=(8,), latent_dim=2, device="cpu")
    summary = one_class_run(config, data, [0])
    assert [row["class"] for row in summary["rows"]] == [0] and 0 <= summary["mean"]["model"]["auroc"] <= 1
