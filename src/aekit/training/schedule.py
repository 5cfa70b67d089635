"""How long a run trains and its learning rate at each step: pure functions of the step.

Because the learning rate is a function of the step alone (and of the config), a resumed
run needs no state for it: the trainer sets it again from ``trainer.step`` before each
optimiser step, and the numbers are those of a run never stopped.
"""

from __future__ import annotations

import math

from aekit.config import TrainConfig


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one pass over ``n`` images (the last batch may be smaller)."""
    return max(1, -(-n // batch_size))


def planned_epochs(config: TrainConfig, n: int) -> int:
    """``config.epochs``, or with a ``steps`` budget, the whole epochs that reach it."""
    if not config.steps:
        return config.epochs
    return max(1, -(-config.steps // steps_per_epoch(n, config.batch_size)))


def lr_at(config: TrainConfig, step: int, total: int) -> float:
    """The learning rate of optimiser step ``step`` (0 for the first) of ``total``.

    A linear warm-up from ``lr / warmup_steps`` to ``lr`` over the first ``warmup_steps``,
    then either ``lr`` (constant) or a half cosine from ``lr`` to zero at ``total`` (SGDR
    without restarts, Loshchilov & Hutter 2017).
    """
    lr, warm = config.lr, config.warmup_steps
    if step < warm:
        return lr * (step + 1) / warm
    if config.lr_schedule == "constant":
        return lr
    span = max(1, total - warm)
    progress = min(1.0, (step - warm) / span)
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def scheduled(config: TrainConfig) -> bool:
    """Whether the learning rate changes during the run (a constant one is left as the optimiser has it)."""
    return config.lr_schedule != "constant" or config.warmup_steps > 0
