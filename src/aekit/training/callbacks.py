"""Training callbacks: the trainer calls these hooks and knows nothing of what they do.

Each hook gets the trainer, whose ``model``, ``config``, ``phase``, ``epoch``, ``batch``,
``step``, ``history`` and ``resumed`` are readable; a callback may set
``trainer.should_stop = True``. A callback with state worth keeping across a resume
returns it (JSON-able) from ``state_dict`` and takes it back in ``load_state_dict``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from aekit.errors import AekitError
from aekit.rundir import RunDir

if TYPE_CHECKING:  # pragma: no cover
    from aekit.training.trainer import Trainer


class Callback:
    """The hooks, in the order the trainer calls them.

    ``on_step_end`` comes after every optimisation step, pre-training stages included
    (``trainer.phase.main`` tells them apart); the epoch hooks belong to the main run,
    and a stage's epochs reach ``on_pretrain_epoch_end``. ``on_interrupt`` comes when
    Ctrl-C stopped the loop at a step boundary, before :class:`~aekit.errors.Interrupted`
    is raised; ``on_fit_end`` always comes last (``trainer.finished`` says whether the
    loop ran to its end).
    """

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", steps: int) -> None: ...
    def on_step_end(self, trainer: "Trainer", loss) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", metrics: dict) -> None: ...
    def on_pretrain_epoch_end(self, trainer: "Trainer", stage: str, metrics: dict) -> None: ...
    def on_interrupt(self, trainer: "Trainer") -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar over the steps of each epoch; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool | None = None, every: int = 25):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.every = every
        self._bar = None

    def on_epoch_start(self, trainer, steps):
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=steps, initial=trainer.batch, desc=f"epoch {trainer.epoch}/{trainer.config.epochs}",
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


BASE_METRICS = ("loss", "recon_loss", "reg_loss", "mse")  # each split's keys that are not a named term


def named_terms(metrics: dict, split: str) -> dict[str, float]:
    """The named loss terms in a metrics line, but ``recon``: ``{"kl": ...}`` from ``train_kl``."""
    prefix = f"{split}_"
    skip = {f"{prefix}{k}" for k in BASE_METRICS}
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix) and k not in skip}


class EpochPrinter(Callback):
    """One line per epoch: train loss, test loss and its terms (where the model has more than one), seconds."""

    def __init__(self, write: Callable[[str], None] = print):
        self.write = write

    def on_epoch_end(self, trainer, metrics):
        width = len(str(trainer.config.epochs))
        self.write(f"epoch {metrics['epoch']:>{width}}/{trainer.config.epochs}  {self._losses(metrics)}")

    def on_pretrain_epoch_end(self, trainer, stage, metrics):
        self.write(f"pretrain {stage} epoch {metrics['epoch']}/{metrics['epochs']}  {self._losses(metrics)}")

    @staticmethod
    def _losses(metrics: dict) -> str:
        terms = named_terms(metrics, "test")
        parts = "".join(f" {k} {v:.5f}" for k, v in terms.items())
        split = f" (recon {metrics['test_recon_loss']:.5f}{parts})" if terms else ""
        val = f"val loss {metrics['val_loss']:.5f}  " if "val_loss" in metrics else ""
        return (f"train loss {metrics['train_loss']:.5f}  {val}test loss {metrics['test_loss']:.5f}{split}  "
                f"test mse {metrics['test_mse']:.5f}  {metrics['seconds']:.1f}s")


class MetricsLogger(Callback):
    """Appends one line per epoch to the run's ``metrics.jsonl``; a resumed run first gets back the
    lines its checkpoint knows (a line written after the checkpoint is dropped and written again).
    """

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def on_fit_start(self, trainer):
        self.run_dir.reset_metrics(trainer.history if trainer.resumed else ())

    def on_epoch_end(self, trainer, metrics):
        self.run_dir.append_metrics(metrics)


class Checkpointer(Callback):
    """Saves the training state to ``checkpoint.safetensors``: every ``every`` seconds (checked
    after each step and epoch), when the loop ends, and on Ctrl-C. ``best.safetensors`` gets
    the weights of the epoch with the lowest validation loss (:func:`held_out_loss`: the test
    loss when the run holds no validation split), kept in memory until the next save.

    A state with non-finite weights or losses is never saved: the trainer raises
    :class:`~aekit.errors.Diverged` instead, and the last good checkpoint stays.
    ``meta`` (model name, input shape, config, ...) goes into every file.
    """

    def __init__(self, run_dir: RunDir, meta: dict | None = None, every: float = 300.0):
        self.run_dir = run_dir
        self.meta = meta or {}
        self.every = every
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.saved: dict | None = None  # position of the last checkpoint written: {"epoch", "step"}
        self._pending_best: tuple[dict, dict] | None = None  # (weights on the CPU, metrics) not yet written
        self._last = time.monotonic()

    def state_dict(self):
        return {"best_loss": self.best_loss if math.isfinite(self.best_loss) else None, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        loss = state.get("best_loss")
        self.best_loss = math.inf if loss is None else loss
        self.best_epoch = state.get("best_epoch")

    def on_fit_start(self, trainer):
        self._last = time.monotonic()

    def on_step_end(self, trainer, loss):
        if trainer.agree(time.monotonic() - self._last >= self.every):  # the same step on every process
            self.save(trainer)

    def on_epoch_end(self, trainer, metrics):
        if held_out_loss(metrics) < self.best_loss:
            self.best_loss, self.best_epoch = held_out_loss(metrics), metrics["epoch"]
            if trainer.world.main:
                weights = {f"model/{k}": v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
                self._pending_best = (weights, metrics)
        if trainer.agree(time.monotonic() - self._last >= self.every, every_step=True):
            self.save(trainer)

    def on_interrupt(self, trainer):
        self.save(trainer)

    def on_fit_end(self, trainer):
        if trainer.finished:
            self.save(trainer)
            return
        try:  # stopped by an error: the best weights so far are good; keep them if the disk lets us
            self._flush_best()
        except AekitError:
            pass

    def save(self, trainer) -> None:
        """Write ``best`` (if it changed) and then the whole state, each atomically (rank 0 writes; with
        many processes every rank must call this at the same step: the state gathers from all).
        """
        trainer.assert_finite()
        tensors, state = trainer.state_dict()
        epochs = len(trainer.history)
        if not trainer.world.main:
            return
        self._flush_best()
        self.run_dir.save_checkpoint("checkpoint", tensors, {**self.meta, "kind": "state", "epoch": epochs,
                                                             "step": trainer.step, "finished": trainer.finished,
                                                             **state})
        self.saved = {"epoch": epochs, "step": trainer.step}
        self._last = time.monotonic()

    def _flush_best(self) -> None:
        if self._pending_best is not None:
            weights, metrics = self._pending_best
            self.run_dir.save_checkpoint("best", weights, {**self.meta, "kind": "weights", "epoch": metrics["epoch"],
                                                           "metrics": metrics})
            self._pending_best = None


def held_out_loss(metrics: dict) -> float:
    """The loss that chooses the best weights and stops early: the validation split's where the run has one.

    Choosing by the test split would make the test score a score of the choice too (test
    leakage); without a validation split it is the only held-out loss there is.
    """
    return metrics.get("val_loss", metrics["test_loss"])


class EarlyStopping(Callback):
    """Stops the run when the held-out loss (:func:`held_out_loss`) has not fallen below its best for
    ``patience`` epochs; ``min_delta`` is the relative fall that counts as better.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, log: Callable[[str], None] | None = None):
        self.patience, self.min_delta, self.log = patience, min_delta, log
        self.best = math.inf
        self.best_epoch: int | None = None
        self.stopped = False

    def state_dict(self):
        return {"best": self.best if math.isfinite(self.best) else None, "best_epoch": self.best_epoch,
                "stopped": self.stopped}

    def load_state_dict(self, state):
        self.best = math.inf if state.get("best") is None else state["best"]
        self.best_epoch, self.stopped = state.get("best_epoch"), bool(state.get("stopped"))

    def on_epoch_end(self, trainer, metrics):
        loss = held_out_loss(metrics)
        if loss < self.best * (1 - self.min_delta):
            self.best, self.best_epoch = loss, metrics["epoch"]
        elif metrics["epoch"] - (self.best_epoch or 0) >= self.patience:
            self.stopped = True
            trainer.should_stop = True
            if self.log is not None:
                which = "validation" if "val_loss" in metrics else "test"
                self.log(f"early stop at epoch {metrics['epoch']}: the {which} loss has not improved for "
                         f"{self.patience} epochs (best {self.best:.5g} at epoch {self.best_epoch}); "
                         "best.safetensors holds that epoch's weights")


