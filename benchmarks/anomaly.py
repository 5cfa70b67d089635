"""One-class anomaly detection: aekit's default MLP and conv models against PCA and PyOD's AutoEncoder.

The standard protocol (Ruff et al. 2018, "Deep one-class classification"): for each
class K, train on class K's training images only, score every test image, and report
how well the scores rank the other classes (the anomalies, 9 in 10 test images) above
class K: AUROC and average precision (chance: 0.5 and the anomaly share). Detectors:

- ``mlp``: :class:`aekit.sklearn.AnomalyDetector` on the default preset ``classic-3d-tanh``
  (784-128-64-12-3); ``pca-3``: PCA's reconstruction error with the same code size;
- ``conv`` and ``conv+codes``: the same on ``conv-16`` (32, 64 channels, 16-D code), scored by its
  reconstruction error and by that and the code's distance together (``combined``); ``pca-16``;
- ``std`` and ``std+codes``: one model, ``classic-3d-tanh`` on standardised pixels (each pixel
  minus its mean over the training images, over its standard deviation: what PyOD does to
  its inputs), scored by its reconstruction error (``score_by="reconstruction"``) and by the
  reconstruction error and the code's distance to the training codes together
  (``score_by="combined"``, :mod:`aekit.integrations.anomaly`);
- ``pyod``: PyOD's ``AutoEncoder`` (its defaults: 64-32, batch norm, dropout, standardised
  inputs; the same epochs), where PyOD is importable. aekit does not depend on PyOD:
  run this script with a Python that has both, e.g. a venv with PyOD whose ``.pth``
  file adds aekit's site-packages, and ``PYTHONPATH=src``.

``--seeds 0,1,2`` repeats everything per seed and prints the mean over the seeds.

Every detector trains for ``--epochs`` (default 5; the presets' own 10 take twice as
long) on the CPU. Prints Markdown: an AUROC table and an AP table per dataset
(Fashion-MNIST, and MNIST when its files are present), with the seconds each detector took.

Usage: python benchmarks/anomaly.py [--datasets fashion-mnist,mnist] [--epochs 5] [--classes all]
       [--detectors mlp,pca-3,std,conv,pca-16,pyod] [--seeds 0] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

TITLES = {"mlp": "MLP (classic-3d-tanh)", "pca-3": "PCA-3", "std": "MLP, standardised",
          "std+codes": "MLP, standardised + codes", "conv": "conv (conv-16)",
          "conv+codes": "conv-16 + codes", "pca-16": "PCA-16",
          "pyod": "PyOD AutoEncoder"}
DETECTORS = ("mlp", "pca-3", "std", "conv", "pca-16", "pyod")  # "std" brings "std+codes", "conv" "conv+codes"


def pyod_scorer(epochs: int, seed: int):
    """PyOD's AutoEncoder with its defaults (and ``epochs``), on pixels in [0, 1]; ``None`` without PyOD."""
    try:
        from pyod.models.auto_encoder import AutoEncoder
    except ImportError:
        return None

    def score(x_train, x_test):
        model = AutoEncoder(epoch_num=epochs, device="cpu", random_state=seed, verbose=0)
        model.fit(x_train / 255.0)
        return model.decision_function(x_test / 255.0)
    return score


def timed(score, seconds: dict, name: str):
    def run(x_train, x_test):
        start = time.perf_counter()
        out = score(x_train, x_test)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        return out
    return run


