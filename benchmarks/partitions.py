"""How far apart are the partitions one set of codes allows? Fashion-MNIST's ceiling for N2D-style clustering.

Trains an autoencoder on Fashion-MNIST's training images (``--ae``, as in
``benchmarks/classify.py``; ``dense`` is N2D's 784-500-500-2000-10 network) for ``--epochs``,
or reads its codes of all 70,000 images (training then test) from ``--codes FILE.npy``. It
then partitions those codes into 10 clusters many ways, all through UMAP (20 neighbours):

- Gaussian mixtures on UMAP's 10-D embedding, one per seed (N2D's step);
- k-means on the embedding, one per seed;
- spectral clustering of UMAP's neighbour graph with 10 to 20 eigenvectors;
- a consensus of all of them: spectral clustering of the graph with each edge weighted by
  the share of partitions that put its two ends together.

For each it prints the accuracy (Hungarian), NMI and ARI on the test images, and two
criteria that need no labels: the modularity of the partition on UMAP's graph and the
balance of its cluster sizes (entropy over its maximum). The last lines give their
correlation with the accuracy. If one criterion tracked the accuracy, it could choose
among the partitions. The mean accuracy is what a method that draws one of them gets.

Usage: python benchmarks/partitions.py [--codes z.npy | --ae dense --epochs 50] [--seed 0] [--draws 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

NEIGHBORS = 20
EIGENVECTORS = (10, 12, 14, 16, 20)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def codes(args) -> tuple[np.ndarray, np.ndarray]:
    """The codes of all 70,000 images (training first) and the test labels."""
    import aekit
    from aekit.data import load_dataset

    y_test = load_dataset("fashion-mnist", log=lambda _: None).y_test
    if args.codes:
        return np.load(args.codes), y_test
    from classify import AUTOENCODERS  # benchmarks/ is on sys.path when run as a script

    overrides = dict(AUTOENCODERS[args.ae])
    preset = overrides.pop("preset", None)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = aekit.train(preset, dataset="fashion-mnist", epochs=args.epochs, seed=args.seed, device="cpu",
                          out=f"{tmp}/ae", verbose=False, progress=False, plots=False, **overrides)
        log(f"autoencoder: {time.perf_counter() - start:.0f} s")
        data = run.load_data(log=lambda _: None)
        return np.concatenate([run.encode(data.x_train), run.encode(data.x_test)]), y_test


def spectral(graph, k: int, vectors: np.ndarray, seed: int) -> np.ndarray:
    """k-means on the rows of the graph's top eigenvectors, normalised to unit length (Ng, Jordan & Weiss 2001)."""
    from sklearn.cluster import KMeans

    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return KMeans(k, n_init=10, random_state=seed).fit_predict(v)


