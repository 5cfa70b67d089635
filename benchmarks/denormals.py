"""Seconds per epoch with denormal numbers flushed to zero on the CPU, against without.

Trains one preset (default ``vae-2d``) on a dataset (default Fashion-MNIST) in fp32, in
runs that alternate between the two settings in this one process (off, on, off, on, ...),
so both see the machine in the same state; prints every epoch's seconds and the final
test loss of each run. Later epochs are where denormals show: as weights and Adam's
second moments shrink, some products land below fp32's smallest normal number (about
1.2e-38), which x86 CPUs handle in slow microcode unless they are flushed to zero.

Usage: python benchmarks/denormals.py [--preset vae-2d] [--epochs 4] [--pairs 2] [--precision fp32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

import aekit
from aekit.training import precision as prec


def one_run(args, flush: bool, tmp: str, i: int) -> tuple[list[float], float]:
    prec.FLUSH_DENORMAL_ON_CPU = flush  # what the trainer sets at the start of training (and restores after)
    run = aekit.train(args.preset, dataset=args.dataset, epochs=args.epochs, device="cpu", precision=args.precision,
                      out=f"{tmp}/run{i}", verbose=False, progress=False, plots=False)
    return [m["seconds"] for m in run.metrics], run.metrics[-1]["test_loss"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="vae-2d")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--pairs", type=int, default=2, help="runs of each setting, alternating")
    p.add_argument("--precision", default="fp32")
    args = p.parse_args()
    rows = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2 * args.pairs):
            flush = bool(i % 2)
            seconds, loss = one_run(args, flush, tmp, i)
            rows[flush].append(seconds)
            print(f"flush {'on ' if flush else 'off'}: " + ", ".join(f"{s:.2f}" for s in seconds)
                  + f" s/epoch; test loss {loss:.6f}", flush=True)
    print(f"\n{args.preset} on {args.dataset}, {args.precision}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)\n")
    print("| denormals | first epoch, s | later epochs, s (median) |\n|---|---:|---:|")
    for flush in (False, True):
        first = statistics.median(r[0] for r in rows[flush])
        later = statistics.median(s for r in rows[flush] for s in r[1:])
        print(f"| {'flushed' if flush else 'kept'} | {first:.2f} | {later:.2f} |")


if __name__ == "__main__":
    main()
