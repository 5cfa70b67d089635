"""Grouping images by their codes, without labels: the method only (no files, no pictures).

Three methods, all ending in a Gaussian mixture (so every image gets a probability):

- ``n2d``: N2D (McConville et al. 2020, "N2D: (Not Too) Deep Clustering via Clustering the
  Local Manifold of an Autoencoded Embedding"): the codes go through UMAP (``umap-learn``,
  aekit's ``cluster`` extra) with ``min_dist`` 0 and 20 neighbours, as the paper sets it for
  MNIST, then a full-covariance Gaussian mixture clusters the embedding. The paper embeds into
  as many dimensions as clusters; here the embedding has :data:`UMAP_DIMS` dimensions whatever
  ``k``, so that one embedding serves every ``k`` tried when ``k`` is estimated.
- ``n2d-merge``: N2D's embedding, over-clustered and merged along it: a Gaussian mixture with
  :data:`OVERCLUSTER` times ``k`` components, whose components are then joined, the most
  connected pair first, until ``k`` groups are left. Two components are as connected as the
  edges of the embedding's nearest-neighbour graph (:data:`MERGE_NEIGHBORS` neighbours) that
  run between them, divided by the product of their sizes; no join may make a group larger
  than :data:`MERGE_CAP` times the mean group size (``N / k``) while another join is possible.
  The cap is a prior that the groups are of comparable size: on Fashion-MNIST the plain
  mixture splits sandals and bags in two and lumps pullovers, coats and shirts together, and
  the over-clustered components are purer; merging them by connection alone joins the
  upper-body garments again, and the cap stops that. Where one true group holds most of the
  images, the cap splits it; use ``n2d`` there.
- ``gmm``: the Gaussian mixture on the codes as they are (no extra needed).

The number of clusters is given, or estimated over ``k`` in ``2..k_max`` without labels:

- ``n2d`` and ``n2d-merge``: the ``k`` whose mixture's clusters are best separated in the
  embedding, by the mean silhouette (Rousseeuw 1987; scikit-learn's ``silhouette_score`` on at most
  :data:`SILHOUETTE_POINTS` points drawn with the seed). The mixture's BIC is no guide there: on
  UMAP's tight, non-Gaussian clusters it keeps falling as k grows, and picked ``k_max`` on every
  MNIST run tried;
- ``gmm``: the ``k`` whose mixture has the lowest BIC (Schwarz 1978; ``GaussianMixture.bic``).

Each image's ``distance`` is the Mahalanobis distance from its point to its cluster's centre
under that component's covariance: the smallest are a cluster's most typical members, the
largest its least typical.

Seeded: UMAP with a ``random_state`` runs single-threaded and is deterministic on one
machine (numba's code may differ between machines); the mixture is seeded too.

>>> z = np.concatenate([np.random.default_rng(0).normal(c, 0.1, (50, 3)) for c in (0, 3, 6)])
>>> cluster_codes(z, method="gmm").n_clusters_
3
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aekit.errors import ConfigError
from aekit.io import Log, quiet

METHODS = {"n2d": "N2D (UMAP + GMM)", "n2d-merge": "N2D, over-clustered and merged", "gmm": "GMM on the codes"}
MANIFOLD = ("n2d", "n2d-merge")  # the methods that cluster UMAP's embedding (they need the cluster extra)
K_MAX = 15  # the largest k tried when estimating it
UMAP_NEIGHBORS = 20  # N2D's n_neighbors for MNIST (McConville et al. 2020, section 4.2)
UMAP_DIMS = 10  # N2D embeds into k dimensions, 10 for its 10-class sets
GMM_INIT = 3  # mixture restarts, the best likelihood kept
SILHOUETTE_POINTS = 3000  # the silhouette is O(N^2): scored on a seeded sample past this
OVERCLUSTER = 2  # n2d-merge: mixture components per group before merging
MERGE_NEIGHBORS = 15  # n2d-merge: neighbours per point in the graph whose edges measure how connected components are
MERGE_CAP = 1.3  # n2d-merge: the largest group a join may make, as a multiple of the mean group size N / k
# how each method estimates k (see the module's docstring)
CRITERIA = {"n2d": "silhouette", "n2d-merge": "silhouette", "gmm": "bic"}
# methods that train the encoder further (aekit.training.deep_clustering); k, when not given, is gmm's estimate
REFINING = {"idec": "IDEC (refined codes)", "dec": "DEC (refined codes)"}
ALL_METHODS = {**METHODS, **REFINING}


@dataclass
class Clustering:
    """What :func:`cluster_codes` found for ``N`` points.

    ``labels_`` ``(N,)`` int64 cluster of each point (``0..n_clusters_-1``);
    ``probabilities_`` ``(N,)`` the mixture's responsibility of that cluster for the point;
    ``distances_`` ``(N,)`` Mahalanobis distance to that cluster's centre;
    ``k_scores_`` the silhouette or BIC of each ``k`` tried (empty when ``k`` was given);
    ``embedding_`` ``(N, UMAP_DIMS)`` for ``n2d`` and ``n2d-merge``, ``None`` for ``gmm``.
    """

    labels_: np.ndarray
    probabilities_: np.ndarray
    distances_: np.ndarray
    n_clusters_: int
    method: str
    k_chosen_by: str  # "given", "silhouette" (higher is better) or "bic" (lower is better)
    k_scores_: dict[int, float] = field(default_factory=dict)
    embedding_: np.ndarray | None = None
    params: dict = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        """Images per cluster, cluster 0 first."""
        return np.bincount(self.labels_, minlength=self.n_clusters_).tolist()

    def members(self, cluster: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of a cluster's ``m`` most typical points (nearest first) and its ``m`` least typical
        (farthest first); with fewer than ``2 m`` members the two lists split them without overlap.
        """
        idx = np.flatnonzero(self.labels_ == cluster)
        order = idx[np.argsort(self.distances_[idx], kind="stable")]
        typical = order[:m]
        return typical, order[max(len(typical), len(order) - m):][::-1]

    def why_k(self) -> str:
        """One line saying how ``k`` was chosen."""
        if self.k_chosen_by == "given":
            return f"k = {self.n_clusters_}: given"
        ks = sorted(self.k_scores_)
        space = "the UMAP embedding" if self.method in MANIFOLD else "the codes"
        best = "highest mean silhouette" if self.k_chosen_by == "silhouette" else "lowest BIC"
        ranked = sorted(ks, key=self.k_scores_.get, reverse=self.k_chosen_by == "silhouette")
        runner_up = f"; next best k = {ranked[1]} ({self.k_scores_[ranked[1]]:,.3g})" if len(ranked) > 1 else ""
        return (f"k = {self.n_clusters_}: {best} of a Gaussian mixture on {space} over k = {ks[0]}..{ks[-1]} "
                f"({self.k_scores_[self.n_clusters_]:,.3g}{runner_up})")