def eigenvectors(graph, count: int, seed: int) -> np.ndarray:
    """The top ``count`` eigenvectors of the graph's symmetrically normalised adjacency, largest first."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    degree = np.asarray(graph.sum(1)).ravel() + 1e-12
    half = sp.diags(1 / np.sqrt(degree))
    v0 = np.random.default_rng(seed).random(graph.shape[0])
    _, vectors = eigsh(half @ graph @ half, k=count, which="LA", tol=1e-4, v0=v0)
    return vectors[:, ::-1]


def main() -> None:
    import scipy.sparse as sp
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    from sklearn.utils import check_random_state
    from umap.umap_ import UMAP, fuzzy_simplicial_set, nearest_neighbors

    from aekit.evaluation.metrics import clustering_scores
    from aekit.evaluation.table import markdown_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codes", default=None, help="codes of all 70,000 images, training first (.npy)")
    p.add_argument("--ae", default="dense", help="the autoencoder, as in classify.py [default: dense]")
    p.add_argument("--epochs", type=int, default=50, help="autoencoder epochs [default: 50]")
    p.add_argument("--seed", type=int, default=0, help="[default: 0]")
    p.add_argument("--draws", type=int, default=6, help="Gaussian mixtures (and half as many k-means) [default: 6]")
    args = p.parse_args()

    z, y = codes(args)
    test = slice(len(z) - len(y), None)
    random = check_random_state(args.seed)
    start = time.perf_counter()
    knn_i, knn_d, _ = nearest_neighbors(z, NEIGHBORS, "euclidean", {}, False, random)
    graph, _, _ = fuzzy_simplicial_set(z, NEIGHBORS, random, "euclidean", knn_indices=knn_i, knn_dists=knn_d)
    graph = graph.tocsr()
    edges = graph.tocoo()
    degree = np.asarray(graph.sum(1)).ravel()
    log(f"UMAP graph: {time.perf_counter() - start:.0f} s")
    embedding = UMAP(n_neighbors=NEIGHBORS, n_components=10, min_dist=0.0,
                     random_state=args.seed).fit_transform(z)
    log(f"UMAP embedding: {time.perf_counter() - start:.0f} s")

    def modularity(labels: np.ndarray) -> float:
        same = labels[edges.row] == labels[edges.col]
        inside = np.bincount(labels[edges.row][same], edges.data[same], minlength=labels.max() + 1)
        volume = np.bincount(labels, degree, minlength=labels.max() + 1)
        return float((inside / degree.sum() - (volume / degree.sum()) ** 2).sum())

    def balance(labels: np.ndarray) -> float:
        share = np.bincount(labels) / len(labels)
        share = share[share > 0]
        return float(-(share * np.log(share)).sum() / np.log(10))

    partitions: dict[str, np.ndarray] = {}
    for s in range(args.draws):
        partitions[f"GMM on the embedding, seed {s}"] = GaussianMixture(
            10, covariance_type="full", random_state=args.seed + s, reg_covar=1e-4).fit(embedding).predict(embedding)
    for s in range(max(1, args.draws // 3)):
        partitions[f"k-means on the embedding, seed {s}"] = KMeans(
            10, n_init=1, random_state=args.seed + s).fit_predict(embedding)
    vectors = eigenvectors(graph, max(EIGENVECTORS), args.seed)
    for count in EIGENVECTORS:
        partitions[f"spectral, {count} eigenvectors"] = spectral(graph, 10, vectors[:, :count], args.seed)
    together = np.mean([p[edges.row] == p[edges.col] for p in partitions.values()], axis=0)
    agreed = sp.coo_matrix((edges.data * together, (edges.row, edges.col)), shape=graph.shape).tocsr()
    agreed_vectors = eigenvectors(agreed, 16, args.seed)
    for count in (10, 16):
        partitions[f"consensus, {count} eigenvectors"] = spectral(agreed, 10, agreed_vectors[:, :count], args.seed)

    rows, table = [], []
    for name, labels in partitions.items():
        s = clustering_scores(y, labels[test])
        rows.append((s["acc"], modularity(labels), balance(labels)))
        table.append([name, f"{s['acc']:.3f}", f"{s['nmi']:.3f}", f"{s['ari']:.3f}", f"{rows[-1][1]:.4f}",
                      f"{rows[-1][2]:.3f}"])
    source = args.codes or f"{args.ae} autoencoder, {args.epochs} epochs, seed {args.seed}"
    print(f"# Partitions of one set of Fashion-MNIST codes ({source}); all 70,000 clustered, test images "
          f"scored\n")
    print(markdown_table(["partition", "accuracy", "NMI", "ARI", "modularity", "balance"], table) + "\n")
    r = np.array(rows)
    draws = r[:-2]  # the consensus rows are built from the others
    print(f"Accuracy over the {len(draws)} drawn partitions: mean {draws[:, 0].mean():.3f}, from "
          f"{draws[:, 0].min():.3f} to {draws[:, 0].max():.3f}\n")
    print(f"Correlation with accuracy: modularity {np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]:.2f}, balance "
          f"{np.corrcoef(draws[:, 0], draws[:, 2])[0, 1]:.2f}; the most modular partition scores "
          f"{draws[draws[:, 1].argmax(), 0]:.3f}")


if __name__ == "__main__":
    main()
