"""Seconds per epoch on a CUDA GPU: three workloads, in fp32 and bf16, through ``aekit.train``.

1. the default preset (784-128-64-12-3 tanh, batch 64) on MNIST-sized data;
2. the ``conv-16`` preset (conv AE, 32/64 channels, 16-D code, batch 128) on the same;
3. a 64x64 colour conv AE (channels 32, 64, 128; 64-D code; batch 128) on synthetic
   images (smooth random colour fields: the content does not change the cost).

MNIST-sized data is Fashion-MNIST where it is on disk (60,000 / 10,000), else the
bundled 5,000-digit sample tiled up to 60,000 train / 10,000 test images (a GPU
machine often has no network). Each case trains ``--epochs`` epochs (default 2) with
``device="cuda"`` and no pictures; "first" is epoch 1 (it includes CUDA's start-up
and kernel selection), "warm" the median of the later ones. The seconds are aekit's
own per-epoch figures: the training steps plus the full test-set evaluation, whose
result is read back to the host, so the GPU's queue is drained inside each epoch.

Precision comes from aekit's ``precision`` field (``bf16``: autocast); on a GPU without
bf16 the bf16 rows are skipped and the script says so.

Without a CUDA device the script stops with one line and exit status 2.

Usage: python benchmarks/gpu.py [--epochs 2] [--precisions fp32,bf16] [--cases default,conv-16,color-64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

CASES = {  # name -> (preset, overrides, which data)
    "default": ("classic-3d-tanh", {}, "mnist-sized"),
    "conv-16": ("conv-16", {}, "mnist-sized"),
    "color-64": ("conv-16", {"channels": [32, 64, 128], "latent_dim": 64}, "color-64"),
}
N_TRAIN = {"mnist-sized": 60_000, "color-64": 20_000}


def mnist_sized(tmp: Path) -> str:
    """Fashion-MNIST if it is on disk, else the bundled sample tiled to 60,000 / 10,000 (an .npz path)."""
    from aekit.data import load_dataset
    from aekit.errors import AekitError

    try:
        load_dataset("fashion-mnist", download=False, log=lambda _: None)
        return "fashion-mnist"
    except AekitError:
        sample = load_dataset("mnist-sample")
        reps = lambda x, n: np.resize(x, (n, *x.shape[1:]))  # noqa: E731 - repeats the images up to n
        path = tmp / "mnist-sized.npz"
        np.savez(path, x_train=reps(sample.x_train, 60_000), y_train=np.resize(sample.y_train, 60_000),
                 x_test=reps(sample.x_test, 10_000), y_test=np.resize(sample.y_test, 10_000))
        return str(path)


def color_64(tmp: Path, n_train: int = 20_000, n_test: int = 2_000) -> str:
    """Synthetic 3x64x64 uint8 images: 8x8 random colour fields upsampled bilinearly (an .npz path)."""
    gen = torch.Generator().manual_seed(0)
    n = n_train + n_test
    coarse = torch.rand(n, 3, 8, 8, generator=gen)
    x = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
    x = (x * 255).round().to(torch.uint8).numpy()
    y = np.zeros(n, np.int64)
    path = tmp / "color-64.npz"
    np.savez(path, x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:])
    return str(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2, help="epochs per case (>= 2 gives a warm figure)")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--device", default="cuda", help="cpu runs the same code for a smoke test (slow: use "
                   "--epochs 1 --cases color-64)")
    args = p.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"benchmarks/gpu.py: no CUDA device here (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda or 'none'}); run it on a machine with an NVIDIA GPU", file=sys.stderr)
        return 2
    import aekit

    precisions = args.precisions.split(",")
    if "bf16" in precisions and args.device == "cuda" and not torch.cuda.is_bf16_supported():
        print(f"{torch.cuda.get_device_name()} has no bf16; bf16 rows skipped")
        precisions = [q for q in precisions if q != "bf16"]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = {"mnist-sized": mnist_sized(tmp), "color-64": color_64(tmp)}
        for case in args.cases.split(","):
            preset, overrides, which = CASES[case]
            for precision in precisions:
                run = aekit.train(preset, dataset=data[which], epochs=args.epochs, seed=0, device=args.device,
                                  out=tmp / f"{case}-{precision}", verbose=False, progress=False, plots=False,
                                  precision=precision, **overrides)
                seconds = [m["seconds"] for m in run.metrics]
                warm = statistics.median(seconds[1:]) if len(seconds) > 1 else float("nan")
                rows.append((case, precision, seconds[0], warm, N_TRAIN[which] / warm, run.metrics[-1]["test_mse"]))
                print(f"{case} {precision}: {seconds}", flush=True)

    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        where = f"{torch.cuda.get_device_name()} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        where = f"{args.device}, {torch.get_num_threads()} threads"
    print(f"\n{where}, torch {torch.__version__}; {args.epochs} epochs per case")
    print("\n| case | precision | s/epoch first | s/epoch warm | train images/s (warm) | test MSE |")
    print("|---|---|---:|---:|---:|---:|")
    for case, precision, first, warm, rate, mse in rows:
        warm_text, rate_text = (f"{warm:.2f}", f"{rate:,.0f}") if warm == warm else ("-", "-")  # nan: 1 epoch
        print(f"| {case} | {precision} | {first:.2f} | {warm_text} | {rate_text} | {mse:.5f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
