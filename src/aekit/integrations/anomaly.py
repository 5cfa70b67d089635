"""Anomaly detection with an autoencoder, in PyOD's conventions, and the one-class protocol.

:class:`AnomalyDetector` follows PyOD's ``BaseDetector``: ``fit`` on (mostly) normal
data, ``decision_function`` gives raw anomaly scores (higher is more anomalous),
``contamination`` sets ``threshold_`` as that quantile of the training scores,
``predict`` gives 0 (normal) or 1 (anomaly), ``predict_proba`` turns scores into
probabilities by PyOD's ``linear`` or ``unify`` method, and ``decision_scores_`` and
``labels_`` describe the training data. It is a scikit-learn estimator too: it clones,
pickles (weights as safetensors bytes) and grid-searches, with the autoencoder's
parameters reachable as ``autoencoder__latent_dim`` and so on.

The score of a row (``score_by``):

- ``reconstruction``: the model's own ``anomaly_score`` (see
  :class:`aekit.models.base.AutoEncoder`): by default the reconstruction error (mean
  squared error per feature after scaling); the VAE's is its negative ELBO per feature;
- ``knn``: how far its code lies from the training data's codes: the mean Euclidean distance
  to its :data:`KNN` nearest training codes, each code unit standardised by the training codes'
  spread (a training row's own code is left out of its neighbours), the kNN outlier score of
  Ramaswamy et al. 2000 / Angiulli & Pizzuti 2002 taken in code space;
- ``combined``: the two standardised by their training scores (each minus its median, over its
  interquartile range) and added, so that a row is anomalous when it reconstructs badly, lies
  off the training codes, or both.

The one-class protocol (Ruff et al. 2018, "Deep one-class classification", section 4.1):
train on the training images of one class only, score every test image, and report
how well the scores separate that class from the other nine: AUROC and average
precision, with the anomalies (the other classes) as positives. PCA with the same
code size, fitted on the same images and scored by its reconstruction error, is the
baseline (:func:`one_class`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit.integrations.sklearn import AutoencoderTransformer

PROBA_METHODS = ("linear", "unify")
SCORES = ("reconstruction", "knn", "combined")
KNN = 5  # neighbours of the code-space distance (the mean distance to the nearest training codes)
ONE_CLASS_FORMAT = "aekit-one-class/1"


class AnomalyDetector(BaseEstimator):
    """An autoencoder as an anomaly detector with PyOD's API.

    Parameters
    ----------
    autoencoder : AutoencoderTransformer, optional
        The model and its training settings, cloned at ``fit``; default
        ``AutoencoderTransformer()`` (the default preset).
    contamination : float, default 0.1
        The expected share of anomalies in the training data, in ``(0, 0.5]``: sets ``threshold_``.
    score : {"reconstruction", "knn", "combined"}, default "reconstruction"
        What a row's anomaly score measures (see the module docstring).

    Attributes
    ----------
    autoencoder_ : AutoencoderTransformer
        The fitted autoencoder.
    decision_scores_ : ndarray of shape (n_samples,)
        The anomaly score of each training row (higher is more anomalous).
    threshold_ : float
        The ``1 - contamination`` quantile of ``decision_scores_``; a score above it is an anomaly.
    labels_ : ndarray of shape (n_samples,)
        0 (normal) or 1 (anomaly) for each training row.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.

    Examples
    --------
    >>> from aekit.sklearn import AnomalyDetector, AutoencoderTransformer
    >>> det = AnomalyDetector(AutoencoderTransformer(latent_dim=4, epochs=20), contamination=0.05)  # doctest: +SKIP
    >>> det.fit(X_train).predict(X_test)  # doctest: +SKIP
    array([0, 0, 1, ...])
    """

    def __init__(self, autoencoder=None, *, contamination=0.1, score_by="reconstruction"):
        self.autoencoder = autoencoder
        self.contamination = contamination
        self.score_by = score_by  # not ``score``: scikit-learn reads an estimator's score as its method

    def fit(self, X, y=None):
        """Train the autoencoder on ``X`` and set the threshold from its scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not 0 < self.contamination <= 0.5:
            raise ValueError(f"contamination: must be in (0, 0.5], got {self.contamination}")
        if self.score_by not in SCORES:
            raise ValueError(f"score_by: {self.score_by!r} is not allowed; choose one of: {', '.join(SCORES)}")
        X = validate_data(self, X, dtype="numeric")
        base = self.autoencoder if self.autoencoder is not None else AutoencoderTransformer()
        self.autoencoder_ = clone(base).fit(X)
        if self.score_by != "reconstruction":
            self._fit_codes(X)
        self.decision_scores_ = self._scores(X, training=True)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100 * (1 - self.contamination)))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _scores(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        if self.score_by == "reconstruction":
            return self._reconstruction_scores(X)
        if self.score_by == "knn":
            return self._knn_scores(X, training)
        parts = (self._reconstruction_scores(X), self._knn_scores(X, training))
        return sum((part - centre) / spread for part, (centre, spread) in zip(parts, self.score_scales_))

    def _reconstruction_scores(self, X: np.ndarray) -> np.ndarray:
        ae = self.autoencoder_
        return ae._map(X, ae.model_.anomaly_score)

    def _fit_codes(self, X: np.ndarray) -> None:
        """The training codes (standardised) and their neighbour index; for ``combined``, the two parts' scales."""
        from sklearn.neighbors import NearestNeighbors

        z = np.asarray(self.autoencoder_.transform(X), dtype=np.float64)  # (n, k)
        self.code_mean_, self.code_scale_ = z.mean(0), np.where(z.std(0) > 0, z.std(0), 1.0)
        self.neighbors_ = NearestNeighbors(n_neighbors=min(KNN + 1, len(z))).fit((z - self.code_mean_) /
                                                                                 self.code_scale_)
        if self.score_by == "combined":
            parts = (self._reconstruction_scores(X), self._knn_scores(X, training=True))
            self.score_scales_ = [_robust_scale(part) for part in parts]

    def _knn_scores(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Mean distance ``(n,)`` from each row's standardised code to its nearest training codes (its own left out
        when ``X`` is the training data).
        """
        z = (np.asarray(self.autoencoder_.transform(X), dtype=np.float64) - self.code_mean_) / self.code_scale_
        n_fit = self.neighbors_.n_samples_fit_
        k = min(KNN, n_fit - 1 if training else n_fit)
        distances, _ = self.neighbors_.kneighbors(z, n_neighbors=k + training)  # (n, k [+1])
        return distances[:, 1:].mean(1) if training else distances.mean(1)

    def decision_function(self, X):
        """The anomaly score of each row: higher is more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            The model's ``anomaly_score``: reconstruction error, or the negative ELBO for a VAE.
        """
        check_is_fitted(self)
        return self._scores(validate_data(self, X, dtype="numeric", reset=False))

    def score_samples(self, X):
        """scikit-learn's outlier convention: the negated :meth:`decision_function` (higher is more normal)."""
        return -self.decision_function(X)

    def predict(self, X):
        """0 for a normal row, 1 for an anomaly (a score above ``threshold_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return (self.decision_function(X) > self.threshold_).astype(int)

    def predict_proba(self, X, method="linear"):
        """The probability of each row being normal and anomalous, as PyOD computes it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"linear", "unify"}, default "linear"
            ``linear``: the score min-max scaled by the training scores' range, clipped to
            ``[0, 1]``; ``unify``: ``erf((score - mean) / (std * sqrt 2))`` over the
            training scores, clipped at 0 (Kriegel et al. 2011, "Interpreting and
            unifying outlier scores").

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Columns: normal, anomaly; rows sum to 1.
        """
        from scipy.special import erf

        if method not in PROBA_METHODS:
            raise ValueError(f"method: {method!r} is not allowed; choose one of: {', '.join(PROBA_METHODS)}")
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            span = train.max() - train.min()
            p = (scores - train.min()) / (span if span > 0 else 1.0)
        else:
            std = train.std()
            p = erf((scores - train.mean()) / ((std if std > 0 else 1.0) * np.sqrt(2)))
        p = np.clip(p, 0.0, 1.0)
        return np.column_stack([1 - p, p])


def _robust_scale(scores: np.ndarray) -> tuple[float, float]:
    """Median and interquartile range of ``scores`` (the range 1 when it is 0): a centre and a spread that a few
    anomalies in the training data do not move.
    """
    q1, median, q3 = np.percentile(scores, [25, 50, 75])
    return float(median), float(q3 - q1) if q3 > q1 else 1.0


# --------------------------------------------------------------------------- the one-class protocol

def detection_scores(is_anomaly: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and average precision of ``scores`` (higher = more anomalous) against 0/1 ``is_anomaly``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"auroc": float(roc_auc_score(is_anomaly, scores)),
            "ap": float(average_precision_score(is_anomaly, scores))}


def pca_scores(x_train: np.ndarray, x_test: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """Reconstruction error ``(N_test,)`` of PCA with ``n_components`` fitted on ``x_train``; rows in ``[0, 1]``.

    The PCA method follows the data's shape (:func:`aekit.evaluation.suite.pca_method`).
    """
    from aekit.evaluation.metrics import per_image_mse
    from aekit.evaluation.suite import pca_features

    _, _, recon = pca_features(x_train, x_test, n_components, seed)
    return per_image_mse(x_test, recon)


def one_class(data, normal: int, detectors: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]) -> dict:
    """One class of the one-class protocol: train on class ``normal`` only, score every test image.

    Parameters
    ----------
    data : ImageData
    normal : int
        The class whose training images are the normal data.
    detectors : dict
        ``name -> score(x_train, x_test)``: trains on ``x_train`` ``(n, C*H*W)`` uint8
        and returns an anomaly score per row of ``x_test`` ``(N_test, C*H*W)``.

    Returns
    -------
    dict
        ``class``, ``name``, ``train`` (images trained on) and per detector
        ``{"auroc": ..., "ap": ...}``, anomalies (the other classes) as positives.
    """
    x_train = data.x_train[data.y_train == normal]
    x_train = x_train.reshape(len(x_train), -1)  # (n, C*H*W) uint8
    x_test = data.x_test.reshape(len(data.x_test), -1)
    is_anomaly = (data.y_test != normal).astype(int)
    row = {"class": int(normal), "name": data.class_names[normal], "train": len(x_train)}
    for name, score in detectors.items():
        row[name] = detection_scores(is_anomaly, score(x_train, x_test))
    return row


def autoencoder_scorer(autoencoder: AutoencoderTransformer,
                       score: str = "reconstruction") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A :func:`one_class` detector: an :class:`AnomalyDetector` on ``autoencoder``'s settings, scoring by ``score``."""
    def scorer(x_train, x_test):
        return AnomalyDetector(autoencoder, score_by=score).fit(x_train).decision_function(x_test)
    return scorer


def autoencoder_scorers(autoencoder: AutoencoderTransformer,
                        scores=SCORES) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """:func:`one_class` detectors, one per score in ``scores``, that share one trained autoencoder per class
    (the first detector trains it; the others score with it): ``{score: detector}``.
    """
    fitted: dict = {}

    def make(name):
        def scorer(x_train, x_test):
            if fitted.get("x_train") is not x_train:  # a new class: train (the reference held keeps ids unique)
                fitted.update(x_train=x_train, detector=AnomalyDetector(autoencoder).fit(x_train))
            det = clone_fitted(fitted["detector"], name, x_train)
            return det.decision_function(x_test)
        return scorer
    return {name: make(name) for name in scores}


def clone_fitted(detector: AnomalyDetector, score: str, x_train: np.ndarray) -> AnomalyDetector:
    """A copy of a fitted ``detector`` that scores by ``score``, fitted to ``x_train`` without training again."""
    import copy

    det = copy.copy(detector)
    det.score_by = score
    if score != "reconstruction":
        det._fit_codes(x_train)
    det.decision_scores_ = det._scores(x_train, training=True)
    det.threshold_ = float(np.percentile(det.decision_scores_, 100 * (1 - det.contamination)))
    det.labels_ = (det.decision_scores_ > det.threshold_).astype(int)
    return det


def pca_scorer(n_components: int, seed: int = 0) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A :func:`one_class` detector: PCA's reconstruction error with ``n_components``, on pixels in ``[0, 1]``."""
    return lambda x_train, x_test: pca_scores(x_train / np.float32(255), x_test / np.float32(255), n_components, seed)


MIN_NORMAL = 10  # fewer normal test images than this: the class's AUROC is noted as rough


def one_class_run(config, data, classes, log=None, cache=None, score: str = "reconstruction") -> dict:
    """The one-class protocol for a run's config on ``data``: one row per class in ``classes``.

    Each class trains a fresh model from ``config`` (a :class:`~aekit.config.RunConfig`,
    epochs and all) on that class's training images and scores the test images by ``score``
    (:data:`SCORES`, as :class:`AnomalyDetector`'s ``score_by``), next to PCA with the same code size.
    The PCA rows depend on the data alone, so they come from ``cache`` (a
    :class:`~aekit.evaluation.cache.BaselineCache`) when it holds them: another run with
    the same code size reuses them. A class that cannot be scored (no training images of
    it, no test images of it, no test images of another class) is skipped with one line
    in the log and in ``skipped``; one with fewer than :data:`MIN_NORMAL` normal test images
    is scored and noted. Returns a JSON-ready summary: ``format``, ``dataset``, ``model``,
    ``score``, ``rows`` and ``mean`` (over the rows scored).
    """
    from aekit.errors import ConfigError, EvalError
    from aekit.evaluation.suite import BASELINE_FORMAT, dataset_fingerprint, no_cache, pca_method

    log = log or (lambda msg: None)
    cache = cache or no_cache
    if score not in SCORES:
        raise ConfigError(f"score: {score!r} is not allowed; choose one of: {', '.join(SCORES)}", params=("score",))
    if not data.labeled:
        raise ConfigError(f"classes: each class in turn is the normal data, so it needs labels, and {data.name} "
                          "has none", params=("classes",))
    for k in classes:
        if not 0 <= k < data.num_classes:
            raise ConfigError(f"classes {k}: {data.name} has classes 0 to {data.num_classes - 1}", params=("classes",))
    autoencoder = AutoencoderTransformer(config=config, image_shape=data.image_shape, channels_last=False,
                                         scaling="pixels", random_state=config.train.seed)  # (C, H, W) rows
    latent_dim, seed = config.model.latent_dim, config.train.seed
    fingerprint = dataset_fingerprint(data) if cache is not no_cache else ""
    rows, skipped, notes = [], [], []
    for k in classes:
        label = f"one-class {k} ({data.class_names[k]})"
        n_train, n_normal = int(np.sum(data.y_train == k)), int(np.sum(data.y_test == k))
        why = ("it has no training images" if n_train == 0 else "it has no test images" if n_normal == 0
               else "every test image is of this class; there are no anomalies" if n_normal == len(data.y_test)
               else None)
        if why:
            skipped.append(f"{label}: {why}, so AUROC and AP are not defined")
            log(skipped[-1])
            continue
        if n_normal < MIN_NORMAL:
            notes.append(f"{label}: only {n_normal} normal test images; its AUROC and AP are rough")
            log(notes[-1])
        log(f"{label}: training {config.model.model} on its {n_train} training images, scoring by {score}")
        row = one_class(data, k, {"model": autoencoder_scorer(autoencoder, score)})
        method = pca_method(n_train, int(np.prod(data.image_shape)), latent_dim)
        key = {"format": BASELINE_FORMAT, "kind": "one-class-pca", "dataset": data.name, "sha256": fingerprint,
               "class": int(k), "latent_dim": latent_dim, "method": method,
               **({"seed": seed} if method == "randomized" else {})}
        log(f"{label}: PCA-{latent_dim} ({method})")
        row["pca"], from_cache = cache(key, lambda: one_class(data, k, {"pca": pca_scorer(latent_dim, seed)})["pca"])
        if from_cache:
            log(f"{label}: PCA-{latent_dim} from the cache")
        rows.append(row)
    if not rows:
        raise EvalError(f"classes: none of the classes asked for can be scored ({'; '.join(skipped)})",
                        params=("classes",))
    mean = {name: {m: float(np.mean([r[name][m] for r in rows])) for m in ("auroc", "ap")} for name in ("model", "pca")}
    scored = [r["class"] for r in rows]
    return {"format": ONE_CLASS_FORMAT, "dataset": data.name, "model": config.model.model,
            "preset": config.preset, "latent_dim": latent_dim, "epochs": config.train.epochs, "score": score,
            "anomaly_share": float(np.mean([1 - np.mean(data.y_test == k) for k in scored])),
            "rows": rows, "mean": mean, **({"skipped": skipped} if skipped else {}),
            **({"notes": notes} if notes else {})}


def one_class_table(summary: dict, names: dict[str, str] | None = None) -> str:
    """The per-class AUROC and average precision of :func:`one_class_run`'s summary as a Markdown table."""
    from aekit.evaluation.table import markdown_table

    rows = summary["rows"]
    detectors = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    model = summary.get("preset") or summary.get("model", "model")
    score = summary.get("score", "reconstruction")  # a summary from before ``score`` existed scored this way
    names = {"model": model if score == "reconstruction" else f"{model} ({score})",
             "pca": f"PCA-{summary.get('latent_dim')}", **(names or {})}
    headers = ["class", *(f"{names.get(d, d)} {m}" for d in detectors for m in ("AUROC", "AP"))]
    body = [[_class_label(r), *(f"{r[d][m]:.3f}" for d in detectors for m in ("auroc", "ap"))]
            for r in rows]
    mean = summary.get("mean") or {d: {m: float(np.mean([r[d][m] for r in rows])) for m in ("auroc", "ap")}
                                   for d in detectors}
    body.append(["mean", *(f"{mean[d][m]:.3f}" for d in detectors for m in ("auroc", "ap"))])
    return markdown_table(headers, body)


def _class_label(row: dict) -> str:
    return str(row["class"]) if row["name"] == str(row["class"]) else f"{row['class']} {row['name']}"


__all__ = ["AnomalyDetector", "SCORES", "autoencoder_scorer", "autoencoder_scorers", "clone_fitted",
           "detection_scores", "one_class",
           "one_class_run", "one_class_table", "pca_scorer", "pca_scores"]
