"""Where an MLP preset's training step spends its time, and what each change to the loop would save.

A hand-written copy of the trainer's step before the rewrite (an index slice of the uint8
training set scaled by ``aekit.pixels.to_model``, the model's forward and loss,
``zero_grad(set_to_none=True)``, backward, torch's fused Adam, the detached loss terms kept
per step) runs next to the trainer's step now (the plain MLP's gradients written out,
torch's public fused Adam, one gather per epoch; on models without hand-written gradients that row
is left out) and variants that change one thing each: bf16 autocast around the
forward and loss, the thread count, Adam's implementation, the training set scaled to
float32 once, one permutation of the whole set per epoch (contiguous slices), no per-step
bookkeeping, ``torch.compile``. The variants run in alternating bursts of steps, so all
see the same load; each row is the median time of a step, and "s/epoch" that times the
steps of an epoch (training only). Then the step is cut into its parts, timed one by one
(CPU ops run synchronously), and the per-epoch evaluation of the test set is timed in
fp32, under ``inference_mode`` and in bf16.

The findings and what they mean for the trainer are in benchmarks/notes-step-profile.md.

Usage: python benchmarks/step_profile.py [--preset classic-3d-tanh] [--threads 2]
       [--bursts 10] [--burst 20] [--no-compile] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from lean_adam import LeanAdam  # the private-kernel Adam of before issue 19, kept here for comparison

from aekit.data import load_dataset
from aekit.models import create_model
from aekit.pixels import to_model
from aekit.resolve import build_config

VARIANTS = {  # name -> what differs from the autograd step (the trainer's before the rewrite)
    "autograd step, torch's fused Adam (fp32)": {},
    "the trainer's step now: gradients by hand, public fused Adam, permuted once": {"by_hand": True,
                                                                                   "permute_once": True},
    "the trainer's step before issue 19: the same with LeanAdam's private kernel call": {
        "by_hand": True, "optimizer": "lean", "permute_once": True},
    "gradients by hand (models/dense.py)": {"by_hand": True},
    "lean Adam (benchmarks/lean_adam.py)": {"optimizer": "lean"},
    "bf16 autocast": {"bf16": True},
    "1 thread": {"threads": 1},
    "2 threads": {"threads": 2},
    "foreach Adam (not fused)": {"optimizer": "foreach"},
    "zero_grad(set_to_none=False)": {"keep_grads": True},
    "no per-step loss bookkeeping": {"no_terms": True},
    "training set scaled to float32 once": {"prescale": True},
    "one permutation per epoch, contiguous slices": {"permute_once": True},
    "permuted once + scaled once": {"permute_once": True, "prescale": True},
    "bf16 + permuted once + scaled once": {"bf16": True, "permute_once": True, "prescale": True},
    "torch.compile (default mode)": {"compile": True},
    "batch of 1 (the fixed cost of a step)": {"batch": 1},
}


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def make_step(cfg, x_u8: torch.Tensor, x_f32: torch.Tensor, v: dict, threads: int):
    """One variant's training step as a closure over its own model, optimiser and batch position."""
    torch.manual_seed(0)
    model = create_model(cfg.model, tuple(x_u8.shape[1:]))
    kind = v.get("optimizer", "fused")
    adam = LeanAdam if kind == "lean" else torch.optim.Adam
    flags = {"foreach": True} if kind == "foreach" else {"fused": True}
    optimizer = adam(model.parameters(), lr=cfg.train.lr, **flags)
    by_hand = model.gradient_function() if v.get("by_hand") else None
    if v.get("by_hand") and by_hand is None:
        return None, threads  # this model has no hand-written gradients
    forward = torch.compile(model) if v.get("compile") else model
    batch = v.get("batch", cfg.train.batch_size)
    n = len(x_u8)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    source = x_f32 if v.get("prescale") else x_u8
    shuffled = source[perm] if v.get("permute_once") else None  # one gather per epoch
    hook = getattr(model, "on_train_step", None)
    state = {"k": 0, "terms": []}

    def step():
        i = (state["k"] * batch) % (n - batch)
        state["k"] += 1
        if hook is not None:
            hook(i / n)
        x = shuffled[i:i + batch] if shuffled is not None else source[perm[i:i + batch]]  # (B, C, H, W)
        if not v.get("prescale"):
            x = to_model(x, "unit")
        if by_hand is not None:
            out = by_hand(x)
        else:
            with autocast(v.get("bf16", False)):
                out = forward(x)
            optimizer.zero_grad(set_to_none=not v.get("keep_grads"))
            out.loss.backward()
        optimizer.step()
        if not v.get("no_terms"):
            state["terms"].append((out.loss.detach() * len(x), out.recon_loss.detach() * len(x),
                                   out.reg_loss.detach() * len(x)))

    return step, v.get("threads", threads)


