"""The optimiser: torch's Adam, fused where this torch has the fused kernel for the parameters' device.

Public API only: ``torch.optim.Adam(fused=True)`` (CUDA since torch 2.0, the CPU since 2.4),
and plain Adam where the fused kernel is missing. The fused kernel updates every parameter
in one call, and takes a skipped step's flag on the device, so a step that
``--on-nan skip`` or fp16's gradient scaler skips needs no host sync
(:class:`aekit.training.precision.Precision`). Before issue 19 aekit called that kernel
itself on the CPU (``benchmarks/lean_adam.py``): the same numbers, bit for bit, a few per cent
faster on the seed presets' small steps (docs/benchmarks.md).
"""

from __future__ import annotations

import torch

from aekit.config import TrainConfig


def make_optimizer(module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam over ``module``'s parameters (or AdamW with ``cfg.optimizer``), fused where this torch and device
    have the kernel.
    """
    params = list(module.parameters())
    if cfg.optimizer == "adamw":  # decoupled weight decay (Loshchilov & Hutter 2019): torch's own AdamW
        try:
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # older torch, or a device without a fused Adam
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