def cluster_codes(z: np.ndarray, k: int | None = None, *, method: str = "n2d", seed: int = 0, k_max: int = K_MAX,
                  neighbors: int = UMAP_NEIGHBORS, dims: int = UMAP_DIMS, n_init: int = GMM_INIT,
                  log: Log = quiet) -> Clustering:
    """Cluster codes ``z (N, d)`` into ``k`` groups, or into the ``k`` in ``2..k_max`` that the method's criterion
    picks (``n2d``: the highest silhouette; ``gmm``: the lowest BIC).

    ``method`` is ``"n2d"`` (UMAP with ``neighbors`` neighbours to ``dims`` dimensions, then a
    Gaussian mixture), ``"n2d-merge"`` (the same embedding, a mixture of ``OVERCLUSTER * k``
    components merged into ``k`` groups, as the module's docstring says) or ``"gmm"`` (the mixture
    on ``z``). ``log`` gets one line per step.
    """
    z = np.asarray(z, dtype=np.float64)
    if method not in METHODS:
        raise ConfigError(f"method: {method!r} is not allowed; choose one of: {', '.join(METHODS)}", params=("method",))
    if z.ndim != 2 or not len(z):
        raise ValueError(f"cluster_codes: expected codes (N, d) with N >= 1, got {z.shape}")
    if not np.isfinite(z).all():
        raise ConfigError("the codes are not all finite numbers: the run's model gives NaN or inf for some images")
    n = len(z)
    ks = _candidate_ks(n, k, k_max)
    params = {"seed": seed, "n_init": n_init}
    x = z
    if method in MANIFOLD:
        x, umap_params = _umap(z, neighbors, dims, seed, log)
        params.update(umap_params)
    if k is not None:
        gmm = _mixture(x, k, seed, n_init)
        scores, chosen_by = {}, "given"
        log(f"Gaussian mixture: k = {k} (given), {n:,} points in {x.shape[1]}-D")
    else:
        chosen_by = CRITERIA[method]
        log(f"Gaussian mixture: k = {ks[0]}..{ks[-1]}, {n:,} points in {x.shape[1]}-D, k chosen by {chosen_by}")
        fits = {j: _mixture(x, j, seed, n_init) for j in ks}
        scores = {j: _criterion(chosen_by, x, g, seed) for j, g in fits.items()}
        best = max(scores, key=scores.get) if chosen_by == "silhouette" else min(scores, key=scores.get)
        gmm = fits[best]
    if method == "n2d-merge":
        labels, proba, distances, merge_params = _merge(x, gmm.n_components, seed, n_init, log)
        params.update(merge_params)
        labels, proba, _ = _by_size(labels, proba)
    else:
        labels = gmm.predict(x)
        proba = gmm.predict_proba(x)
        labels, proba, gmm_order = _by_size(labels, proba)
        distances = _mahalanobis(x, gmm, gmm_order[labels])
    result = Clustering(labels.astype(np.int64), proba[np.arange(n), labels], distances, int(proba.shape[1]), method,
                        chosen_by, scores, x if method in MANIFOLD else None, params)
    log(result.why_k())
    return result


