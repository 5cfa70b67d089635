"""Training callbacks: the trainer calls these hooks and knows nothing of what they do.

Each hook gets the trainer, whose ``model``, ``config``, ``epoch``, ``step`` and
``history`` are readable; a callback may set ``trainer.should_stop = True``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Callable

from aekit.rundir import RunDir

if TYPE_CHECKING:  # pragma: no cover
    from aekit.training.trainer import Trainer


class Callback:
    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", steps: int) -> None: ...
    def on_step_end(self, trainer: "Trainer", loss) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", metrics: dict) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...
    def on_pretrain_epoch_end(self, trainer: "Trainer", stage: str, metrics: dict) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar over the steps of each epoch; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool | None = None, every: int = 25):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.every = every
        self._bar = None

    def on_epoch_start(self, trainer, steps):
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=steps, desc=f"epoch {trainer.epoch}/{trainer.config.epochs}",
                             leave=False, unit="step", file=sys.stderr)

    def on_step_end(self, trainer, loss):
        if self._bar is not None:
            self._bar.update(1)
            if trainer.step % self.every == 0:
                self._bar.set_postfix(loss=f"{float(loss):.4f}")

    def on_epoch_end(self, trainer, metrics):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_fit_end(self, trainer):  # closes a bar left open by an interrupt
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochPrinter(Callback):
    """One line per epoch: train loss, test loss, seconds."""

    def __init__(self, write: Callable[[str], None] = print):
        self.write = write

    def on_epoch_end(self, trainer, metrics):
        width = len(str(trainer.config.epochs))
        self.write(f"epoch {metrics['epoch']:>{width}}/{trainer.config.epochs}  {self._losses(metrics)}")

    def on_pretrain_epoch_end(self, trainer, stage, metrics):
        self.write(f"pretrain {stage} epoch {metrics['epoch']}/{metrics['epochs']}  {self._losses(metrics)}")

    @staticmethod
    def _losses(metrics: dict) -> str:
        return (f"train loss {metrics['train_loss']:.5f}  test loss {metrics['test_loss']:.5f}  "
                f"test mse {metrics['test_mse']:.5f}  {metrics['seconds']:.1f}s")


class MetricsLogger(Callback):
    """Appends one line per epoch to the run's ``metrics.jsonl``."""

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def on_fit_start(self, trainer):
        self.run_dir.reset_metrics()

    def on_epoch_end(self, trainer, metrics):
        self.run_dir.append_metrics(metrics)


class Checkpointer(Callback):
    """Saves ``checkpoint.*`` after every epoch and ``best.*`` when the test loss improves."""

    def __init__(self, run_dir: RunDir, extra_state: dict | None = None):
        self.run_dir = run_dir
        self.extra_state = extra_state or {}
        self.best = float("inf")

    def on_epoch_end(self, trainer, metrics):
        state = {**self.extra_state, "epoch": metrics["epoch"], "metrics": metrics}
        self.run_dir.save_checkpoint("checkpoint", trainer.model, state)
        if metrics["test_loss"] < self.best:
            self.best = metrics["test_loss"]
            self.run_dir.save_checkpoint("best", trainer.model, state)