def main() -> None:
    import numpy as np
    import torch

    from aekit.data import describe_sources, load_dataset
    from aekit.evaluation.table import markdown_table
    from aekit.integrations.anomaly import autoencoder_scorer, autoencoder_scorers, one_class, pca_scorer
    from aekit.sklearn import AutoencoderTransformer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=None,
                   help="comma-separated [default: fashion-mnist, and mnist when its files are present]")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--classes", default="all", help="comma-separated class numbers or 'all'")
    p.add_argument("--seeds", default="0", help="comma-separated; the tables show the mean over them [default: 0]")
    p.add_argument("--detectors", default=",".join(DETECTORS),
                   help=f"comma-separated, of {', '.join(DETECTORS)} [default: all]")
    p.add_argument("--quick", action="store_true", help="a fast check: 1 epoch, classes 0 and 1")
    args = p.parse_args()

    epochs = 1 if args.quick else args.epochs
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = args.detectors.split(",")
    present = {d["name"] for d in describe_sources() if d["status"] == "ok"}
    names = args.datasets.split(",") if args.datasets else ["fashion-mnist", *(["mnist"] if "mnist" in present else [])]
    has_pyod = pyod_scorer(epochs, 0) is not None and "pyod" in wanted
    print(f"# One-class anomaly detection: {epochs} epoch(s) per detector, seed(s) {args.seeds}, "
          f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}), "
          f"PyOD {'included' if has_pyod else 'not installed'}\n")

    for name in names:
        data = load_dataset(name)
        classes = [0, 1] if args.quick else (range(data.num_classes) if args.classes == "all"
                                             else [int(k) for k in args.classes.split(",")])
        seconds: dict[str, float] = {}
        per_seed = []
        for seed in seeds:
            def autoencoder(preset, **kw):
                return AutoencoderTransformer(preset, epochs=epochs, random_state=seed, device="cpu",
                                              image_shape=data.image_shape, channels_last=False, **kw)  # (C, H, W)
            made = {"mlp": lambda: {"mlp": autoencoder_scorer(autoencoder("classic-3d-tanh"))},
                    "pca-3": lambda: {"pca-3": pca_scorer(3)},
                    "std": lambda: dict(zip(("std", "std+codes"), autoencoder_scorers(
                        autoencoder("classic-3d-tanh", scaling="standard"), ("reconstruction", "combined")).values())),
                    "conv": lambda: dict(zip(("conv", "conv+codes"), autoencoder_scorers(
                        autoencoder("conv-16"), ("reconstruction", "combined")).values())),
                    "pca-16": lambda: {"pca-16": pca_scorer(16)},
                    "pyod": lambda: {"pyod": pyod_scorer(epochs, seed)} if has_pyod else {}}
            detectors = {k: v for d in wanted for k, v in made[d]().items()}
            detectors = {k: timed(score, seconds, k) for k, score in detectors.items()}
            rows = []
            for k in classes:
                start = time.perf_counter()
                rows.append(one_class(data, k, detectors))
                print(f"{name} seed {seed} class {k}: {time.perf_counter() - start:.0f}s "
                      + " ".join(f"{d} {rows[-1][d]['auroc']:.3f}" for d in detectors), file=sys.stderr, flush=True)
            per_seed.append(rows)
        rows = [{**row, **{d: {m: float(np.mean([rs[i][d][m] for rs in per_seed])) for m in ("auroc", "ap")}
                           for d in detectors}} for i, row in enumerate(per_seed[0])]

        share = float(np.mean([np.mean(data.y_test != k) for k in classes]))
        print(f"## {name}: {len(data.x_test)} test images, each class's ~{rows[0]['train']} training images\n")
        for metric, title in (("auroc", "AUROC (chance 0.5)"), ("ap", f"average precision (chance {share:.2f})")):
            headers = ["class", *(TITLES[d] for d in detectors)]
            body = [[f"{r['class']} {r['name']}", *(f"{r[d][metric]:.3f}" for d in detectors)] for r in rows]
            body.append(["**mean**", *(f"**{np.mean([r[d][metric] for r in rows]):.3f}**" for d in detectors)])
            print(f"### {title}\n\n{markdown_table(headers, body)}\n")
        print(f"Seconds per detector, all classes{', all seeds' if len(seeds) > 1 else ''}: "
              + ", ".join(f"{TITLES[d]} {seconds[d]:.0f}" for d in detectors)
              + (" (std and std+codes, conv and conv+codes share one model each: its training counts once, "
                 "under the first)" if "std" in wanted or "conv" in wanted else "") + "\n")


if __name__ == "__main__":
    main()
