"""Metrics as pure functions on numpy arrays: reconstruction quality and clustering agreement.

Images are compared in ``[0, 1]`` whatever scale a run trained in (see
:func:`aekit.pixels.to_unit`), so runs and baselines are comparable. Nothing here reads or writes files.
"""

from __future__ import annotations

import numpy as np

BCE_EPS = 1e-7  # predictions are clipped to [eps, 1-eps] before the log


def per_image_mse(x: np.ndarray, recon_x: np.ndarray) -> np.ndarray:
    """Mean squared error per pixel of each image: ``(N, ...)`` pairs -> ``(N,)`` float64."""
    diff = np.asarray(x, np.float64) - np.asarray(recon_x, np.float64)
    return np.mean(diff.reshape(len(diff), -1) ** 2, axis=1)


def mse(x: np.ndarray, recon_x: np.ndarray) -> float:
    """Mean squared error per pixel over all images."""
    return float(np.mean(per_image_mse(x, recon_x)))


def masked_sums(x: np.ndarray, recon_x: np.ndarray) -> tuple[float, float]:
    """RGBA images ``(N, 4, H, W)``: the weighted squared-error sum and the weight sum of ``--alpha-loss mask``.

    The training loss's own function (:func:`aekit.models.losses.alpha_masked_sums` with
    ``mse``), in float64: each colour value's error weighted by ``x``'s alpha, the alpha's own
    at weight 1. Sums, so that chunks of a test set add up to its mean (:func:`masked_mse`).
    """
    import torch

    from aekit.models.losses import alpha_masked_sums

    error, weight = alpha_masked_sums("mse", torch.from_numpy(np.asarray(recon_x, np.float64)),
                                      torch.from_numpy(np.asarray(x, np.float64)))
    return float(error), float(weight)


def masked_mse(x: np.ndarray, recon_x: np.ndarray) -> float:
    """MSE over the visible pixels of RGBA images ``(N, 4, H, W)``: what ``--alpha-loss mask`` with ``mse`` computes.

    The alpha's own error counts (weight 1) beside the colours' (weight alpha): a
    reconstruction that shows a pixel the image hides, or hides one it shows, is wrong
    where the user looks, and a colour-only score would not see it.
    """
    error, weight = masked_sums(x, recon_x)
    return error / weight


def alpha_mse(x: np.ndarray, recon_x: np.ndarray) -> float:
    """MSE of the alpha channel alone of RGBA images ``(N, 4, H, W)``: the mask's share of :func:`masked_mse`."""
    return mse(np.asarray(x)[:, 3], np.asarray(recon_x)[:, 3])


def bce(x: np.ndarray, recon_x: np.ndarray, eps: float = BCE_EPS) -> float:
    """Binary cross-entropy per pixel, ``-[x log p + (1-x) log(1-p)]``, with ``p`` clipped to ``[eps, 1-eps]``.

    Not zero for a perfect reconstruction of grey pixels (it is the entropy of ``x`` there).
    """
    x = np.asarray(x, np.float64)
    p = np.clip(np.asarray(recon_x, np.float64), eps, 1.0 - eps)
    return float(np.mean(-(x * np.log(p) + (1.0 - x) * np.log1p(-p))))


def psnr(x: np.ndarray, recon_x: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB from the MSE over all images: ``10 log10(range² / MSE)``.

    Identical images give ``inf`` (not an error and not a warning).
    """
    err = mse(x, recon_x)
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / err))


SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004, eq. 7; scikit-image's defaults
SSIM_BATCH_VALUES = 2 ** 20  # pixel values filtered at a time: float64 temporaries stay near 100 MB


def ssim(x: np.ndarray, recon_x: np.ndarray, data_range: float = 1.0, win_size: int = 7) -> float:
    """Mean structural similarity over images ``(N, C, H, W)``, as scikit-image scores each.

    The numbers of ``skimage.metrics.structural_similarity`` with its defaults (a
    ``win_size`` x ``win_size`` uniform window, sample covariances, Wang et al. 2004
    constants) and ``data_range``; a colour image's score is the mean of its channels'.
    Images are scored in float64, and on batches at once (the same filters, axis by axis),
    which is many times faster than a call per image on small images.
    """
    from scipy.ndimage import uniform_filter

    x = np.asarray(x)
    recon_x = np.asarray(recon_x)
    if x.ndim != 4 or x.shape != recon_x.shape:
        raise ValueError(f"ssim expects two (N, C, H, W) arrays of one shape, got {x.shape} and {recon_x.shape}")
    n, pad = len(x), (win_size - 1) // 2
    cov_norm = win_size ** 2 / (win_size ** 2 - 1)  # sample covariance, as scikit-image's default
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    step = max(1, SSIM_BATCH_VALUES // int(np.prod(x.shape[1:])))
    scores = []
    for start in range(0, n, step):
        a = x[start:start + step].astype(np.float64)  # (B, C, H, W)
        b = recon_x[start:start + step].astype(np.float64)

        def mean(img):  # the window's mean over H and W only
            return uniform_filter(img, size=(1, 1, win_size, win_size))

        ux, uy = mean(a), mean(b)
        vx = cov_norm * (mean(a * a) - ux * ux)
        vy = cov_norm * (mean(b * b) - uy * uy)
        vxy = cov_norm * (mean(a * b) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
        inner = s[:, :, pad:s.shape[2] - pad, pad:s.shape[3] - pad]  # scikit-image leaves out the padded border
        scores.append(inner.mean(axis=(2, 3), dtype=np.float64).mean(axis=1))  # (B,): per channel, then over them
    return float(np.mean(np.concatenate(scores)))


def reconstruction_scores(x: np.ndarray, recon_x: np.ndarray) -> dict[str, float]:
    """``mse``, ``bce``, ``psnr`` and ``ssim`` of reconstructions against images, both in ``[0, 1]``."""
    return {"mse": mse(x, recon_x), "bce": bce(x, recon_x), "psnr": psnr(x, recon_x), "ssim": ssim(x, recon_x)}


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy of the best one-to-one matching of clusters to labels (the Hungarian method).

    Each cluster is given a distinct label so that the number of images whose cluster
    maps to their own label is largest; with more clusters than labels, the extra
    clusters count as wrong.

    >>> cluster_accuracy(np.array([0, 0, 1, 2]), np.array([5, 5, 3, 4]))
    1.0
    """
    from scipy.optimize import linear_sum_assignment

    labels = np.asarray(labels)
    clusters = np.asarray(clusters)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of one length, got {labels.shape} and {clusters.shape}")
    if len(labels) == 0:
        raise ValueError("cluster_accuracy of no samples")
    _, label_idx = np.unique(labels, return_inverse=True)
    _, cluster_idx = np.unique(clusters, return_inverse=True)
    counts = np.zeros((cluster_idx.max() + 1, label_idx.max() + 1), dtype=np.int64)  # (clusters, labels)
    np.add.at(counts, (cluster_idx, label_idx), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels))


def clustering_scores(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """``acc`` (Hungarian-matched accuracy), ``nmi`` and ``ari`` (scikit-learn) of a clustering."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"acc": cluster_accuracy(labels, clusters),
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters))}
