"""Learning from a few labels and many unlabelled images, on an autoencoder's codes.

The method (``spreading``) is transductive label spreading (Zhou et al. 2004, "Learning with
local and global consistency"; scikit-learn's ``LabelSpreading``) over a k-nearest-neighbour
graph of all the images, the N labelled ones and every unlabelled one, training and test
alike (no test label is ever read before scoring). The graph is built on the UMAP embedding
of the codes, N2D's manifold (see :mod:`aekit.evaluation.clustering`), where the classes lie in
tight, separate clumps so that a label flows through its own class only; ``space="codes"``
builds it on the codes themselves (no extra needed).

Next to it, the existing probes' baselines with the same N labelled images
(:mod:`aekit.evaluation.probes`): logistic regression on the codes of the N labelled images,
and on their pixels.

The labelled images are drawn class-balanced with the seed
(:func:`aekit.evaluation.probes.balanced_subset`): exactly N of them, from the training split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aekit.errors import ConfigError
from aekit.io import Log, quiet

SPACES = ("umap", "codes")
NEIGHBORS = 10  # the spreading graph's neighbours per image
# LabelSpreading's alpha: the share of a node's label that comes from its neighbours; scikit-learn's
# default 0.2 hardly spreads (two moons, 4 labels: 0.585 accuracy with 0.2, 1.0 with 0.9)
ALPHA = 0.9


@dataclass
class FewLabels:
    """What :func:`few_labels` found: ``predicted_`` ``(N_test,)`` test labels, ``labelled`` ``(n,)`` the indices
    of the training images whose labels were used, and ``scores``: test accuracy per method.
    """

    predicted_: np.ndarray
    labelled: np.ndarray
    scores: dict[str, float]
    params: dict = field(default_factory=dict)


def draw_labelled(y_train: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` training indices, class-balanced, drawn with ``seed`` (the probes' draw)."""
    from aekit.evaluation.probes import balanced_subset

    if not 1 <= n <= len(y_train):
        raise ConfigError(f"--labels: must be from 1 to the number of training images ({len(y_train):,}), got {n}")
    return balanced_subset(y_train, n, np.random.default_rng([seed, n]))


def spread_labels(features: np.ndarray, labels: np.ndarray, neighbors: int = NEIGHBORS,
                  alpha: float = ALPHA) -> np.ndarray:
    """Label spreading over a kNN graph of ``features`` ``(N, d)``; ``labels`` ``(N,)`` is -1 where unknown.
    Returns every row's label ``(N,)``.
    """
    from sklearn.semi_supervised import LabelSpreading
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        model = LabelSpreading(kernel="knn", n_neighbors=min(neighbors, len(features) - 1), alpha=alpha,
                               max_iter=200)
        return model.fit(features, labels).transduction_


def few_labels(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, n: int, *,
               pixels_train: np.ndarray | None = None, pixels_test: np.ndarray | None = None,
               space: str = "umap", seed: int = 0, log: Log = quiet) -> FewLabels:
    """Test accuracy with ``n`` labelled training images: label spreading over the codes' manifold, next to
    logistic regression on the ``n`` labelled codes and (when given, ``(N, D)`` in [0, 1]) pixels.

    ``z_train`` ``(N_train, d)``, ``z_test`` ``(N_test, d)``: codes; ``y_*`` their labels (only the
    ``n`` drawn training labels are used to predict; ``y_test`` only scores).
    """
    from aekit.evaluation.probes import logistic_accuracy

    if space not in SPACES:
        raise ConfigError(f"--space: {space!r} is not allowed; choose one of: {', '.join(SPACES)}")
    idx = draw_labelled(y_train, n, seed)
    z = np.concatenate([z_train, z_test]).astype(np.float32)  # (N_train + N_test, d): every image, unlabelled
    if space == "umap":
        from aekit.evaluation.clustering import UMAP_DIMS, UMAP_NEIGHBORS, _umap

        features, _ = _umap(z, UMAP_NEIGHBORS, UMAP_DIMS, seed, log)
    else:
        from sklearn.preprocessing import StandardScaler

        features = StandardScaler().fit_transform(z)
    known = np.full(len(z), -1, dtype=np.int64)
    known[idx] = y_train[idx]
    log(f"label spreading: {n} labels over {len(z):,} images ({space}, {NEIGHBORS} neighbours)")
    predicted = spread_labels(features, known)[len(z_train):]
    scores = {f"label spreading ({space})": float(np.mean(predicted == y_test)),
              "logistic regression on the codes": logistic_accuracy(z_train[idx], y_train[idx], z_test, y_test)}
    if pixels_train is not None and pixels_test is not None:
        scores["logistic regression on the pixels"] = logistic_accuracy(pixels_train[idx], y_train[idx],
                                                                        pixels_test, y_test)
    return FewLabels(predicted, idx, scores, {"labels": n, "space": space, "seed": seed, "neighbors": NEIGHBORS,
                                              "alpha": ALPHA})


def run_few_labels(run, data, n: int, *, space: str = "umap", seed: int = 0, log: Log = quiet) -> FewLabels:
    """:func:`few_labels` on a run's codes of ``data`` (an :class:`~aekit.data.ImageData` with labels);
    ``FewLabels.params`` then also holds what ``fewlabels.json`` records.
    """
    import time

    from aekit.evaluation.suite import flat_unit

    if not data.labeled:
        raise ConfigError(f"--labels: learning from a few labels needs labelled data, and {data.name} has none")
    start = time.perf_counter()
    log(f"encoding the {len(data.x_train):,} training and {len(data.x_test):,} test images of {data.name}")
    z_train, z_test = run.encode(data.x_train), run.encode(data.x_test)
    found = few_labels(z_train, data.y_train, z_test, data.y_test, n, pixels_train=flat_unit(data.x_train),
                       pixels_test=flat_unit(data.x_test), space=space, seed=seed, log=log)
    found.params = {"format": "aekit-fewlabels/1", "dataset": data.name, "run": str(run.path),
                    "preset": run.config.preset, "latent_dim": run.config.model.latent_dim,
                    "train_images": len(z_train), "test_images": len(z_test), **found.params,
                    "scores": found.scores, "seconds": round(time.perf_counter() - start, 2)}
    return found


__all__ = ["FewLabels", "run_few_labels", "SPACES", "draw_labelled", "few_labels", "spread_labels"]
