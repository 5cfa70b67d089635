"""The whole evaluation of a model's codes and reconstructions, against PCA and raw pixels.

:func:`evaluate` takes arrays (a dataset, the model's codes for its training and test
images, the model's test reconstructions in ``[0, 1]``) and returns an
:class:`Evaluation`: a JSON-ready summary (what ``eval.json`` holds) and the per-image
errors. The baselines (PCA with the same code size, raw pixels) come through a
``baseline`` hook so that a caller can cache them; this module reads and writes no files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from aekit.config import build_section, rule
from aekit.evaluation import metrics, probes

FORMAT = "aekit-eval/1"
BASELINE_FORMAT = "aekit-baseline/1"  # bump when a baseline metric changes, so old cache entries are not used
PIXEL_NOTE = ("all metrics use images in [0,1]: reconstructions of runs trained on centred pixels are "
              "shifted by +0.5, and every reconstruction (PCA's too) is clipped to [0,1]")
WORST = 8  # worst reconstructions listed in the summary
LABEL_SECTIONS = "k-means accuracy/NMI/ARI, the kNN and logistic probes and the semi-supervised probes"

Log = Callable[[str], None]


@dataclass
class EvalSettings:
    """What the evaluation does; every field is part of the baseline cache key."""

    seed: int = rule(0, min=0, help="seed for k-means, the probe subsample and the labelled draws")
    kmeans_init: int = rule(4, min=1, help="k-means restarts (the best inertia is kept)")
    knn_k: int = rule(5, min=1, help="neighbours in the kNN probe")
    probe_train: int = rule(10000, min=0, help="training images the kNN and logistic probes learn from, drawn "
                            "with the seed, the same for every representation; 0 = all")
    logreg_max_iter: int = rule(200, min=1, help="L-BFGS iterations cap of the logistic regressions")
    semi_sizes: tuple[int, ...] = rule((10, 100, 1000), item_min=2,
                                       help="labelled training images of the semi-supervised probes")
    semi_draws: int = rule(5, min=1, help="class-balanced labelled sets drawn per size")

    @classmethod
    def from_values(cls, **values) -> "EvalSettings":
        """Validated settings; a bad value raises ``ConfigError`` naming ``eval.<field>``."""
        return build_section(cls, {k: v for k, v in values.items() if v is not None}, "eval")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class Evaluation:
    summary: dict[str, Any]  # JSON-ready but for float('inf') PSNR; see to_json
    errors: np.ndarray  # (N_test,) per-image MSE in [0,1] pixels: the anomaly score
    labels: np.ndarray  # (N_test,); -1 for unlabeled images


# --------------------------------------------------------------------------- representations

def flat_unit(images_u8: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, C, H, W)`` -> float32 ``(N, C*H*W)`` in ``[0, 1]``."""
    return images_u8.reshape(len(images_u8), -1).astype(np.float32) / 255.0


def pca_features(x_train: np.ndarray, x_test: np.ndarray, n_components: int):
    """PCA fitted on ``x_train`` ``(N, D)``: training codes, test codes and clipped test reconstructions."""
    from sklearn.decomposition import PCA

    n_components = min(n_components, *x_train.shape)
    try:  # the D x D covariance route: exact and fast when N >> D (scikit-learn >= 1.5)
        pca = PCA(n_components, svd_solver="covariance_eigh").fit(x_train)
    except ValueError:
        pca = PCA(n_components, svd_solver="full").fit(x_train)
    z_test = pca.transform(x_test)
    recon = np.clip(pca.inverse_transform(z_test), 0.0, 1.0)
    return pca.transform(x_train), z_test, recon


def score_codes(train_x, train_y, test_x, test_y, settings: EvalSettings, log: Log, name: str) -> dict[str, float]:
    """The label-side metrics of one representation: k-means, kNN, logistic and semi-supervised probes."""
    out: dict[str, float] = {}
    with _timed(log, f"k-means ({name})"):
        scores = probes.kmeans_scores(test_x, test_y, settings.kmeans_init, settings.seed)
        out.update({f"kmeans_{k}": v for k, v in scores.items()})
    idx = probes.subsample(len(train_x), settings.probe_train, settings.seed)
    with _timed(log, f"kNN and logistic probes ({name})"):
        out["knn_acc"] = probes.knn_accuracy(train_x[idx], train_y[idx], test_x, test_y, settings.knn_k)
        out["logreg_acc"] = probes.logistic_accuracy(train_x[idx], train_y[idx], test_x, test_y,
                                                     settings.logreg_max_iter)
    with _timed(log, f"semi-supervised ({name})"):
        semi = probes.semi_supervised_accuracy(train_x, train_y, test_x, test_y, settings.semi_sizes,
                                               settings.semi_draws, settings.seed, settings.logreg_max_iter)
    for size, accs in semi.items():
        out[f"semi_{size}"] = float(np.mean(accs))
        out[f"semi_{size}_std"] = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
    return out


