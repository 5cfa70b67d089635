"""Does bf16 hold the quality? Every preset in fp32 and in bf16 autocast, 3 seeds each.

For each preset it trains the preset as it is (its dataset, model and epochs; ``--epochs``
caps the epochs, ``--dataset`` swaps the data), once per seed and precision, and prints
the mean final test loss of each precision, their relative difference, and the seconds
per epoch, next to each model's multiply-adds per image and what ``precision=auto`` would
pick for it on a bf16 CPU. Two verdicts follow: whether bf16's test loss stays at most 1%
above fp32's for every preset, and for every preset that ``auto`` would run in bf16 (those
of at least ``AUTO_BF16_MIN_MACS`` multiply-adds per image).
``aekit.training.precision.BF16_HOLDS_QUALITY`` records the second: ``auto`` never takes
bf16 for a model the evidence does not cover. A bf16 loss lower than fp32's by more than
1% is reported, not counted against bf16: the question is whether quality is lost.

    python benchmarks/precision.py [--presets a,b] [--seeds 0,1,2] [--epochs N] [--dataset NAME]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

import aekit
from aekit.presets import PRESETS
from aekit.training.precision import AUTO_BF16_MIN_MACS, multiply_adds, native_bf16

LIMIT = 0.01  # bf16's mean test loss may exceed fp32's by at most this, relative


def train(preset: str, precision: str, seed: int, args, tmp: str) -> tuple[float, float, int]:
    overrides = {"epochs": min(args.epochs, PRESETS[preset]["train"]["epochs"])} if args.epochs else {}
    if args.dataset:
        overrides["dataset"] = args.dataset
    run = aekit.train(preset, out=f"{tmp}/{preset}-{precision}-{seed}", precision=precision, seed=seed,
                      device="cpu", plots=False, verbose=False, progress=False, **overrides)
    return run.metrics[-1]["test_loss"], statistics.median(m["seconds"] for m in run.metrics), multiply_adds(run.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="cap on each preset's epochs")
    parser.add_argument("--dataset", default=None, help="train every preset on this instead of its own")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"CPU bf16 native: {native_bf16(torch.device('cpu'))}; {torch.get_num_threads()} threads; "
          f"seeds {seeds}; epochs: {'preset' if not args.epochs else f'at most {args.epochs}'}; "
          f"data: {args.dataset or 'each preset own'}\n")
    print("| preset | multiply-adds/image | auto | fp32 test loss | bf16 test loss | bf16 vs fp32 | fp32 s/epoch | "
          "bf16 s/epoch | speed-up |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    holds = holds_auto = True
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            loss, secs = {}, {}
            for precision in ("fp32", "bf16"):
                results = [train(preset, precision, seed, args, tmp) for seed in seeds]
                loss[precision] = statistics.mean(r[0] for r in results)
                secs[precision] = statistics.median(r[1] for r in results)
            diff = loss["bf16"] / loss["fp32"] - 1
            macs = results[0][2]
            big = macs >= AUTO_BF16_MIN_MACS
            holds &= diff <= LIMIT
            holds_auto &= diff <= LIMIT or not big
            print(f"| {preset} | {macs / 1e6:.2f} M | {'bf16' if big else 'fp32'} "
                  f"| {loss['fp32']:.5f} | {loss['bf16']:.5f} | {diff:+.2%} | {secs['fp32']:.2f} | "
                  f"{secs['bf16']:.2f} | {secs['fp32'] / secs['bf16']:.2f}x |", flush=True)
    print(f"\nbf16 test loss at most {LIMIT:.0%} above fp32 for every preset: {'yes' if holds else 'NO'}")
    print(f"... for every preset auto runs in bf16 (at least {AUTO_BF16_MIN_MACS / 1e6:g} M multiply-adds per "
          f"image): {'yes' if holds_auto else 'NO'} (BF16_HOLDS_QUALITY = {holds_auto})")


if __name__ == "__main__":
    main()
