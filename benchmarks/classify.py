"""Codes that classify: clustering without labels and learning from 100 labels, against the papers.

For each dataset (MNIST, Fashion-MNIST) and seed: train an autoencoder on the training split
(``--ae``, default ``dense``: N2D's and DEC's 784-500-500-2000-10 ReLU network, MSE, Adam
1e-3, batch 256; ``--epochs``), then clusters all 70,000 images (``--cluster all``, as the papers
do) or the 10,000 test images (``test``), k = 10, and scores the test images:

- k-means on PCA-10 of the pixels and k-means on the codes (the baselines);
- N2D (:mod:`aekit.evaluation.clustering`: UMAP of the codes, then a Gaussian mixture);
- N2D over-clustered and merged (``n2d-merge``: the same embedding, a mixture of 20 components
  joined along the embedding's neighbour graph into 10 groups of comparable size);
- IDEC / DEC (:mod:`aekit.training.deep_clustering`: the encoder refined with a clustering loss,
  centroids from k-means on the codes), when named in ``--methods``;
- with 100 labelled training images (class-balanced, seeded): cluster-then-label over the
  UMAP embedding of the codes of every image (``--unlabelled all``) or of the labelled and
  the test images (``test``) (:mod:`aekit.evaluation.fewlabels`), next to logistic regression
  on the 100 labelled codes and on their pixels.

Prints Markdown: accuracy (Hungarian), NMI and ARI, mean and standard deviation over the
seeds (and each seed's accuracy), the seconds each step took (the autoencoder's training is its own row), and the
published figures (DEC 0.843, IDEC 0.881, VaDE 0.945, N2D 0.979 on MNIST; N2D 0.672 on
Fashion-MNIST; those papers cluster and score all 70,000 images).

Usage: python benchmarks/classify.py [--datasets mnist,fashion-mnist] [--seeds 0,1,2] [--epochs 10]
       [--methods n2d,n2d-merge,idec] [--cluster all] [--labels 100] [--unlabelled all] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time

PUBLISHED = {"mnist": {"DEC": 0.843, "IDEC": 0.881, "VaDE": 0.945, "N2D": 0.979, "M1+M2 (100 labels)": 0.9667},
             "fashion-mnist": {"N2D": 0.672}}
AUTOENCODERS = {  # name -> aekit.train overrides
    "dense": {"model": "mlp", "hidden": (500, 500, 2000), "latent_dim": 10, "activation": "relu",
              "latent_activation": "linear", "output_activation": "sigmoid", "loss": "mse", "batch_size": 256,
              "lr": 0.001},
    "conv": {"preset": "conv-16", "latent_dim": 10},
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one_seed(name: str, seed: int, args, tmp: str) -> tuple[dict, dict]:
    """Scores ``{row: {"acc", "nmi", "ari"} or {"acc"}}`` and seconds ``{row: s}`` of one dataset and seed."""
    import numpy as np

    import aekit
    from aekit.evaluation import clustering
    from aekit.evaluation.fewlabels import few_labels
    from aekit.evaluation.metrics import clustering_scores
    from aekit.evaluation.suite import flat_unit

    scores, seconds = {}, {}
    overrides = dict(AUTOENCODERS[args.ae])
    preset = overrides.pop("preset", None)
    start = time.perf_counter()
    run = aekit.train(preset, dataset=name, epochs=args.epochs, seed=seed, device="cpu", out=f"{tmp}/{name}-{seed}",
                      verbose=False, progress=False, plots=False, **overrides)
    seconds["autoencoder training"] = time.perf_counter() - start
    data = run.load_data()
    z_train, z_test = run.encode(data.x_train), run.encode(data.x_test)
    pixels_test = flat_unit(data.x_test)
    # what is clustered: the test images, or all the images (as the papers do), scored on the test images
    every = args.cluster == "all"
    pool_x = np.concatenate([data.x_train, data.x_test]) if every else data.x_test
    pool_z = np.concatenate([z_train, z_test]) if every else z_test
    pool_pixels = np.concatenate([flat_unit(data.x_train), pixels_test]) if every else pixels_test
    y, test = data.y_test, slice(len(z_train) if every else 0, None)  # the test images' rows in the pool

    def timed(row, fn):
        t = time.perf_counter()
        out = fn()
        seconds[row] = time.perf_counter() - t
        log(f"{name} seed {seed}: {row}: {out} ({seconds[row]:.0f} s)")
        return out

    scores["k-means on PCA-10"] = timed("k-means on PCA-10", lambda: clustering_scores(
        y, clustering.kmeans(clustering.pca(pool_pixels, 10, seed), 10, seed)[test]))
    scores["k-means on the codes"] = timed("k-means on the codes", lambda: clustering_scores(
        y, clustering.kmeans(pool_z, 10, seed)[test]))
    for method in ("n2d", "n2d-merge"):
        if method in args.methods:
            row = clustering.METHODS[method]
            scores[row] = timed(row, lambda: clustering_scores(
                y, clustering.cluster_codes(pool_z, 10, method=method, seed=seed).labels_[test]))
    for method in ("idec", "dec"):
        if method in args.methods:
            row = clustering.REFINING[method]
            scores[row] = timed(row, lambda: clustering_scores(y, clustering.cluster_by_refining(
                run.model, pool_x, pool_z, 10, method=method, seed=seed, scale=run.scale,
                **({"epochs": 1} if args.quick else {}))[0].labels_[test]))
    if args.labels:
        found = timed(f"{args.labels} labels", lambda: few_labels(
            z_train, data.y_train, z_test, y, args.labels, pixels_train=flat_unit(data.x_train),
            pixels_test=pixels_test, unlabelled=args.unlabelled, seed=seed).scores)
        for row, acc in found.items():
            scores[f"{args.labels} labels: {row}"] = {"acc": acc}
    return scores, seconds


def main() -> None:
    import numpy as np
    import torch

    from aekit.evaluation.table import markdown_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="mnist,fashion-mnist", help="comma-separated [default: mnist,fashion-mnist]")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated [default: 0,1,2]")
    p.add_argument("--epochs", type=int, default=10, help="autoencoder epochs [default: 10]")
    p.add_argument("--ae", default="dense", choices=sorted(AUTOENCODERS), help="the autoencoder [default: dense]")
    p.add_argument("--methods", default="n2d,n2d-merge,idec",
                   help="of n2d, n2d-merge, idec, dec [default: n2d,n2d-merge,idec]")
    p.add_argument("--labels", type=int, default=100, help="labelled images; 0: skip [default: 100]")
    p.add_argument("--cluster", default="all", choices=("all", "test"),
                   help="which images are clustered (the scores are always the test images'): all 70,000, as the "
                        "papers do, or the test images [default: all]")
    p.add_argument("--unlabelled", default="all", choices=("all", "test"),
                   help="the unlabelled images for the labels: all 70,000, or the test images [default: all]")
    p.add_argument("--quick", action="store_true",
                   help="a fast check: mnist-sample, seed 0, 50 epochs, IDEC 1 epoch")
    args = p.parse_args()
    if args.quick:
        args.datasets, args.seeds, args.epochs = "mnist-sample", "0", 50
    args.methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# Codes that classify: autoencoder {args.ae}, {args.epochs} epochs, seeds {seeds}, "
          f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()})\n")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            results = [one_seed(name, seed, args, tmp) for seed in seeds]
            rows = list(results[0][0])
            body = []
            for row in rows:
                cells = [row]
                for metric in ("acc", "nmi", "ari"):
                    values = [r[0][row].get(metric) for r in results]
                    cells.append("" if values[0] is None else
                                 f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1
                                 else f"{values[0]:.3f}")
                if len(results) > 1:
                    values = [r[0][row].get("acc") for r in results]
                    cells.append(" ".join(f"{v:.3f}" for v in values))
                body.append(cells)
            print(f"## {name}: {'all images clustered' if args.cluster == 'all' else 'test images clustered'}, "
                  f"scored on the test images, k = 10, {len(seeds)} seed(s)\n")
            header = ["method", "accuracy", "NMI", "ARI"] + (["accuracy per seed"] if len(results) > 1 else [])
            print(markdown_table(header, body) + "\n")
            steps = list(results[0][1])
            print("Seconds (mean over seeds): " + ", ".join(
                f"{s} {np.mean([r[1][s] for r in results]):.0f}" for s in steps) + "\n")
            published = PUBLISHED.get(name.replace("-sample", ""), {})
            if published:
                print("Published accuracy (all 70,000 images): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in published.items()) + "\n")


if __name__ == "__main__":
    main()
