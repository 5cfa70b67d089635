"""Seconds per epoch: aekit's loop against the seed tutorials' input pipeline.

Both train the default preset (784-128-64-12-3 tanh, MSE, Adam lr 0.005, batch 64)
on Fashion-MNIST in this one process, from the same seed:

(a) aekit.train: the training set is one uint8 tensor on the device, a batch is an
    index slice scaled there. Its per-epoch seconds also include the full test-set
    evaluation, so the comparison is conservative.
(b) the seed-style loop written out below: a torch DataLoader over a Dataset that
    turns each image into a PIL image, then a float tensor (what torchvision's
    ToTensor does), batch 64, shuffled, then the same model and optimiser.

Both start from the same initial weights and see the same batches in the same order;
aekit runs with its defaults (snapshots during training included, pictures at the end
not timed).

It also runs the other speed targets of the release and prints them all in one table
with the machine's name and thread count: the ``vae-2d`` network against pythae
(``benchmarks/peers.py``) and ``conv-16`` (``benchmarks/conv_body.py``).

Usage: python benchmarks/speed.py [--epochs 3] [--seeds 3] [--dataset fashion-mnist] [--only default,peers,conv]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

TARGET_RATIO = 0.35  # aekit's time per epoch over the seed-style loop's


class PILImageDataset(torch.utils.data.Dataset):
    """The seeds' path: uint8 array -> PIL image -> float tensor in [0,1], one sample at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels  # (N, 1, 28, 28) uint8

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i, 0], mode="L")
        # torchvision.transforms.ToTensor, written out: HWC uint8 -> CHW float / 255
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1)
        return x.float().div(255), int(self.labels[i])


def seed_style(data, epochs: int, seed: int) -> tuple[list[float], float]:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(),
                            nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, 3))
    decoder = nn.Sequential(nn.Linear(3, 12), nn.Tanh(), nn.Linear(12, 64), nn.Tanh(),
                            nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 784), nn.Sigmoid())
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=0.005)
    loss_func = nn.MSELoss()
    # Shuffled by a generator seeded as aekit seeds its own, so both loops see the same
    # batches in the same order: what differs is the input pipeline, not the luck of the draw.
    loader = torch.utils.data.DataLoader(PILImageDataset(data.x_train, data.y_train), batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, _label in loader:
            b_x = x.view(-1, 28 * 28)
            loss = loss_func(decoder(encoder(b_x)), b_x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        x_test = torch.from_numpy(data.x_test).float().div(255).view(-1, 784)
        test_mse = float(loss_func(decoder(encoder(x_test)), x_test))
    return times, test_mse


def default_preset(dataset: str, epochs: int, seeds: int) -> dict:
    """The default preset by aekit and by the seed-style loop, alternating over seeds: s/epoch and test MSE."""
    import aekit

    with tempfile.TemporaryDirectory() as tmp:  # warm-up, untimed: first calls into torch are slow
        aekit.train("classic-3d-tanh", dataset="mnist-sample", epochs=1, device="cpu", out=f"{tmp}/warm",
                    verbose=False, progress=False, plots=False)
    from aekit.data import load_dataset

    data = load_dataset(dataset)
    ours, ours_mse, theirs, theirs_mse = [], [], [], []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            run = aekit.train("classic-3d-tanh", dataset=dataset, epochs=epochs, seed=seed,
                              device="cpu", out=f"{tmp}/run", verbose=False, progress=False)
        ours += [m["seconds"] for m in run.metrics]
        ours_mse.append(run.metrics[-1]["test_mse"])
        times, mse = seed_style(data, epochs, seed)
        theirs += times
        theirs_mse.append(mse)
        print(f"seed {seed}: aekit {sum(ours[-epochs:]) / epochs:.2f} s/epoch, test MSE {ours_mse[-1]:.5f}; "
              f"seed-style {sum(times) / epochs:.2f} s/epoch, test MSE {mse:.5f}", flush=True)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"aekit": mean(ours), "seed": mean(theirs), "aekit_mse": mean(ours_mse), "seed_mse": mean(theirs_mse)}


def machine() -> str:
    import platform

    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


def main() -> int:
    sys.path.insert(0, os.path.dirname(__file__))
    import conv_body
    import peers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs of the default-preset and pythae comparisons")
    p.add_argument("--seeds", type=int, default=3, help="repeats (seeds 0..N-1) of every comparison")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--only", default="default,peers,conv", help="which of default, peers, conv to run")
    args = p.parse_args()
    parts = args.only.split(",")
    rows = []
    if "default" in parts:
        r = default_preset(args.dataset, args.epochs, args.seeds)
        ratio = r["aekit"] / r["seed"]
        rows.append(("default preset (classic-3d-tanh, batch 64) against the seed-style DataLoader loop",
                     f"{ratio:.2f}x ({r['aekit']:.2f} against {r['seed']:.2f} s/epoch; test MSE {r['aekit_mse']:.5f} "
                     f"against {r['seed_mse']:.5f})", f"<= {TARGET_RATIO}x, MSE no worse",
                     ratio <= TARGET_RATIO and r["aekit_mse"] <= r["seed_mse"]))
    if "peers" in parts:
        r = peers.measure(epochs=args.epochs, repeats=args.seeds, dataset=args.dataset)
        a, b = r["rows"]["aekit"], r["rows"]["pythae"]
        rows.append(("vae-2d network against pythae 0.1.2's TrainingPipeline",
                     f"{r['ratio']:.2f}x ({a[0]:.2f} against {b[0]:.2f} s/epoch; test -ELBO {a[2]:.2f} against "
                     f"{b[2]:.2f} nats)", f"<= {peers.TARGET_RATIO}x, loss equal or better",
                     r["fast"] and r["loss_ok"]))
    if "conv" in parts:
        found, _ = conv_body.measure(["conv-16"], list(conv_body.DECODERS), args.dataset, 10, max(1, args.seeds - 1))
        by = {row[1]: row for row in found}
        before, now = by["refine"], by["subpixel"]
        rows.append(("conv-16: seconds per epoch (test evaluation included)", f"{now[3]:.2f} s",
                     f"<= {conv_body.TARGET_SECONDS:g} s", now[3] <= conv_body.TARGET_SECONDS))
        rows.append(("conv-16: test MSE after 10 epochs, against the preset before this release",
                     f"{now[4]:.5f} against {before[4]:.5f}", "no worse", now[4] <= before[4]))
    print(f"\n{machine()}; {args.dataset}\n")
    print("| target | measured | wanted | |\n|---|---|---|---|")
    for what, measured, wanted, ok in rows:
        print(f"| {what} | {measured} | {wanted} | {'PASS' if ok else 'FAIL'} |")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
