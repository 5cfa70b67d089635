"""A picture of a run's reconstructions next to PCA's: test images, the run's reconstructions, PCA's.

PCA has as many components as the run's code and is fitted on the run's training images
(the same split). Used for the figures of docs/benchmarks.md#your-own-images.

Usage: python benchmarks/recon_figure.py RUN OUT.png [--n 10] [--title TEXT]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=10, help="test images shown (the first N)")
    p.add_argument("--title", default=None)
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    import aekit
    from aekit.evaluation.metrics import mse

    run = aekit.load_run(args.run)
    data = run.load_data(log=lambda _: None)
    k = run.model.code_size
    x_test = data.x_test[:args.n]  # (n, C, H, W) uint8
    ours = run.reconstruct(x_test)  # (n, C, H, W) in [0, 1]
    flat = data.x_train.reshape(len(data.x_train), -1).astype(np.float32) / 255
    pca = PCA(k, svd_solver="randomized", random_state=0).fit(flat)
    test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    theirs = np.clip(pca.inverse_transform(pca.transform(test)), 0, 1).reshape(x_test.shape)
    truth = x_test.astype(np.float32) / 255
    rows = [("test images", truth), (f"aekit ({k}-D), MSE {mse(truth, ours):.4f}", ours),
            (f"PCA-{k}, MSE {mse(truth, theirs):.4f}", theirs)]
    fig, axes = plt.subplots(3, args.n, figsize=(1.2 * args.n, 4.0))
    for r, (label, images) in enumerate(rows):
        for i in range(args.n):
            ax = axes[r, i]
            img = images[i].transpose(1, 2, 0)  # (H, W, C)
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img[..., :3], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(args.title or f"{run.config.data.dataset}: the first {args.n} test images", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
