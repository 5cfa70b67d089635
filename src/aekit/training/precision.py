"""The arithmetic of a run: fp32, or bf16 / fp16 autocast (fp16 with a gradient scaler).

Under autocast the matrix products and convolutions run in the low precision while
losses, reductions and the optimiser's update stay in fp32 (the model base computes
the reconstruction loss in fp32 itself). ``auto`` picks bf16 only where

- the hardware runs it natively (:func:`native_bf16`),
- the model does enough arithmetic per image for bf16 to pay: at least
  :data:`AUTO_BF16_MIN_MACS` multiply-adds (below that the casts often cost more than the
  faster products save, and the seed presets, all below it, keep their tutorials'
  figures), and
- :data:`BF16_HOLDS_QUALITY` records that every preset of that size kept its test loss
  within 1% of fp32's (a mean over 3 seeds);

otherwise fp32. ``benchmarks/precision.py`` prints the evidence: every preset's test loss
and seconds per epoch in both precisions, and both verdicts.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from aekit.errors import ConfigError

# Set from the evidence of benchmarks/precision.py (every preset, 3 seeds each, bf16 against fp32): its
# second verdict, on the presets of at least AUTO_BF16_MIN_MACS multiply-adds per image.
BF16_HOLDS_QUALITY = True
AUTO_BF16_MIN_MACS = 1_000_000  # per image, forward: between the MLP presets' (< 0.5 M) and vae-2d's (1.1 M)


@functools.lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def multiply_adds(model: torch.nn.Module) -> int:
    """Multiply-adds of one image's forward pass through the model's linear and convolution layers."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, torch.nn.Conv2d):
            total += output[0].numel() * module.in_channels * module.weight[0, 0].numel() // module.groups
        elif isinstance(module, torch.nn.ConvTranspose2d):
            total += inputs[0][0].numel() * module.out_channels * module.weight[0, 0].numel() // module.groups

    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, *model.input_shape, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total


def resolve_precision(name: str, device: torch.device, model: torch.nn.Module | None = None) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for the ``train.precision`` setting ``name`` on ``device``."""
    if name == "auto":
        big = model is None or multiply_adds(model) >= AUTO_BF16_MIN_MACS
        return "bf16" if BF16_HOLDS_QUALITY and native_bf16(device) and big else "fp32"
    if name == "fp16" and device.type == "mps":
        raise ConfigError("train.precision: fp16 autocast is not supported on mps; use fp32 or bf16")
    return name


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device):
    """A context for the forward pass: autocast to ``precision``, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def make_scaler(precision: str, device: torch.device):
    """A gradient scaler for fp16 (whose small range underflows small gradients), else ``None``."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