def time_variants(cfg, x_u8, x_f32, names, args) -> dict[str, float]:
    steps = {}
    for name in names:
        step, threads = make_step(cfg, x_u8, x_f32, VARIANTS[name], args.threads)
        if step is None:
            continue
        torch.set_num_threads(threads)
        step()  # builds (and for torch.compile, compiles)
        steps[name] = (step, threads)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for burst in range(args.bursts + 1):  # the first burst warms up
        for name, (step, threads) in steps.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            for _ in range(args.burst):
                step()
            if burst:
                times[name].append((time.perf_counter() - start) / args.burst)
    torch.set_num_threads(args.threads)
    return {name: statistics.median(ts) for name, ts in times.items()}


def time_parts(cfg, x_u8, bf16: bool, n_steps: int = 200) -> dict[str, float]:
    """Median milliseconds per step of each part of the trainer's step."""
    torch.manual_seed(0)
    model = create_model(cfg.model, tuple(x_u8.shape[1:]))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, fused=True)
    batch = cfg.train.batch_size
    perm = torch.randperm(len(x_u8), generator=torch.Generator().manual_seed(0))
    parts: dict[str, list[float]] = {k: [] for k in ("slice + scale", "forward + loss", "zero_grad", "backward",
                                                     "optimizer", "bookkeeping")}
    clock = time.perf_counter
    for k in range(n_steps + 20):
        i = (k * batch) % (len(x_u8) - batch)
        t0 = clock()
        x = to_model(x_u8[perm[i:i + batch]], "unit")
        t1 = clock()
        with autocast(bf16):
            out = model(x)
        t2 = clock()
        optimizer.zero_grad(set_to_none=True)
        t3 = clock()
        out.loss.backward()
        t4 = clock()
        optimizer.step()
        t5 = clock()
        _ = (out.loss.detach() * len(x), out.recon_loss.detach() * len(x), out.reg_loss.detach() * len(x))
        t6 = clock()
        if k >= 20:
            for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                parts[key].append(dt * 1e3)
    return {k: statistics.median(v) for k, v in parts.items()}


def time_evaluation(cfg, x_test: torch.Tensor, repeats: int = 5) -> dict[str, float]:
    """Seconds for the trainer's per-epoch evaluation of the test set, three ways."""
    torch.manual_seed(0)
    model = create_model(cfg.model, tuple(x_test.shape[1:])).eval()
    ways = {"fp32, no_grad": (torch.no_grad, False), "fp32, inference_mode": (torch.inference_mode, False),
            "bf16 autocast, no_grad": (torch.no_grad, True)}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(repeats + 1):
        for name, (grad_mode, bf16) in ways.items():
            start = time.perf_counter()
            with grad_mode(), autocast(bf16):
                sums = torch.zeros(4)
                for i in range(0, len(x_test), 1000):
                    x = to_model(x_test[i:i + 1000], "unit")
                    out = model(x)
                    mse = torch.mean((out.recon_x.float() - x) ** 2)
                    sums += torch.stack([out.loss.float(), out.recon_loss.float(), out.reg_loss.float(), mse]) * len(x)
                sums.tolist()
            if r:
                times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="classic-3d-tanh", help="an MLP preset (vae-2d runs without its KL warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bursts", type=int, default=10)
    p.add_argument("--burst", type=int, default=20, help="steps per burst")
    p.add_argument("--no-compile", action="store_true", help="leave out torch.compile (its compile takes a while)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--only", default="", help="comma-separated numbers of the variants to time (1: the autograd "
                   "step, always kept as the base; 2: the trainer's step; 3: the step before issue 19) and no parts")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, **({"kl_warmup_epochs": 0.0} if args.preset == "vae-2d" else {}))
    data = load_dataset(args.dataset)
    x_u8, x_test = torch.from_numpy(data.x_train), torch.from_numpy(data.x_test)
    x_f32 = to_model(x_u8, "unit")
    steps_per_epoch = -(-len(x_u8) // cfg.train.batch_size)
    names = [n for n in VARIANTS if not (args.no_compile and VARIANTS[n].get("compile"))]
    if args.only:
        keep = {1, *(int(i) for i in args.only.split(","))}
        names = [n for i, n in enumerate(VARIANTS, 1) if i in keep and n in names]
    print(f"{args.preset} on {data.name}: batch {cfg.train.batch_size}, {steps_per_epoch} steps/epoch; "
          f"torch {torch.__version__}, {args.threads} threads; {args.bursts} bursts of {args.burst} steps per variant")

    times = time_variants(cfg, x_u8, x_f32, names, args)
    base = times[names[0]]
    print(f"\n| {args.preset}, {args.threads} threads | ms/step | s/epoch (steps only) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, t in times.items():
        print(f"| {name} | {t * 1e3:.3f} | {t * steps_per_epoch:.2f} | {base / t:.2f}x |")
    for bf16 in (False, True) if not args.only else ():
        parts = time_parts(cfg, x_u8, bf16)
        total = sum(parts.values())
        print(f"\nparts of the step, {'bf16' if bf16 else 'fp32'} (ms, median; sum {total:.3f}): "
              + ", ".join(f"{k} {v:.3f} ({v / total:.0%})" for k, v in parts.items()))
    if args.only:
        return
    evaluation = time_evaluation(cfg, x_test)
    print("\nevaluation of the test set (s, median): " + ", ".join(f"{k} {v:.3f}" for k, v in evaluation.items()))


if __name__ == "__main__":
    main()
