"""Your own images, done well: aekit's recommended default against PCA on real sets, with no tuning.

For each set and code size, trains what ``aekit train --dataset SET [--image-size N]
--latent-dim K`` trains (no other flag: for every set here that is the ``auto`` preset,
:mod:`aekit.training.budget`), on the CPU, and prints a Markdown row: test MSE and SSIM
of the best weights (chosen on the validation split), the kNN accuracy of the codes
(k=5, where the set is labelled), the same three for PCA with the same number of
components fitted on the same training images, the ratio of the two MSEs, the steps
taken and the wall time of training.

Sets: ``fashion-mnist`` (28x28 grey), ``cifar10`` (32x32 colour, from an npz with
``x_train``/``y_train``/``x_test``/``y_test``: ``--cifar``, default /work/data/cifar10.npz),
``stellarium`` and ``stamps`` (the Debian photo and stamp folders, DEVELOPERS.md, at
64x64; the stamps' alpha is composited on white).

``--quick`` trains on at most 10,000 training and 2,000 test images of a large set (a
seeded subset written to a temporary npz) and keeps the auto budget otherwise; ``--steps``
overrides the budget (then the run has one flag more than the default: say so).

Usage: python benchmarks/own_images.py [--sets cifar10,stellarium] [--codes 16,64] [--quick] [--steps N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HOME = Path.home() / ".cache" / "aekit-testdata"
SETS = {  # name: (dataset, image size)
    "fashion-mnist": ("fashion-mnist", None),
    "cifar10": (None, None),  # the --cifar npz
    "stellarium": (str(HOME / "stellarium-nebulae"), 64),
    "stamps": (str(HOME / "tuxpaint-stamps"), 64),
}
QUICK_TRAIN, QUICK_TEST = 10_000, 2_000


def subset(data, folder: Path, seed: int = 0) -> str:
    """A seeded subset of ``data``'s splits (at most QUICK_TRAIN / QUICK_TEST images) as an npz; its path."""
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.permutation(len(data.x_train))[:QUICK_TRAIN])
    te = np.sort(rng.permutation(len(data.x_test))[:QUICK_TEST])
    path = folder / f"{data.name}-quick.npz"
    arrays = {"x_train": np.asarray(data.x_train[tr]), "x_test": np.asarray(data.x_test[te])}
    if data.labeled:
        arrays.update(y_train=data.y_train[tr], y_test=data.y_test[te])
    else:  # an unlabeled npz is one set: keep the split by giving it as labels of one class
        arrays.update(y_train=np.zeros(len(tr), np.int64), y_test=np.zeros(len(te), np.int64))
    np.savez(path, **arrays)
    return str(path)


def pca_scores(x_train, x_test, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA with ``k`` components fitted on the training images: (test reconstructions, train codes, test codes)."""
    from sklearn.decomposition import PCA

    flat = x_train.reshape(len(x_train), -1).astype(np.float32) / 255
    pca = PCA(k, random_state=0, svd_solver="randomized").fit(flat)
    test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    z_test = pca.transform(test)
    recon = np.clip(pca.inverse_transform(z_test), 0, 1).reshape(x_test.shape)
    return recon, pca.transform(flat), z_test


def one(name: str, dataset: str, size, code: int, steps: int | None, out_root: Path) -> dict:
    import aekit
    from aekit.evaluation.metrics import mse, ssim
    from aekit.evaluation.probes import knn_accuracy

    overrides = {"latent_dim": code, "device": "cpu"}
    if size:
        overrides["image_size"] = size
    if steps:
        overrides["steps"] = steps
    out = out_root / f"{name}-{code}"
    lines: list[str] = []
    start = time.perf_counter()
    aekit.train(dataset=dataset, out=out, plots=False, verbose=False, progress=False, log=lines.append, **overrides)
    seconds = time.perf_counter() - start
    plan = next((ln for ln in lines if ln.startswith("auto:")), "(no auto line)")
    warnings = [ln for ln in lines if ln.startswith("warning") or ln.startswith("early stop")]
    run = aekit.load_run(out, which="best")
    data = run.load_data(log=lambda _: None)
    x_test = data.x_test.astype(np.float32) / 255
    recon = run.reconstruct(data.x_test)
    metrics = run.dir.read_metrics()
    row = {"set": name, "code": code, "mse": mse(x_test, recon), "ssim": ssim(x_test, recon),
           "steps": metrics[-1]["step"], "epochs": len(metrics), "seconds": seconds, "plan": plan,
           "warnings": warnings}
    p_recon, p_train, p_test = pca_scores(data.x_train, data.x_test, code)
    row.update(pca_mse=mse(x_test, p_recon), pca_ssim=ssim(x_test, p_recon))
    if data.labeled and data.num_classes > 1:
        row["knn"] = knn_accuracy(run.encode(data.x_train), data.y_train, run.encode(data.x_test), data.y_test)
        row["pca_knn"] = knn_accuracy(p_train, data.y_train, p_test, data.y_test)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, from: {', '.join(SETS)}")
    parser.add_argument("--codes", default="16,64", help="code sizes, comma-separated")
    parser.add_argument("--quick", action="store_true", help="at most 10,000/2,000 images of a large set")
    parser.add_argument("--steps", type=int, default=None, help="override the auto step budget")
    parser.add_argument("--cifar", default="/work/data/cifar10.npz", help="CIFAR-10 as an npz")
    parser.add_argument("--keep", default=None, help="write the runs here (default: a temporary folder)")
    args = parser.parse_args()
    import torch

    from aekit.data import load_dataset

    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    codes = [int(c) for c in args.codes.split(",")]
    print(f"# own_images: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads{', quick' if args.quick else ''}"
          f"{f', steps {args.steps}' if args.steps else ''}\n")
    print("| set | code | aekit MSE | PCA MSE | ratio | aekit SSIM | PCA SSIM | aekit kNN | PCA kNN | steps "
          "(epochs) | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for name in names:
            dataset, size = SETS[name]
            dataset = dataset or args.cifar
            if args.quick:
                data = load_dataset(dataset, image_size=size, log=lambda _: None)
                if len(data.x_train) > QUICK_TRAIN:
                    dataset, size = subset(data, Path(tmp)), None
            for code in codes:
                r = one(name, dataset, size, code, args.steps, root)
                knn = (f"{r['knn']:.3f} | {r['pca_knn']:.3f}") if "knn" in r else "- | -"
                print(f"| {name} | {code} | {r['mse']:.5f} | {r['pca_mse']:.5f} | {r['mse'] / r['pca_mse']:.2f} | "
                      f"{r['ssim']:.3f} | {r['pca_ssim']:.3f} | {knn} | {r['steps']} ({r['epochs']}) | "
                      f"{r['seconds']:.0f} |", flush=True)
                notes.append(f"- {name} {code}-D: {r['plan']}" + "".join(f"\n  - {w}" for w in r["warnings"]))
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
