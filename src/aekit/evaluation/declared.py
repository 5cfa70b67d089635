"""The built-in metrics, each declared once (:class:`aekit.metric.Metric`), in the table's order.

``eval.json``'s keys, the table's and the report's rows and ``aekit eval --help`` come from
here; a model's own metrics come from its ``metrics()`` and are recorded in ``eval.json``.
The semi-supervised probes give one key per labelled-set size, ``semi_<n>`` and
``semi_<n>_std``: :data:`SEMI` declares them with ``{n}`` in the key and label.
"""

from __future__ import annotations

import re

from aekit.evaluation import metrics, probes
from aekit.metric import Metric

METRICS: tuple[Metric, ...] = (
    Metric("mse", "MSE per pixel", "lower", "mean squared error per pixel of the reconstructions", function=metrics.mse,
           fmt=".5f"),
    # 4-channel (rgba) images only: the colour under a transparent pixel is never seen, so the MSE over all four
    # channels judges a run on pixels --alpha-loss mask told it to ignore
    Metric("masked_mse", "masked MSE (visible)", "lower", "RGBA images only: MSE over the visible pixels, as "
           "--alpha-loss mask computes it with mse: each colour's error weighted by the true alpha, the alpha's own "
           "at weight 1", function=metrics.masked_mse, fmt=".5f"),
    Metric("alpha_mse", "alpha MSE", "lower", "RGBA images only: MSE of the alpha channel, the mask's share of "
           "the masked MSE", function=metrics.alpha_mse, fmt=".5f"),
    Metric("bce", "BCE per pixel", "lower", "binary cross-entropy per pixel of the reconstructions",
           function=metrics.bce),
    Metric("psnr", "PSNR (dB)", "higher", "peak signal-to-noise ratio of the reconstructions, from their MSE",
           function=metrics.psnr, fmt=".2f"),
    Metric("ssim", "SSIM", "higher", "structural similarity of the reconstructions (scikit-image's definition)",
           function=metrics.ssim),
    Metric("kmeans_acc", "k-means accuracy", "higher", "k-means on the test codes, clusters matched to classes "
           "(Hungarian)", needs="labels", function=probes.kmeans_scores),
    Metric("kmeans_nmi", "k-means NMI", "higher", "normalised mutual information of the k-means clusters and the "
           "classes", needs="labels", function=probes.kmeans_scores),
    Metric("kmeans_ari", "k-means ARI", "higher", "adjusted Rand index of the k-means clusters and the classes",
           needs="labels", function=probes.kmeans_scores),
    Metric("knn_acc", "kNN accuracy", "higher", "accuracy of a k-nearest-neighbour probe on the codes",
           needs="labels", function=probes.knn_accuracy),
    Metric("logreg_acc", "logistic accuracy", "higher", "accuracy of a logistic-regression probe on the codes",
           needs="labels", function=probes.logistic_accuracy),
)
SEMI: tuple[Metric, ...] = (
    Metric("semi_n", "{n} labels: accuracy", "higher", "mean accuracy of logistic probes trained on n "
           "class-balanced labelled images (--semi-sizes)", needs="labels", function=probes.semi_supervised_accuracy),
    Metric("semi_n_std", "{n} labels: std of accuracy", "lower", "its standard deviation over the "
           "draws (--semi-draws)", needs="labels", function=probes.semi_supervised_accuracy),
)
ALPHA_ONLY = frozenset({"masked_mse", "alpha_mse"})  # computed for 4-channel (rgba) images only
_SEMI = re.compile(r"semi_(\d+)(_std)?$")
BY_KEY = {m.key: m for m in METRICS}


def declared(key: str, extra: dict[str, Metric] | None = None) -> Metric | None:
    """The declaration of an ``eval.json`` key (``extra``: a model's own, by key), or ``None`` if none declares it."""
    if extra and key in extra:
        return extra[key]
    if key in BY_KEY:
        return BY_KEY[key]
    m = _SEMI.match(key)
    if m is None:
        return None
    semi = SEMI[1 if m.group(2) else 0]
    return Metric(key, semi.label.format(n=m.group(1)), semi.direction, semi.help, semi.needs, semi.function,
                  semi.fmt)


def is_std(key: str) -> bool:
    """A ``semi_<n>_std`` key: shown as ``± std`` beside its mean, not as a row of its own."""
    m = _SEMI.match(key)
    return m is not None and m.group(2) is not None


def semi_size(key: str) -> int | None:
    m = _SEMI.match(key)
    return int(m.group(1)) if m and not m.group(2) else None


__all__ = ["ALPHA_ONLY", "BY_KEY", "METRICS", "SEMI", "declared", "is_std", "semi_size"]