def pca_baseline(data, latent_dim: int, settings: EvalSettings, log: Log) -> dict[str, float]:
    """PCA with ``latent_dim`` components fitted on the training pixels: reconstruction and (labelled data)
    code metrics.
    """
    x_train, x_test = flat_unit(data.x_train), flat_unit(data.x_test)
    with _timed(log, f"PCA-{latent_dim} fit and reconstruction"):
        z_train, z_test, recon = pca_features(x_train, x_test, latent_dim)
        out = metrics.reconstruction_scores(data.x_test.astype(np.float32) / 255.0, recon.reshape(data.x_test.shape))
    if not data.labeled:
        return out
    return {**out, **score_codes(z_train, data.y_train, z_test, data.y_test, settings, log, f"PCA-{latent_dim}")}


def pixel_baseline(data, settings: EvalSettings, log: Log) -> dict[str, float]:
    """The label-side metrics on raw pixels in ``[0, 1]`` (a representation with no reconstruction error)."""
    return score_codes(flat_unit(data.x_train), data.y_train, flat_unit(data.x_test), data.y_test,
                       settings, log, "pixels")


def dataset_fingerprint(data) -> str:
    """SHA-256 over the train and test images and labels: the dataset's identity in cache keys."""
    h = hashlib.sha256()
    for arr in (data.x_train, data.y_train, data.x_test, data.y_test):
        if arr is None:  # unlabeled
            h.update(b"no labels")
            continue
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def baseline_key(data, fingerprint: str, kind: str, settings: EvalSettings, latent_dim: int | None = None) -> dict:
    """Everything a baseline's numbers depend on; equal keys mean equal numbers."""
    key = {"format": BASELINE_FORMAT, "kind": kind, "dataset": data.name, "sha256": fingerprint,
           "settings": settings.to_dict()}
    if latent_dim is not None:
        key["latent_dim"] = latent_dim
    return key


