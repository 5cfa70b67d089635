"""A seeded, stratified train/test split for sources that come as one set."""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 0  # fixed so a single CSV file splits the same way on every load


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class keeps its share in both parts.

    Each class contributes ``round(n_class * test_fraction)`` samples to the
    test part, chosen by a seeded permutation; both index arrays come back
    shuffled (so the first rows are not all one class).

    Parameters
    ----------
    labels : ndarray of shape (N,)
    test_fraction : float in [0, 1]
    seed : int

    Returns
    -------
    train_idx, test_idx : int64 index arrays into ``labels``.

    Examples
    --------
    >>> train, test = stratified_split(np.repeat(np.arange(2), 6), 1 / 6)
    >>> len(train), len(test)
    (10, 2)
    """
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for c in np.unique(labels):  # a loop over classes, not samples
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train = np.concatenate(train_parts) if train_parts else np.zeros(0, np.int64)
    test = np.concatenate(test_parts) if test_parts else np.zeros(0, np.int64)
    return rng.permutation(train).astype(np.int64), rng.permutation(test).astype(np.int64)
