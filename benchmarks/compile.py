"""Does compiling the training step pay? One model's step, eager and through torch.compile, side by side.

Times ``--steps`` training steps (forward under the precision ``auto`` picks here, backward,
AdamW) of a model on random images of CIFAR-10's shape at the auto plan's batch for it,
eagerly, then compiled (inductor), then eagerly again, in one process, and prints the
median milliseconds per step of each, the compile's own seconds (its first call), and the
ratio of compiled to eager. The auto plan compiles pcamlp's runs (``aekit.training.budget``):
thousands of steps pay for a compile of about half a minute.

    python benchmarks/compile.py [--model pcamlp] [--batch 2048] [--steps 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from aekit.models import create_model
from aekit.training.precision import resolve_precision


def step_times(net, model, x, precision: str, steps: int) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = net(x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pcamlp")
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latent-dim", type=int, default=16)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    model = create_model(args.model, (3, 32, 32), latent_dim=args.latent_dim)
    x = torch.rand(args.batch, 3, 32, 32)
    model.init_from_data(x)
    model.train()
    precision = resolve_precision("auto", torch.device("cpu"), model)
    print(f"# compile: {args.model}, batch {args.batch}, {precision}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    step_times(model, model, x, precision, 3)  # warm up the allocator and the kernels
    eager = step_times(model, model, x, precision, args.steps)
    compiled_net = torch.compile(model)
    start = time.perf_counter()
    step_times(compiled_net, model, x, precision, 1)
    compile_s = time.perf_counter() - start
    step_times(compiled_net, model, x, precision, 2)
    compiled = step_times(compiled_net, model, x, precision, args.steps)
    eager_again = step_times(model, model, x, precision, args.steps)
    ms = {name: 1000 * statistics.median(t) for name, t in
          (("eager", eager), ("compiled", compiled), ("eager again", eager_again))}
    print("| step | ms (median) |\n|---|---|")
    for name, value in ms.items():
        print(f"| {name} | {value:.1f} |")
    base = (ms["eager"] + ms["eager again"]) / 2
    print(f"\ncompile (first call): {compile_s:.1f} s; compiled / eager: {ms['compiled'] / base:.2f}x the time; "
          f"it pays after {compile_s / max(1e-9, (base - ms['compiled']) / 1000):,.0f} steps")


if __name__ == "__main__":
    main()