def no_cache(key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
    return compute(), False


# --------------------------------------------------------------------------- the whole evaluation

def evaluate(data, z_train: np.ndarray, z_test: np.ndarray, recon_test: np.ndarray,
             settings: EvalSettings | None = None, *, model_label: str = "model",
             baseline: Callable[[dict, Callable[[], dict]], tuple[dict, bool]] = no_cache,
             log: Log | None = None) -> Evaluation:
    """Evaluate a model's codes and reconstructions on ``data`` against PCA and pixel baselines.

    Parameters
    ----------
    data : ImageData
        uint8 images and labels; the test split is scored, the training split trains the probes and PCA.
        Unlabeled data gets the reconstruction metrics and anomaly scores only: the sections that
        score codes against labels (:data:`LABEL_SECTIONS`) are skipped, and the summary's
        ``skipped`` says why.
    z_train, z_test : ndarray (N_train, D), (N_test, D)
        The model's codes of the training and test images.
    recon_test : ndarray (N_test, C, H, W)
        The model's test reconstructions in ``[0, 1]`` (see :func:`aekit.pixels.to_unit`).
    settings : EvalSettings
    baseline : callable
        ``baseline(key, compute) -> (metrics, from_cache)``; the default computes every time.
    log : callable
        Receives one progress line per section.

    Returns
    -------
    Evaluation
        ``summary["results"]`` maps ``model``, ``pca`` and ``pixels`` to flat ``{metric: value}``
        dicts (see :data:`aekit.evaluation.table.METRICS`).
    """
    settings = settings or EvalSettings()
    log = log or (lambda msg: None)
    start = time.perf_counter()
    latent_dim = int(z_test.shape[1])
    x_test = data.x_test.astype(np.float32) / 255.0  # (N, C, H, W) in [0, 1]
    if recon_test.shape != x_test.shape:
        raise ValueError(f"reconstructions {recon_test.shape} do not match the test images {x_test.shape}")

    with _timed(log, "reconstruction (model)"):
        model_row = metrics.reconstruction_scores(x_test, recon_test)
        errors = metrics.per_image_mse(x_test, recon_test)
    skipped = None if data.labeled else f"{LABEL_SECTIONS} need labels, and {data.name} has none"
    if skipped:
        log(skipped)
    else:
        model_row.update(score_codes(np.asarray(z_train, np.float32), data.y_train, np.asarray(z_test, np.float32),
                                     data.y_test, settings, log, model_label))

    fingerprint = dataset_fingerprint(data)
    pca_row, pca_cached = baseline(baseline_key(data, fingerprint, "pca", settings, latent_dim),
                                   lambda: pca_baseline(data, latent_dim, settings, log))
    results, cached = {"model": model_row, "pca": pca_row}, {"pca": pca_cached}
    if data.labeled:  # the pixels' row holds label metrics only
        results["pixels"], cached["pixels"] = baseline(baseline_key(data, fingerprint, "pixels", settings),
                                                       lambda: pixel_baseline(data, settings, log))
    for name, from_cache in cached.items():
        if from_cache:
            log(f"{'PCA' if name == 'pca' else 'pixel'} baseline: from the cache")

    worst = np.argsort(-errors, kind="stable")[:WORST]
    names = {"model": model_label, "pca": f"PCA-{latent_dim}", "pixels": f"pixels ({x_test[0].size})"}
    labels = data.y_test if data.labeled else np.full(len(errors), -1, np.int64)
    summary = {
        "format": FORMAT,
        "pixels": PIXEL_NOTE,
        "dataset": {"name": data.name, "origin": data.origin, "train": len(data.x_train), "test": len(data.x_test),
                    "classes": int(len(np.unique(data.y_test))) if data.labeled else 0, "sha256": fingerprint},
        "settings": settings.to_dict(),
        "notes": _notes(data, settings, skipped),
        "labels": {k: v for k, v in names.items() if k in results},
        "results": results,
        "baselines_cached": cached,
        "anomaly": {
            "score": "per-image MSE of the model's reconstruction (higher = more anomalous)",
            "mean": float(errors.mean()), "median": float(np.median(errors)), "max": float(errors.max()),
            "worst": [{"index": int(i), **({"label": int(labels[i])} if data.labeled else {}),
                       "error": float(errors[i])} for i in worst],
        },
        "seconds": round(time.perf_counter() - start, 2),
    }
    if skipped:
        summary["skipped"] = skipped
    return Evaluation(summary=summary, errors=errors, labels=np.asarray(labels))


def _notes(data, settings: EvalSettings, skipped: str | None) -> list[str]:
    """What the summary's numbers are, in words."""
    if skipped:
        return [skipped]
    n_probe = len(probes.subsample(len(data.x_train), settings.probe_train, settings.seed))
    return [
        f"k-means on the {len(data.x_test)} test images with k = the number of classes, "
        f"best of {settings.kmeans_init} restarts; accuracy by Hungarian matching of clusters to labels",
        f"kNN (k={settings.knn_k}) and logistic probes trained on {n_probe} of {len(data.x_train)} training "
        f"images{' (all)' if n_probe == len(data.x_train) else f' (drawn with seed {settings.seed})'}, "
        "scored on all test images; logistic regressions on standardised features",
        f"semi-supervised: logistic regression on {', '.join(map(str, settings.semi_sizes))} class-balanced "
        f"labelled training images, mean and standard deviation over {settings.semi_draws} draws",
    ]


class _timed:
    """``with _timed(log, what):`` logs ``what`` and the seconds it took when the block ends."""

    def __init__(self, log: Log, what: str):
        self.log, self.what = log, what

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.log(f"  {self.what}: {time.perf_counter() - self.start:.1f}s")


# --------------------------------------------------------------------------- JSON

def row_to_json(row: dict[str, float]) -> dict[str, Any]:
    """A metrics row with ``inf`` as the string ``"inf"`` (JSON has no infinity)."""
    return {k: "inf" if v == float("inf") else v for k, v in row.items()}


def row_from_json(row: dict[str, Any]) -> dict[str, float]:
    return {k: float("inf") if v == "inf" else v for k, v in row.items()}


def to_json(summary: dict) -> str:
    """``eval.json`` text.

    An infinite metric value (the PSNR of a perfect reconstruction) is written as the
    string ``"inf"``: the one non-number a metric may hold. A NaN is a bug and raises ``ValueError``.
    """
    out = {**summary, "results": {rep: row_to_json(row) for rep, row in summary["results"].items()}}
    return json.dumps(out, indent=2, allow_nan=False) + "\n"


def from_json(text: str) -> dict:
    """The summary back from :func:`to_json`, with ``"inf"`` metric values as ``float('inf')``."""
    summary = json.loads(text)
    summary["results"] = {rep: row_from_json(row) for rep, row in summary.get("results", {}).items()}
    return summary
