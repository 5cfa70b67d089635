"""Learning from a few labels and many unlabelled images, on an autoencoder's codes.

Two methods, both over the UMAP embedding of the codes (N2D's manifold, see
:mod:`aekit.evaluation.clustering`, where the classes lie in tight, separate clumps), or over
the standardised codes themselves (``space="codes"``, no extra needed):

- ``cluster`` (the default), cluster-then-label: a Gaussian mixture with as many components as
  the labels have classes clusters every image, labelled and unlabelled; each cluster takes the
  most common label among its labelled members, and the members of a cluster with no labelled
  image take the majority label of their :data:`NEIGHBORS` nearest labelled images;
- ``spreading``: label spreading (Zhou et al. 2004, "Learning with local and global
  consistency"; scikit-learn's ``LabelSpreading``) over a :data:`NEIGHBORS`-nearest-neighbour
  graph of every image.

Chosen by measurement (``docs/clustering.md``): with 100 labels on MNIST's test images
(dense autoencoder, 10 epochs), cluster-then-label reached 0.953 (0.964 with all 70,000
images unlabelled), a 5-nearest-labelled-neighbour vote 0.951, label spreading 0.937 (alpha
0.99; 0.927 with 0.9, and 0.654 over all 70,000 images, where 200 iterations left most images
unreached).

``unlabelled`` says which unlabelled images join the N labelled ones: ``"test"`` (the test
images, whose labels only score the result) or ``"all"`` (the training images too).

Next to it, the existing probes' baselines with the same N labelled images
(:mod:`aekit.evaluation.probes`): logistic regression on the codes of the N labelled images,
and on their pixels. The labelled images are drawn class-balanced with the seed
(:func:`aekit.evaluation.probes.balanced_subset`): exactly N of them, from the training split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aekit.errors import ConfigError
from aekit.io import Log, quiet

METHODS = ("cluster", "spreading")
SPACES = ("umap", "codes")
POOLS = ("test", "all")
NEIGHBORS = 10  # neighbours of the spreading graph, and the labelled neighbours that name an unlabelled cluster
ALPHA = 0.99  # LabelSpreading's alpha: the share of a node's label that comes from its neighbours (Zhou et al.'s
# 0.99; scikit-learn's default 0.2 hardly spreads: two moons with 4 labels, 0.585 accuracy against 1.0 with 0.9)
MAX_ITER = 1000  # spreading's iterations (at alpha 0.99 MNIST's 10,100 images took 759)


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
        raise ConfigError(f"labels: must be from 1 to the number of training images ({len(y_train):,}), got {n}",
                          params=("labels",))
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
                               max_iter=MAX_ITER)
        return model.fit(features, labels).transduction_


def cluster_then_label(features: np.ndarray, labels: np.ndarray, seed: int = 0, neighbors: int = NEIGHBORS,
                       n_clusters: int | None = None) -> np.ndarray:
    """Every row's label ``(N,)`` by cluster-then-label over ``features`` ``(N, d)`` (``labels`` -1 where
    unknown): a Gaussian mixture with ``n_clusters`` components (default: one per class among the labels); a
    cluster's label is its labelled members' majority; a cluster with none gives each member its
    ``neighbors`` nearest labelled rows' majority.
    """
    from sklearn.neighbors import KNeighborsClassifier

    from aekit.evaluation.clustering import _mixture

    known = labels >= 0
    classes = np.unique(labels[known])
    clusters = _mixture(features, n_clusters or len(classes), seed, 3).predict(features)  # (N,)
    vote = KNeighborsClassifier(min(neighbors, int(known.sum()))).fit(features[known], labels[known])
    out = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(clusters):
        rows = clusters == c
        named = labels[rows & known]
        out[rows] = np.bincount(named).argmax() if len(named) else vote.predict(features[rows])
    return out


def few_labels(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, n: int, *,
               pixels_train: np.ndarray | None = None, pixels_test: np.ndarray | None = None,
               method: str = "cluster", space: str = "umap", unlabelled: str = "all", seed: int = 0,
               log: Log = quiet) -> FewLabels:
    """Test accuracy with ``n`` labelled training images and the ``unlabelled`` ones (see the module docstring),
    next to logistic regression on the ``n`` labelled codes and (when given, ``(N, D)`` in [0, 1]) pixels.

    ``z_train`` ``(N_train, d)``, ``z_test`` ``(N_test, d)``: codes; ``y_*`` their labels (only the
    ``n`` drawn training labels are used to predict; ``y_test`` only scores).
    """
    from aekit.evaluation.probes import logistic_accuracy

    for name, value, allowed in (("method", method, METHODS), ("space", space, SPACES),
                                 ("unlabelled", unlabelled, POOLS)):
        if value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not allowed; choose one of: {', '.join(allowed)}", params=(name,))
    idx = draw_labelled(y_train, n, seed)
    train_rows = np.arange(len(z_train)) if unlabelled == "all" else idx
    z = np.concatenate([z_train[train_rows], z_test]).astype(np.float32)  # (rows, d): labelled first or among
    if space == "umap":
        from aekit.evaluation.clustering import UMAP_DIMS, UMAP_NEIGHBORS, _umap

        features, _ = _umap(z, UMAP_NEIGHBORS, UMAP_DIMS, seed, log)
    else:
        from sklearn.preprocessing import StandardScaler

        features = StandardScaler().fit_transform(z)
    known = np.full(len(z), -1, dtype=np.int64)
    at = idx if unlabelled == "all" else np.arange(len(idx))  # where the labelled images sit in z
    known[at] = y_train[idx]
    name = {"cluster": "cluster-then-label", "spreading": "label spreading"}[method]
    log(f"{name}: {n} labels among {len(z):,} images ({space})")
    found = cluster_then_label(features, known, seed) if method == "cluster" else spread_labels(features, known)
    predicted = found[len(train_rows):]
    scores = {f"{name} ({space})": float(np.mean(predicted == y_test)),
              "logistic regression on the codes": logistic_accuracy(z_train[idx], y_train[idx], z_test, y_test)}
    if pixels_train is not None and pixels_test is not None:
        scores["logistic regression on the pixels"] = logistic_accuracy(pixels_train[idx], y_train[idx],
                                                                        pixels_test, y_test)
    return FewLabels(predicted, idx, scores, {"labels": n, "method": method, "space": space,
                                              "unlabelled": unlabelled, "seed": seed, "neighbors": NEIGHBORS,
                                              **({"alpha": ALPHA} if method == "spreading" else {})})


def run_few_labels(run, data, n: int, *, method: str = "cluster", space: str = "umap", unlabelled: str = "all",
                   seed: int = 0, log: Log = quiet) -> FewLabels:
    """:func:`few_labels` on a run's codes of ``data`` (an :class:`~aekit.data.ImageData` with labels);
    ``FewLabels.params`` then also holds what ``fewlabels.json`` records.
    """
    import time

    from aekit.evaluation.suite import flat_unit

    if not data.labeled:
        raise ConfigError(f"labels: learning from a few labels needs labelled data, and {data.name} has none",
                          params=("labels",))
    start = time.perf_counter()
    log(f"encoding the {len(data.x_train):,} training and {len(data.x_test):,} test images of {data.name}")
    z_train, z_test = run.encode(data.x_train), run.encode(data.x_test)
    found = few_labels(z_train, data.y_train, z_test, data.y_test, n, pixels_train=flat_unit(data.x_train),
                       pixels_test=flat_unit(data.x_test), method=method, space=space, unlabelled=unlabelled,
                       seed=seed, log=log)
    found.params = {"format": "aekit-fewlabels/1", "dataset": data.name, "run": str(run.path),
                    "preset": run.config.preset, "latent_dim": run.config.model.latent_dim,
                    "train_images": len(z_train), "test_images": len(z_test), **found.params,
                    "scores": found.scores, "seconds": round(time.perf_counter() - start, 2)}
    return found


__all__ = ["FewLabels", "METHODS", "POOLS", "SPACES", "cluster_then_label", "draw_labelled", "few_labels",
           "run_few_labels", "spread_labels"]
