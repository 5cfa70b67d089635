"""What denormal numbers cost a training step on the CPU, and what flushing them to zero saves.

Trains a preset (default ``vae-2d``, fp32) on a dataset (default Fashion-MNIST) for some
epochs with denormals kept, so that the weights and Adam's moments reach the state in which
later epochs run; prints those epochs' seconds. Then it counts the denormal numbers one
training step meets (every layer's output, the gradients, Adam's moments) and times steps
on that trained model in alternating bursts, denormals kept and flushed
(``torch.set_flush_denormal``), so both see the machine in the same state: the ratio holds
on a busy machine where whole epochs do not.

Denormals are the numbers below fp32's smallest normal one (about 1.2e-38); x86 CPUs
handle them in slow microcode unless told to flush them to zero. The setting is per
thread (a thread started later inherits it), so this times one thread.

Usage: python benchmarks/denormals.py [--preset vae-2d] [--epochs 4] [--bursts 16] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import aekit
from aekit.data import load_dataset
from aekit.pixels import to_model
from aekit.training import precision as prec
from aekit.training.optim import make_optimizer

TINY = torch.finfo(torch.float32).tiny


def denormals(t: torch.Tensor) -> int:
    t = t.detach().float()
    return int(((t != 0) & (t.abs() < TINY)).sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="vae-2d")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--bursts", type=int, default=16, help="bursts of 30 steps, alternating kept / flushed")
    args = p.parse_args()
    torch.set_num_threads(1)
    prec.FLUSH_DENORMAL_ON_CPU = False  # train as before issue 19: denormals kept
    with tempfile.TemporaryDirectory() as tmp:
        run = aekit.train(args.preset, dataset=args.dataset, epochs=args.epochs, device="cpu", precision="fp32",
                          out=f"{tmp}/run", verbose=False, progress=False, plots=False)
    print(f"{args.preset} on {args.dataset}, fp32, 1 thread, denormals kept: "
          + ", ".join(f"{m['seconds']:.2f}" for m in run.metrics) + " s/epoch")
    model = run.model.train()
    x = to_model(torch.from_numpy(load_dataset(args.dataset).x_train[:run.config.train.batch_size]), "unit")
    optimizer = make_optimizer(model, run.config.train)
    counts = {"layer outputs": 0}

    def count(module, inputs, output):
        counts["layer outputs"] += denormals(output)

    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Sigmoid, torch.nn.Tanh)
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    out = model(x)
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    for h in hooks:
        h.remove()
    counts["gradients"] = sum(denormals(q.grad) for q in model.parameters())
    counts["Adam's moments"] = sum(denormals(s[k]) for s in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq"))
    counts["weights"] = sum(denormals(q) for q in model.parameters())
    print("denormal numbers in one step: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))

    def step():
        out = model(x)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    times = {False: [], True: []}
    for burst in range(args.bursts):
        flush = bool(burst % 2)
        torch.set_flush_denormal(flush)
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(30):
            step()
        times[flush].append((time.perf_counter() - start) / 30)
    torch.set_flush_denormal(False)
    kept, flushed = statistics.median(times[False]), statistics.median(times[True])
    print(f"\n| {args.preset}, trained {args.epochs} epochs, 1 thread | ms/step, median of {args.bursts // 2} bursts |")
    print(f"|---|---:|\n| denormals kept | {kept * 1e3:.3f} |\n| denormals flushed | {flushed * 1e3:.3f} |")
    print(f"| kept / flushed | {kept / flushed:.2f}x |")


if __name__ == "__main__":
    main()
