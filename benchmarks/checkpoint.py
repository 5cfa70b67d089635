"""What checkpointing costs: seconds per checkpoint, and its share of training time.

Trains a preset (default: the default preset) on Fashion-MNIST for a few epochs, then
times the checkpoint write (the whole training state, as the run writes it: model,
optimiser, RNG states, position; atomic, with fsync) and the best-weights write. It
prints the share of training time at the default interval (one checkpoint every
``train.checkpoint_every`` minutes) and, for comparison, if every epoch ended in one.

Target (issue 9): under 2% of training time at the default interval for the default
preset on Fashion-MNIST.

    python benchmarks/checkpoint.py [--preset classic-3d-tanh] [--epochs 3] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import aekit
from aekit.config import TrainConfig
from aekit.rundir import RunDir
from aekit.training import Callback, Checkpointer


class _Keep(Callback):
    """Keeps the trainer, so its state can be saved again after fit."""

    def on_fit_end(self, trainer):
        self.trainer = trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="classic-3d-tanh")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        keep = _Keep()
        run = aekit.train(args.preset, dataset=args.dataset, epochs=args.epochs, out=f"{tmp}/run", plots=False,
                          verbose=False, progress=False, device="cpu", callbacks=[keep])
        epoch_s = statistics.median(m["seconds"] for m in run.metrics)
        checkpointer = next(cb for cb in keep.trainer.callbacks if isinstance(cb, Checkpointer))
        state_s, best_s = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            checkpointer.save(keep.trainer)
            state_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            RunDir(f"{tmp}/run").save_weights("best", run.model)
            best_s.append(time.perf_counter() - start)
        size = (RunDir(f"{tmp}/run").checkpoint()).stat().st_size
    interval = TrainConfig().checkpoint_every * 60
    one = statistics.median(state_s)
    print(f"{args.preset} on {args.dataset}, {torch.get_num_threads()} threads, median of {args.repeat}:\n")
    print("| what | figure |\n|---|---:|")
    print(f"| training epoch | {epoch_s:.2f} s |")
    print(f"| one checkpoint (full state, {size / 1e6:.1f} MB, atomic + fsync) | {one * 1000:.1f} ms |")
    print(f"| best weights | {statistics.median(best_s) * 1000:.1f} ms |")
    print(f"| share of training time at the default interval ({interval / 60:g} min) | "
          f"{100 * one / interval:.3f}% |")
    print(f"| share if every epoch ended in a checkpoint | {100 * one / epoch_s:.2f}% |")


if __name__ == "__main__":
    main()