class OverfitCheck(Callback):
    """One warning line at the end when the run likely overfitted: the held-out loss (validation, else
    test) ends over ``rise`` above its lowest, reached two or more epochs earlier, while the training
    loss went on falling; it names the flags that counter it.
    """

    rise = 0.03

    def __init__(self, log: Callable[[str], None]):
        self.log = log

    def on_fit_end(self, trainer):
        history = trainer.history
        if not trainer.finished or len(history) < 3:
            return
        losses = [held_out_loss(m) for m in history]
        best = min(range(len(losses)), key=losses.__getitem__)
        last = history[-1]
        if best > len(history) - 3 or losses[-1] <= (1 + self.rise) * losses[best] \
                or last["train_loss"] >= history[best]["train_loss"]:
            return
        which = "validation" if "val_loss" in last else "test"
        cfg = trainer.config
        remedies = []  # only those the run does not already have
        if cfg.augment == "none":
            remedies.append("--augment flips+shifts")
        if cfg.optimizer != "adamw" or cfg.weight_decay < 0.05:
            remedies.append(f"--optimizer adamw --weight-decay 0.05 (now {cfg.optimizer}, {cfg.weight_decay:g})")
        if cfg.val_fraction <= 0 or cfg.patience <= 0:
            remedies.append(f"--val-fraction 0.1 --patience 5 (now {cfg.val_fraction:g}, {cfg.patience})")
        remedies.append(f"fewer --steps (now {cfg.steps})" if cfg.steps else "fewer --epochs")
        self.log(f"warning: the model is likely overfitting: its {which} loss rose from {losses[best]:.5g} at "
                 f"epoch {history[best]['epoch']} to {losses[-1]:.5g} while its training loss fell "
                 f"({history[best]['train_loss']:.5g} to {last['train_loss']:.5g}); try "
                 + (", ".join(remedies[:-1]) + ", or " if len(remedies) > 1 else "") + remedies[-1])


