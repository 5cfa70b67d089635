"""How much of the labels a representation carries: k-means, kNN and logistic-regression probes.

A representation is a float array ``(N, D)`` of features (codes, PCA codes or raw
pixels) for the training and the test images. All probes here are scikit-learn
estimators with fixed seeds; they return plain numbers and write nothing.
"""

from __future__ import annotations

import warnings

import numpy as np

from aekit.evaluation.metrics import clustering_scores


def subsample(n: int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct indices of ``range(n)``, sorted, drawn with ``seed``; all when ``size`` is 0 or >= n."""
    if size <= 0 or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def kmeans_scores(features: np.ndarray, labels: np.ndarray, n_init: int = 4, seed: int = 0) -> dict[str, float]:
    """k-means with k = the number of distinct labels (best of ``n_init`` restarts), scored against the labels.

    Returns ``acc`` (Hungarian-matched), ``nmi`` and ``ari``.
    """
    from sklearn.cluster import KMeans

    k = len(np.unique(labels))
    clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(features)
    return clustering_scores(labels, clusters)


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 k: int = 5) -> float:
    """Test accuracy of a k-nearest-neighbour vote (Euclidean, uniform weights) over the training features."""
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(n_neighbors=min(k, len(train_x)))
    return float(model.fit(train_x, train_y).score(test_x, test_y))


def logistic_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      max_iter: int = 200, scaler=None) -> float:
    """Test accuracy of a multinomial logistic regression on standardised features.

    ``scaler`` is a fitted ``StandardScaler``; by default one is fitted on ``train_x``.
    Training stops after ``max_iter`` L-BFGS iterations whether or not it has converged
    (the warning is silenced: a capped probe is the documented setting).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = scaler or StandardScaler().fit(train_x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=max_iter).fit(scaler.transform(train_x), train_y)
    return float(model.score(scaler.transform(test_x), test_y))


def balanced_subset(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices drawn without replacement, as evenly spread over the classes as ``size`` allows.

    Each class gets ``size // n_classes``; the remainder goes to classes picked at random.
    """
    classes = np.unique(labels)
    per_class = np.full(len(classes), size // len(classes))
    per_class[rng.choice(len(classes), size % len(classes), replace=False)] += 1
    picks = []
    for c, n in zip(classes, per_class):
        members = np.flatnonzero(labels == c)
        if n > len(members):
            raise ValueError(f"{size} balanced labels need {n} images of class {c}; there are {len(members)}")
        picks.append(rng.choice(members, n, replace=False))
    return np.sort(np.concatenate(picks))


def semi_supervised_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                             sizes=(10, 100, 1000), draws: int = 5, seed: int = 0,
                             max_iter: int = 200) -> dict[int, list[float]]:
    """Test accuracies of logistic regressions trained on only ``size`` labelled training images.

    For each size, ``draws`` class-balanced labelled sets are drawn; the draws depend
    only on the labels, ``size``, ``seed`` and the draw number, so every representation
    is scored on the same labelled images. The features are standardised with
    statistics of the whole (unlabelled) training set. Returns ``{size: [accuracy per draw]}``.
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    out: dict[int, list[float]] = {}
    for size in sizes:
        accs = []
        for draw in range(draws):
            idx = balanced_subset(train_y, size, np.random.default_rng([seed, size, draw]))
            accs.append(logistic_accuracy(train_x[idx], train_y[idx], test_x, test_y, max_iter, scaler))
        out[int(size)] = accs
    return out
