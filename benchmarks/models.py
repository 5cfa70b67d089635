"""Test MSE and seconds per epoch of every model at code sizes 2, 10 and 32, next to PCA.

Each model trains through ``aekit.train`` on Fashion-MNIST (60,000 train / 10,000 test,
pixels in [0,1]) with the settings in ``SETTINGS`` below, on the CPU, from seed 0.
"test MSE" is the mean squared error per pixel on the 10,000 test images after the
last epoch, in eval mode (no corruption, the VAE's mean code); PCA's is
scikit-learn's ``PCA(k)`` fitted on the training images. "s/epoch" is the mean
wall-clock time of a training epoch including the test-set evaluation; for
``stacked`` the greedy pre-training (1 epoch per layer) comes on top of it and is
in the "total s" column, which is the whole ``aekit.train`` call.

The whole default run takes about 17 minutes with one thread on a busy 2-core machine
(the MLP models take 2-3 seconds an epoch; contractive, with one backward pass per
code unit, and conv take far more, so they get fewer epochs or a narrower body).

Usage: python benchmarks/models.py [--models conv,vae] [--sizes 2,10,32] [--epochs N]
       [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import torch

MLP = {"hidden": [256], "activation": "relu", "latent_activation": "linear", "output_activation": "sigmoid"}

# model -> (fields, epochs). Adam lr 1e-3 and batch 128 unless a model says otherwise.
SETTINGS: dict[str, tuple[dict, int]] = {
    "mlp": ({**MLP}, 10),
    "linear": ({"hidden": [], "lr": 0.003}, 20),
    "stacked": ({**MLP, "pretrain_epochs": 1}, 10),
    "denoising": ({**MLP, "noise": "gaussian", "noise_level": 0.3}, 10),
    "sparse": ({**MLP, "sparsity": "l1"}, 10),
    "contractive": ({**MLP, "contraction_weight": 0.1}, 3),
    "vae": ({**MLP, "loss": "bce", "beta": 1.0}, 10),
    # (16, 32) channels reach a lower test MSE per second than the default (32, 64): at k=10 and
    # lr 0.002, 0.0135 after 8 epochs in 150 s against 0.0143 after 4 epochs in 175 s (measured
    # before the body had its group norms, which changed the error per epoch very little)
    "conv": ({"channels": [16, 32], "activation": "relu", "latent_activation": "linear",
              "output_activation": "sigmoid", "lr": 0.002}, 8),
}


def pca_rows(data, sizes: list[int]) -> dict[int, tuple[float, float]]:
    from sklearn.decomposition import PCA

    x_train = data.x_train.reshape(len(data.x_train), -1).astype(np.float32) / 255
    x_test = data.x_test.reshape(len(data.x_test), -1).astype(np.float32) / 255
    out = {}
    for k in sizes:
        start = time.perf_counter()
        pca = PCA(k, random_state=0).fit(x_train)
        seconds = time.perf_counter() - start
        out[k] = (float(np.mean((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2)), seconds)
    return out


def train_one(model: str, k: int, dataset: str, epochs: int | None) -> tuple[float, float, float, int]:
    import aekit

    fields, default_epochs = SETTINGS[model]
    fields = {"lr": 0.001, "batch_size": 128, "loss": "mse", **fields}
    epochs = epochs or default_epochs
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = aekit.train(dataset=dataset, model=model, latent_dim=k, epochs=epochs, seed=0, device="cpu",
                          out=f"{tmp}/run", verbose=False, progress=False, **fields)
    total = time.perf_counter() - start
    per_epoch = sum(m["seconds"] for m in run.metrics) / len(run.metrics)
    return run.metrics[-1]["test_mse"], per_epoch, total, epochs


def main() -> int:
    from aekit.data import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(SETTINGS), help="comma-separated [default: all]")
    p.add_argument("--sizes", default="2,10,32", help="code sizes [default: 2,10,32]")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model [default: per model, "
                   "see SETTINGS]")
    p.add_argument("--dataset", default="fashion-mnist")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in SETTINGS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    sizes = [int(s) for s in args.sizes.split(",")]

    data = load_dataset(args.dataset)
    print(f"dataset {data.name} ({data.origin}): {len(data.x_train)} train / {len(data.x_test)} test; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    pca = pca_rows(data, sizes)
    results: dict[str, dict[int, tuple[float, float, float, int]]] = {}
    for model in models:
        results[model] = {}
        for k in sizes:
            results[model][k] = train_one(model, k, args.dataset, args.epochs)
            mse, sec, total, epochs = results[model][k]
            print(f"{model} k={k}: test MSE {mse:.5f} (PCA {pca[k][0]:.5f}), {sec:.1f} s/epoch, "
                  f"{total:.0f} s total, {epochs} epochs", file=sys.stderr, flush=True)

    head = " | ".join(f"MSE k={k}" for k in sizes)
    secs = " | ".join(f"s/epoch k={k}" for k in sizes)
    print(f"| model | epochs | {head} | {secs} | total s |")
    print("|---|---:|" + "---:|" * (2 * len(sizes) + 1))
    print(f"| PCA (scikit-learn) | - | {' | '.join(f'{pca[k][0]:.4f}' for k in sizes)} | "
          f"{' | '.join(f'{pca[k][1]:.1f} (fit)' for k in sizes)} | {sum(v[1] for v in pca.values()):.0f} |")
    for model, row in results.items():
        mses = " | ".join(f"**{row[k][0]:.4f}**" if row[k][0] < pca[k][0] else f"{row[k][0]:.4f}" for k in sizes)
        print(f"| {model} | {row[sizes[0]][3]} | {mses} | {' | '.join(f'{row[k][1]:.1f}' for k in sizes)} | "
              f"{sum(row[k][2] for k in sizes):.0f} |")
    print("\nbold: lower test MSE than PCA at the same code size")
    if "conv" in results:
        beaten = all(results["conv"][k][0] < pca[k][0] for k in sizes)
        print(f"conv beats PCA at every code size: {'PASS' if beaten else 'FAIL'}")
        return 0 if beaten else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