def cluster_by_refining(autoencoder, images: np.ndarray, z: np.ndarray, k: int | None = None, *,
                        method: str = "idec", seed: int = 0, k_max: int = K_MAX, scale: str = "unit",
                        epochs: int | None = None, start_from_z: bool = False, log: Log = quiet):
    """DEC or IDEC (``method``) on ``images`` ``(N, C, H, W)`` uint8 whose codes under ``autoencoder`` are
    ``z`` ``(N, d)``: returns the :class:`Clustering` and the
    :class:`~aekit.training.deep_clustering.Refined` (the refined encoder and centroids).

    ``k`` not given: the ``gmm`` method's estimate on ``z`` (the lowest BIC), then refined with
    that ``k``. ``distances_`` are the refined codes' Euclidean distances to their centroids.
    ``start_from_z``: the k-means that starts the centroids runs on ``z`` itself rather than on the
    images encoded again (needed for features outside the pixel range).
    """
    from aekit.training import deep_clustering

    if method not in REFINING:
        raise ConfigError(f"method: {method!r} is not allowed; choose one of: {', '.join(ALL_METHODS)}",
                          params=("method",))
    scores, chosen_by = {}, "given"
    if k is None:
        estimate = cluster_codes(z, None, method="gmm", seed=seed, k_max=k_max, log=log)
        k, scores, chosen_by = estimate.n_clusters_, estimate.k_scores_, estimate.k_chosen_by
    else:
        _candidate_ks(len(z), k, k_max)
    refined = deep_clustering.refine(autoencoder, images, k, variant=method, scale=scale, seed=seed, log=log,
                                     codes=z if start_from_z else None,
                                     **({"epochs": epochs} if epochs is not None else {}))
    n = len(refined.labels_)
    proba = np.zeros((n, k))
    proba[np.arange(n), refined.labels_] = refined.probabilities_
    labels, proba, _ = _by_size(refined.labels_, proba)
    params = {"seed": seed, "epochs": refined.history[-1]["epoch"] if refined.history else 0,
              "update_interval": refined.module.update_interval, "gamma": refined.module.gamma}
    result = Clustering(labels.astype(np.int64), proba[np.arange(n), labels], refined.distances_, k, method,
                        chosen_by, scores, None, params)
    log(result.why_k())
    return result, refined


def _criterion(name: str, x: np.ndarray, gmm, seed: int) -> float:
    """The silhouette of a mixture's clusters (-1 when they are fewer than two) or its BIC."""
    if name == "bic":
        return float(gmm.bic(x))
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    labels = gmm.predict(x)
    if len(np.unique(labels)) < 2:
        return -1.0
    with threadpool_limits(1):
        return float(silhouette_score(x, labels, sample_size=min(len(x), SILHOUETTE_POINTS), random_state=seed))


def _candidate_ks(n: int, k: int | None, k_max: int) -> range:
    if k is not None:
        if not 1 <= k <= n:
            raise ConfigError(f"k: must be between 1 and the number of images ({n:,}), got {k}", params=("k",))
        return range(k, k + 1)
    if k_max < 2:
        raise ConfigError(f"k_max: must be >= 2, got {k_max}", params=("k_max",))
    if n < 3:
        raise ConfigError(f"estimating the number of clusters needs at least 3 images, got {n}; give k", params=("k",))
    return range(2, min(k_max, n - 1) + 1)


