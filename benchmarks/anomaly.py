"""One-class anomaly detection: aekit's default MLP and conv models against PCA and PyOD's AutoEncoder.

The standard protocol (Ruff et al. 2018, "Deep one-class classification"): for each
class K, train on class K's training images only, score every test image, and report
how well the scores rank the other classes (the anomalies, 9 in 10 test images) above
class K: AUROC and average precision (chance: 0.5 and the anomaly share). Detectors:

- ``mlp``: :class:`aekit.sklearn.AnomalyDetector` on the default preset ``classic-3d-tanh``
  (784-128-64-12-3); ``pca-3``: PCA's reconstruction error with the same code size;
- ``conv``: the same on ``conv-16`` (32, 64 channels, 16-D code); ``pca-16``;
- ``pyod``: PyOD's ``AutoEncoder`` (its defaults: 64-32, batch norm, dropout, standardised
  inputs; the same epochs), where PyOD is importable. aekit does not depend on PyOD:
  run this script with a Python that has both, e.g. a venv with PyOD whose ``.pth``
  file adds aekit's site-packages, and ``PYTHONPATH=src``.

Every detector trains for ``--epochs`` (default 5; the presets' own 10 take twice as
long) on the CPU. Prints Markdown: an AUROC table and an AP table per dataset
(Fashion-MNIST, and MNIST when its files are present), with the seconds each detector took.

Usage: python benchmarks/anomaly.py [--datasets fashion-mnist,mnist] [--epochs 5] [--classes all] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

TITLES = {"mlp": "MLP (classic-3d-tanh)", "pca-3": "PCA-3", "conv": "conv (conv-16)", "pca-16": "PCA-16",
          "pyod": "PyOD AutoEncoder"}


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
    from aekit.integrations.anomaly import autoencoder_scorer, one_class, pca_scorer
    from aekit.sklearn import AutoencoderTransformer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=None,
                   help="comma-separated [default: fashion-mnist, and mnist when its files are present]")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--classes", default="all", help="comma-separated class numbers or 'all'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a fast check: 1 epoch, classes 0 and 1")
    args = p.parse_args()

    epochs = 1 if args.quick else args.epochs
    present = {d["name"] for d in describe_sources() if d["status"] == "ok"}
    names = args.datasets.split(",") if args.datasets else ["fashion-mnist", *(["mnist"] if "mnist" in present else [])]
    has_pyod = pyod_scorer(epochs, args.seed) is not None
    print(f"# One-class anomaly detection: {epochs} epoch(s) per detector, seed {args.seed}, "
          f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}), "
          f"PyOD {'included' if has_pyod else 'not installed'}\n")

    for name in names:
        data = load_dataset(name)
        classes = [0, 1] if args.quick else (range(data.num_classes) if args.classes == "all"
                                             else [int(k) for k in args.classes.split(",")])
        seconds: dict[str, float] = {}

        def autoencoder(preset):
            return autoencoder_scorer(AutoencoderTransformer(preset, epochs=epochs, random_state=args.seed,
                                                             device="cpu", image_shape=data.image_shape,
                                                             channels_last=False))  # aekit's (C, H, W) rows
        detectors = {"mlp": autoencoder("classic-3d-tanh"), "pca-3": pca_scorer(3),
                     "conv": autoencoder("conv-16"), "pca-16": pca_scorer(16)}
        if has_pyod:
            detectors["pyod"] = pyod_scorer(epochs, args.seed)
        detectors = {k: timed(score, seconds, k) for k, score in detectors.items()}
        rows = []
        for k in classes:
            start = time.perf_counter()
            rows.append(one_class(data, k, detectors))
            print(f"{name} class {k}: {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)

        share = float(np.mean([np.mean(data.y_test != k) for k in classes]))
        print(f"## {name}: {len(data.x_test)} test images, each class's ~{rows[0]['train']} training images\n")
        for metric, title in (("auroc", "AUROC (chance 0.5)"), ("ap", f"average precision (chance {share:.2f})")):
            headers = ["class", *(TITLES[d] for d in detectors)]
            body = [[f"{r['class']} {r['name']}", *(f"{r[d][metric]:.3f}" for d in detectors)] for r in rows]
            body.append(["**mean**", *(f"**{np.mean([r[d][metric] for r in rows]):.3f}**" for d in detectors)])
            print(f"### {title}\n\n{markdown_table(headers, body)}\n")
        print("Seconds per detector, all classes: "
              + ", ".join(f"{TITLES[d]} {seconds[d]:.0f}" for d in detectors) + "\n")


if __name__ == "__main__":
    main()
