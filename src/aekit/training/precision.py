"""The arithmetic of a run: fp32, or bf16 / fp16 autocast (fp16 with a gradient scaler).

Under autocast the matrix products and convolutions run in the low precision while
losses, reductions and the optimiser's update stay in fp32 (the model base computes
the reconstruction loss in fp32 itself). ``auto`` picks bf16 only where the hardware
runs it natively *and* :data:`BF16_HOLDS_QUALITY` records that every preset's test loss
stayed within 1% of fp32 (``benchmarks/precision.py`` measures it); otherwise fp32.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from aekit.errors import ConfigError

# Set from the evidence of benchmarks/precision.py (every preset, 3 seeds each, bf16 against fp32).
BF16_HOLDS_QUALITY = False


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


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for the ``train.precision`` setting ``name`` on ``device``."""
    if name == "auto":
        return "bf16" if BF16_HOLDS_QUALITY and native_bf16(device) else "fp32"
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