def _umap(z: np.ndarray, neighbors: int, dims: int, seed: int, log: Log) -> tuple[np.ndarray, dict]:
    """UMAP of the codes, N2D's way: no minimum distance, so that a cluster packs tight."""
    from aekit.integrations import require

    umap = require("umap", "cluster", "method n2d (UMAP)", params=("method",))
    n = len(z)
    if n < 4:
        raise ConfigError(f"method n2d: UMAP needs at least 4 images, got {n}; use method gmm", params=("method",))
    neighbors = min(neighbors, n - 1)
    dims = min(dims, n - 2)  # UMAP's spectral start needs fewer dimensions than points - 1
    log(f"UMAP: {z.shape[1]}-D codes of {n:,} images to {dims}-D ({neighbors} neighbours, min_dist 0, seed {seed})")
    reducer = umap.UMAP(n_neighbors=neighbors, n_components=dims, min_dist=0.0, metric="euclidean",
                        random_state=seed, n_jobs=1)
    embedding = reducer.fit_transform(z.astype(np.float32)).astype(np.float64)  # (N, dims)
    return embedding, {"umap_neighbors": neighbors, "umap_dims": dims, "umap_min_dist": 0.0}


def _mixture(x: np.ndarray, k: int, seed: int, n_init: int):
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    # reg_covar above the default: UMAP with min_dist 0 packs a cluster nearly flat in some directions
    gmm = GaussianMixture(n_components=k, covariance_type="full", n_init=n_init, reg_covar=1e-4, random_state=seed)
    with threadpool_limits(1):  # (N, <= 16) arrays: BLAS threads cost more than they give (one fit on 1000 x 8:
        return gmm.fit(x)       # 1.6 s with them, 0.09 s without, on a busy 2-core machine)


def _merge(x: np.ndarray, k: int, seed: int, n_init: int, log: Log
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``n2d-merge``'s step after the embedding ``x (N, d)``: a mixture of ``OVERCLUSTER * k`` components,
    joined into ``k`` groups (the module's docstring says how). Returns each point's group, the groups'
    probabilities ``(N, k)`` (the sums of their components'), each point's Mahalanobis distance to the centre
    of its own component, and the parameters.
    """
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    n = len(x)
    fine_k = min(OVERCLUSTER * k, n)
    log(f"over-clustering: a Gaussian mixture of {fine_k} components, merged into {k} groups along the "
        f"{MERGE_NEIGHBORS}-neighbour graph, none past {MERGE_CAP} x {n:,} / {k} images while another join fits")
    fine = _mixture(x, fine_k, seed, n_init)
    component = fine.predict(x)
    used, component = np.unique(component, return_inverse=True)  # empty components take no part
    m = len(used)
    neighbors = min(MERGE_NEIGHBORS, n - 1)
    with threadpool_limits(1):
        _, near = NearestNeighbors(n_neighbors=neighbors + 1).fit(x).kneighbors(x)
    edges = np.zeros((m, m))
    np.add.at(edges, (np.repeat(component, neighbors), component[near[:, 1:]].ravel()), 1)
    edges = edges + edges.T
    np.fill_diagonal(edges, 0)
    group_of = _join(edges, np.bincount(component, minlength=m).astype(np.float64), k, MERGE_CAP * n / k)
    labels = group_of[component]
    groups = int(group_of.max()) + 1
    fine_proba = fine.predict_proba(x)[:, used]
    proba = np.zeros((n, groups))
    for c in range(m):
        proba[:, group_of[c]] += fine_proba[:, c]
    distances = _mahalanobis(x, fine, used[component])
    return labels, proba, distances, {"overcluster": OVERCLUSTER, "merge_neighbors": neighbors,
                                      "merge_cap": MERGE_CAP}


def _join(edges: np.ndarray, sizes: np.ndarray, k: int, cap: float) -> np.ndarray:
    """Greedy agglomeration of ``m`` components, with ``edges (m, m)`` between them and ``sizes (m,)``, into
    ``k`` groups: the pair with the most edges per product of sizes first, among the pairs whose join stays
    within ``cap`` points (among all pairs when none does). Returns each component's group, ``0..k-1`` in the
    order of the groups' smallest component.

    Components 2 and 3 are the most connected pair; a cap of 2 points keeps them apart, and when no
    join fits the most connected pair is joined all the same:

    >>> edges = np.array([[0, 9, 1, 0], [9, 0, 1, 0], [1, 1, 0, 30], [0, 0, 30, 0]], dtype=float)
    >>> sizes = np.array([1.0, 1.0, 1.0, 2.0])
    >>> _join(edges, sizes, 3, cap=10).tolist()
    [0, 1, 2, 2]
    >>> _join(edges, sizes, 3, cap=2).tolist()
    [0, 0, 1, 2]
    >>> _join(edges, sizes, 2, cap=2).tolist()
    [0, 0, 1, 1]
    """
    edges, sizes = edges.astype(np.float64), sizes.astype(np.float64)
    members = [[c] for c in range(len(sizes))]
    while len(members) > k:
        score = edges / np.outer(sizes, sizes)
        score[np.tril_indices(len(sizes))] = -np.inf
        fits = (sizes[:, None] + sizes[None, :]) <= cap
        allowed = np.where(fits, score, -np.inf)
        i, j = np.unravel_index(np.argmax(allowed if np.isfinite(allowed).any() else score), score.shape)
        edges[i] += edges[j]
        edges[:, i] += edges[:, j]
        edges[i, i] = 0
        edges = np.delete(np.delete(edges, j, 0), j, 1)
        sizes[i] += sizes[j]
        sizes = np.delete(sizes, j)
        members[i] += members.pop(j)
    group_of = np.empty(sum(len(g) for g in members), dtype=np.int64)
    for g, mem in enumerate(sorted(members, key=min)):
        group_of[mem] = g
    return group_of


def _by_size(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber clusters largest first (ties: the mixture's order), so that numbers do not depend on the
    mixture's internal order; empty components go last. Returns the new labels, probabilities and, for
    each new number, the mixture's component.
    """
    k = proba.shape[1]
    counts = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -counts))  # (k,) component of each new number
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels], proba[:, order], order


