"""Training: one loop for every model, callbacks, checkpoints."""

from aekit.training.callbacks import (
    Callback,
    Checkpointer,
    EarlyStopping,
    EpochPrinter,
    LearningCheck,
    MetricsLogger,
    OverfitCheck,
    ProgressBar,
)
from aekit.training.trainer import Trainer, resolve_device

__all__ = ["Callback", "Checkpointer", "EarlyStopping", "EpochPrinter", "LearningCheck", "MetricsLogger",
           "OverfitCheck", "ProgressBar", "Trainer", "resolve_device"]
