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
not timed). The two take turns epoch by epoch (a callback runs a seed-style epoch after
each of aekit's), so both see the machine in the same state.

That state matters on a shared 2-core machine: for minutes at a time the host holds the
second core back, and then two threads run aekit's compute-bound step no faster than one
(0.9 against 0.6 s/epoch of steps with both cores free; the seed-style loop, mostly
single-threaded Python, slows by a fifth). A core check before and after every epoch
times a small training step on all threads against one thread: about 1.55x with both
cores free, about 1.1x while one is held back. The table gives the ratio over the pairs
of epochs whose checks all found every core free, which is what the target is judged on,
and, apart, the ratio over the others.

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


class SeedStyle:
    """The seed tutorials' loop, one epoch per :meth:`epoch`, from the seed aekit's run uses."""

    def __init__(self, data, seed: int):
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(),
                                     nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 12), nn.Tanh(), nn.Linear(12, 64), nn.Tanh(),
                                     nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 784), nn.Sigmoid())
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizer = torch.optim.Adam(params, lr=0.005)
        self.loss_func = nn.MSELoss()
        # Shuffled by a generator seeded as aekit seeds its own, so both loops see the same
        # batches in the same order: what differs is the input pipeline, not the luck of the draw.
        self.loader = torch.utils.data.DataLoader(PILImageDataset(data.x_train, data.y_train), batch_size=64,
                                                  shuffle=True, generator=torch.Generator().manual_seed(seed))
        self.x_test = data.x_test

    def epoch(self) -> float:
        """One pass over the training set; its seconds."""
        start = time.perf_counter()
        for x, _label in self.loader:
            b_x = x.view(-1, 28 * 28)
            loss = self.loss_func(self.decoder(self.encoder(b_x)), b_x)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start

    @torch.no_grad()
    def test_mse(self) -> float:
        x_test = torch.from_numpy(self.x_test).float().div(255).view(-1, 784)
        return float(self.loss_func(self.decoder(self.encoder(x_test)), x_test))


def core_check(steps: int = 60) -> float | None:
    """How many times faster all of torch's threads run a small training step (784-128-784, batch 64,
    fused Adam) than one thread does, now: about 1.55 on this 2-core machine when both cores are free,
    about 1.1 while the host holds the second one back. None with one thread.
    """
    n = torch.get_num_threads()
    if n == 1:
        return None
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 784))
    optimizer = torch.optim.Adam(net.parameters(), fused=True)
    x = torch.rand(64, 784)

    def step():
        loss = (net(x) - x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def per_step(threads: int) -> float:
        torch.set_num_threads(threads)
        for _ in range(5):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - start) / steps

    try:
        return per_step(1) / per_step(n)
    finally:
        torch.set_num_threads(n)


FREE = 1.35  # core_check at or above this: every core was free


def default_preset(dataset: str, epochs: int, seeds: int) -> dict:
    """The default preset by aekit and by the seed-style loop, epoch for epoch in turn, with a core check
    between every two epochs: s/epoch of both, split by whether the checks around a pair of epochs found
    every core free, and the test MSE of both.
    """
    import aekit
    from aekit.training import Callback

    with tempfile.TemporaryDirectory() as tmp:  # warm-up, untimed: first calls into torch are slow
        aekit.train("classic-3d-tanh", dataset="mnist-sample", epochs=1, device="cpu", out=f"{tmp}/warm",
                    verbose=False, progress=False, plots=False)
    from aekit.data import load_dataset

    data = load_dataset(dataset)
    pairs, ours_mse, theirs_mse = [], [], []  # pairs: (aekit s, seed-style s, every core free)

    class InTurn(Callback):
        """After each of aekit's epochs (its seconds are taken before this runs), one seed-style epoch."""

        def __init__(self, seed):
            self.loop, self.checks = SeedStyle(data, seed), []

        def on_fit_start(self, trainer):
            self.checks.append(core_check())

        def on_epoch_end(self, trainer, metrics):
            self.checks.append(core_check())
            seconds = self.loop.epoch()
            self.checks.append(core_check())
            free = all(c is None or c >= FREE for c in self.checks[-3:])
            pairs.append((metrics["seconds"], seconds, free))

    for seed in range(seeds):
        turn = InTurn(seed)
        with tempfile.TemporaryDirectory() as tmp:
            run = aekit.train("classic-3d-tanh", dataset=dataset, epochs=epochs, seed=seed, device="cpu",
                              out=f"{tmp}/run", verbose=False, progress=False, callbacks=[turn])
        ours_mse.append(run.metrics[-1]["test_mse"])
        theirs_mse.append(turn.loop.test_mse())
        mine = pairs[-epochs:]
        print(f"seed {seed}: aekit " + ", ".join(f"{a:.2f}" for a, _, _ in mine) + " s; seed-style "
              + ", ".join(f"{b:.2f}" for _, b, _ in mine) + f" s; test MSE {ours_mse[-1]:.5f} against "
              f"{theirs_mse[-1]:.5f}; core checks " + ", ".join(f"{c:.2f}" for c in turn.checks if c is not None),
              flush=True)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    split = {}
    for free in (True, False):
        chosen = [(a, b) for a, b, f in pairs if f == free]
        if chosen:
            split[free] = (mean([a for a, _ in chosen]), mean([b for _, b in chosen]), len(chosen))
    return {"split": split, "pairs": len(pairs), "aekit_mse": mean(ours_mse), "seed_mse": mean(theirs_mse)}


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
        mse_ok = r["aekit_mse"] <= r["seed_mse"]
        mse = f"test MSE {r['aekit_mse']:.5f} against {r['seed_mse']:.5f}"
        for free in (True, False):
            if free not in r["split"]:
                continue
            a, b, n = r["split"][free]
            ratio = a / b
            what = ("default preset (classic-3d-tanh, batch 64) against the seed-style DataLoader loop, "
                    + ("every core free" if free else "a core held back by the host"))
            rows.append((what, f"{ratio:.2f}x ({a:.2f} against {b:.2f} s/epoch over {n} of {r['pairs']} pairs "
                         f"of epochs; {mse})", f"<= {TARGET_RATIO}x, MSE no worse" if free else "(no target)",
                         ratio <= TARGET_RATIO and mse_ok if free else None))
        if True not in r["split"]:
            rows.append(("default preset against the seed-style loop, every core free",
                         f"no pair of epochs found every core free ({mse})", f"<= {TARGET_RATIO}x", False))
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
        print(f"| {what} | {measured} | {wanted} | {'' if ok is None else 'PASS' if ok else 'FAIL'} |")
    return 0 if all(r[3] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
