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

Usage: python benchmarks/speed.py [--epochs 3] [--seeds 3] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch import nn


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


def main() -> None:
    import aekit
    from aekit.data import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--seeds", type=int, default=3, help="repeat both with seeds 0..N-1 and average; "
                   "a 3-D code's final MSE varies from seed to seed more than between the two loops")
    args = p.parse_args()

    data = load_dataset(args.dataset)
    print(f"dataset {data.name} ({data.origin}): {len(data.x_train)} train / {len(data.x_test)} test; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.epochs} epochs x {args.seeds} seeds")
    with tempfile.TemporaryDirectory() as tmp:  # warm-up, untimed: first calls into torch are slow
        aekit.train("classic-3d-tanh", dataset="mnist-sample", epochs=1, device="cpu", out=f"{tmp}/warm",
                    verbose=False, progress=False, plots=False)
    ours, ours_mse, theirs, theirs_mse = [], [], [], []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            run = aekit.train("classic-3d-tanh", dataset=args.dataset, epochs=args.epochs, seed=seed,
                              device="cpu", out=f"{tmp}/run", verbose=False, progress=False)
        ours += [m["seconds"] for m in run.metrics]
        ours_mse.append(run.metrics[-1]["test_mse"])
        times, mse = seed_style(data, args.epochs, seed)
        theirs += times
        theirs_mse.append(mse)
        print(f"seed {seed}: aekit {sum(ours[-args.epochs:]) / args.epochs:.2f} s/epoch, test MSE {ours_mse[-1]:.5f}; "
              f"seed-style {sum(times) / args.epochs:.2f} s/epoch, test MSE {mse:.5f}")

    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print(f"\n{'mean over seeds':24}{'s/epoch':>10}{'test MSE':>11}")
    print(f"{'aekit':24}{mean(ours):>10.2f}{mean(ours_mse):>11.5f}")
    print(f"{'seed-style DataLoader':24}{mean(theirs):>10.2f}{mean(theirs_mse):>11.5f}")
    ratio = mean(ours) / mean(theirs)
    print(f"time ratio aekit/seed-style: {ratio:.3f} (target <= 0.45): {'PASS' if ratio <= 0.45 else 'FAIL'}")
    print(f"mean test MSE no worse: {'PASS' if mean(ours_mse) <= mean(theirs_mse) else 'FAIL'}")


if __name__ == "__main__":
    main()
