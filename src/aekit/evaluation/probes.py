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


def kmeans_scores(features: np.ndarray, labels: np.ndarray, n_init: int = 4, seed: int = 0,
                  bar=None) -> dict[str, float]:
    """k-means with k = the number of distinct labels (best of ``n_init`` restarts), scored against the labels.

    The restarts run one at a time (``bar.update(1)`` after each) and keep the best as
    ``KMeans(n_init=n_init, random_state=seed)`` does: the same seeds in the same order,
    a restart replacing the best only with a lower inertia and a different clustering.
    Returns ``acc`` (Hungarian-matched), ``nmi`` and ``ari``.
    """
    from sklearn.cluster import KMeans

    k = len(np.unique(labels))
    random_state = np.random.RandomState(seed)  # shared: each restart draws its seeds after the last one's
    best = None
    for _ in range(n_init):
        fit = KMeans(n_clusters=k, n_init=1, random_state=random_state).fit(features)
        if best is None or (fit.inertia_ < best.inertia_ and not _same_clustering(fit.labels_, best.labels_)):
            best = fit
        if bar is not None:
            bar.update(1)
    return clustering_scores(labels, best.labels_)


def _same_clustering(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two clusterings are one up to renaming the clusters."""
    pairs = np.unique(np.stack([a, b]), axis=1)  # (2, distinct (a, b) pairs)
    return len(pairs[0]) == len(np.unique(a)) == len(np.unique(b))


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 k: int = 5, bar=None, chunk: int = 5000) -> float:
    """Test accuracy of a k-nearest-neighbour vote (Euclidean, uniform weights) over the training features.

    ``k`` is at most the number of training rows. The test rows are voted on ``chunk`` at a
    time (``bar.update(rows)`` after each), which bounds the distance matrix's memory.
    """
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(n_neighbors=min(k, len(train_x))).fit(train_x, train_y)
    correct = 0
    for start in range(0, len(test_x), chunk):
        correct += int(np.sum(model.predict(test_x[start:start + chunk]) == test_y[start:start + chunk]))
        if bar is not None:
            bar.update(len(test_x[start:start + chunk]))
    return correct / len(test_x)


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


def balanced_shares(counts: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``size`` labels each class gets, as evenly as its ``counts`` (images per class) allow.

    Each class gets ``size // n_classes`` and the remainder goes to classes picked at
    random. A class with fewer images than its share gives all it has, and what it
    lacks is spread the same way over the classes that have images left.
    """
    if size > counts.sum():
        raise ValueError(f"{size} labels: there are only {counts.sum()} images")
    shares = np.full(len(counts), size // len(counts))
    shares[rng.choice(len(counts), size % len(counts), replace=False)] += 1
    while np.any(shares > counts):  # only when a class is short: the common case draws as before
        missing = int(np.sum(np.maximum(shares - counts, 0)))
        shares = np.minimum(shares, counts)
        room = np.flatnonzero(shares < counts)
        extra = np.full(len(room), missing // len(room))
        extra[rng.choice(len(room), missing % len(room), replace=False)] += 1
        shares[room] += extra
    return shares


def balanced_subset(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices drawn without replacement, as evenly spread over the classes as ``size`` and the
    classes' sizes allow (see :func:`balanced_shares`).
    """
    classes, counts = np.unique(labels, return_counts=True)
    picks = [rng.choice(np.flatnonzero(labels == c), n, replace=False)
             for c, n in zip(classes, balanced_shares(counts, size, rng))]
    return np.sort(np.concatenate(picks))


def semi_supervised_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                             sizes=(10, 100, 1000), draws: int = 5, seed: int = 0,
                             max_iter: int = 200, bar=None) -> dict[int, list[float]]:
    """Test accuracies of logistic regressions trained on only ``size`` labelled training images.

    For each size, ``draws`` class-balanced labelled sets are drawn; the draws depend
    only on the labels, ``size``, ``seed`` and the draw number, so every representation
    is scored on the same labelled images. The features are standardised with
    statistics of the whole (unlabelled) training set. ``bar.update(1)`` follows each
    regression. Returns ``{size: [accuracy per draw]}``.
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    out: dict[int, list[float]] = {}
    for size in sizes:
        accs = []
        for draw in range(draws):
            idx = balanced_subset(train_y, size, np.random.default_rng([seed, size, draw]))
            accs.append(logistic_accuracy(train_x[idx], train_y[idx], test_x, test_y, max_iter, scaler))
            if bar is not None:
                bar.update(1)
        out[int(size)] = accs
    return out