class LearningCheck(Callback):
    """One warning line when a run that ended without error did not learn (naming ``--lr``) or learned only as
    far as the mean image (naming ``--epochs``).

    Two things must both hold. The final test reconstruction loss is clearly worse than a
    constant image's (over ``1 + moved`` times that of the mean test image, scored by the
    model's own loss: the plateau at about the mean image that some models cross on their
    way is not flagged). And the loss did not fall, in one of three ways, each with its
    likely cause:

    - it rose: the last epoch's training loss is over ``1 + moved`` times the first
      step's (the untrained model's). A learning rate far too high throws the weights so
      far that every output saturates, finite, so no divergence check fires;
    - it barely moved: within ``moved`` of the first step's either way. The learning
      rate is too low for the run's length;
    - it fell, then stopped (two epochs or more): the final test loss is no lower than
      the first epoch's, a plateau above the mean image. Too high again: saturated.

    A run whose loss fell but ends within ``moved`` of the mean image's loss, or above it, is
    under-trained rather than mis-tuned (the default preset takes six epochs of
    ``mnist-sample`` to beat the mean image; on a small colour folder a dense model may never
    leave it): its warning names ``--epochs`` and a conv preset. Either way the
    run is kept and the exit status stays 0: its numbers are real, only not useful; a
    non-finite loss is the trainer's :class:`~aekit.errors.Diverged` instead.

    ``x_test``: the test images ``(N, C, H, W)`` uint8 (an array or memory map), read in
    chunks at the end; ``scale``: the run's pixel scale; ``log``: where the line goes.
    """

    chunk = 4096  # test images per pass through the loss
    moved = 0.05  # a margin: a loss within 5% of another is not better or worse than it
    min_test = 10  # fewer test images: no check

    def __init__(self, x_test, scale: str, log: Callable[[str], None]):
        self.x_test, self.scale, self.log = x_test, scale, log
        self.first_loss: float | None = None  # the loss of the main run's first step, the untrained model's

    def state_dict(self):
        return {"first_loss": self.first_loss}

    def load_state_dict(self, state):
        self.first_loss = state.get("first_loss")

    def on_step_end(self, trainer, loss):
        if trainer.phase.main and trainer.step == 1:  # not a later step of a resumed run that had no such state
            value = float(loss)  # one host sync, at the first step only
            self.first_loss = value if math.isfinite(value) else None

    def on_fit_end(self, trainer):
        # the mean of a handful of test images is close to each of them (of one, it is the image): no yardstick
        if not trainer.finished or not trainer.history or len(self.x_test) < self.min_test:
            return
        stalled = self.stalled(trainer.history)
        final = trainer.history[-1]["test_recon_loss"]
        constant = self.constant_image_loss(trainer.model)
        if stalled is None:
            if final >= (1 - self.moved) * constant:  # it learned, but only as far as the mean image
                self.log(f"warning: the model is not clearly better than a constant image: its test "
                         f"reconstruction loss ({final:.5g}) is not {self.moved:.0%} below the mean test image's "
                         f"({constant:.5g}); "
                         f"it is likely under-trained for this data: try {self._longer(trainer.config)}, or a conv "
                         "preset such as resconv-16 for colour photos")
            return
        if final > (1 + self.moved) * constant:
            how, advice = stalled
            lower = advice == "lower"
            self.log(f"warning: the model did not learn: its test reconstruction loss ({final:.5g}) is worse than "
                     f"the mean test image's ({constant:.5g}) and {how}; the learning rate is likely too "
                     f"{'high' if lower else 'low'}: try a {advice} --lr (now {trainer.config.lr:g})"
                     f"{'' if lower else ' or more --epochs'}")

    @staticmethod
    def _longer(config) -> str:
        """The flag that makes this run longer, with its value now."""
        return f"more --steps (now {config.steps})" if config.steps else f"more --epochs (now {config.epochs})"

    def stalled(self, history: list[dict]) -> tuple[str, str] | None:
        """How the loss did not fall, in words, and which way ``--lr`` should go (``lower`` or ``higher``);
        ``None`` when it fell.
        """
        first, last = history[0], history[-1]
        if self.first_loss is not None and self.first_loss > 0:
            losses = f"{self.first_loss:.5g} at the first step, {last['train_loss']:.5g} in the last epoch"
            ratio = last["train_loss"] / self.first_loss
            if ratio > 1 + self.moved:
                return f"its training loss rose ({losses})", "lower"
            if ratio >= 1 - self.moved:
                return f"its training loss barely moved from the untrained model's ({losses})", "higher"
        if len(history) >= 2 and last["test_loss"] >= first["test_loss"]:
            return (f"its test loss stopped falling after the first epoch ({first['test_loss']:.5g}, then "
                    f"{last['test_loss']:.5g} at epoch {last['epoch']})"), "lower"
        return None

    def constant_image_loss(self, model) -> float:
        """The model's reconstruction loss on the test images when every reconstruction is their mean image."""
        import torch

        from aekit.pixels import to_model

        device = next(model.parameters()).device
        chunks = range(0, len(self.x_test), self.chunk)
        total = sum(to_model(self.x_test[i:i + self.chunk], self.scale).double().sum(0) for i in chunks)
        mean = (total / len(self.x_test)).float().to(device)  # (C, H, W)
        loss = 0.0
        with torch.no_grad():
            for i in chunks:
                x = to_model(self.x_test[i:i + self.chunk], self.scale).to(device)
                loss += float(model.reconstruction_loss(mean.expand_as(x), x)) * len(x)
        return loss / len(self.x_test)
