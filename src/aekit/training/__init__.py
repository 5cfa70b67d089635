"""Training: one loop for every model, callbacks, checkpoints."""

from aekit.training.callbacks import Callback, Checkpointer, EpochPrinter, LearningCheck, MetricsLogger, ProgressBar
from aekit.training.trainer import Trainer, resolve_device

__all__ = ["Callback", "Checkpointer", "EpochPrinter", "LearningCheck", "MetricsLogger", "ProgressBar", "Trainer",
           "resolve_device"]