def _mahalanobis(x: np.ndarray, gmm, components: np.ndarray) -> np.ndarray:
    """Each point's distance to the centre of its component under that component's covariance:
    ``||(x - mu_c) L_c||`` with ``L_c`` the Cholesky factor of the precision matrix.
    """
    out = np.empty(len(x))
    for c in np.unique(components):
        rows = components == c
        out[rows] = np.linalg.norm((x[rows] - gmm.means_[c]) @ gmm.precisions_cholesky_[c], axis=1)
    return out


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4) -> np.ndarray:
    """scikit-learn's k-means clusters of ``x (N, d)``, best of ``n_init`` restarts."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # as for the mixture
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)


def pca(x: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """Float rows ``x (N, D)``, or uint8 images ``(N, C, H, W)`` read as ``[0, 1]`` pixels, projected on their first
    ``n_components`` principal components.

    Fitted by :func:`aekit.evaluation.suite.fit_pca`, which takes the cheaper exact route (the ``D x D``
    covariance or the ``N x N`` Gram matrix) or a randomized one for the shape: for 796 images of 64x64 RGB the
    covariance route alone eigendecomposed a 12,288-square matrix, 90 s where the Gram matrix takes under one.
    """
    from aekit.evaluation.suite import fit_pca

    basis = fit_pca(x, n_components, seed)
    return basis.encode_images(x) if x.dtype == np.uint8 else basis.transform(x)


def compare(labels: np.ndarray, result: Clustering, z: np.ndarray, pixels: np.ndarray, seed: int = 0,
            n_init: int = 4, log: Log = quiet) -> dict[str, dict[str, float]]:
    """Accuracy (Hungarian), NMI and ARI against ``labels`` of ``result`` and, with the same ``k``, of k-means on
    the codes ``z`` and k-means on PCA of ``pixels`` (float rows ``(N, D)`` or uint8 images, as :func:`pca` takes
    them) to as many dimensions as the codes have.
    """
    from aekit.evaluation.metrics import clustering_scores

    k, d = result.n_clusters_, z.shape[1]
    log(f"k-means baselines: k = {k} on the {d}-D codes and on PCA-{d} of the pixels")
    rows = {ALL_METHODS[result.method]: clustering_scores(labels, result.labels_),
            "k-means on the codes": clustering_scores(labels, kmeans(z, k, seed, n_init)),
            f"k-means on PCA-{d}": clustering_scores(labels, kmeans(pca(pixels, d, seed), k, seed, n_init))}
    return rows


__all__ = ["ALL_METHODS", "Clustering", "MANIFOLD", "METHODS", "REFINING", "cluster_by_refining", "cluster_codes",
           "compare", "kmeans", "pca"]
