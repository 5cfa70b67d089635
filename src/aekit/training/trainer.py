"""One training loop for every model.

The loop knows only ``model(x) -> ModelOutput`` and minimises ``ModelOutput.loss``,
plus two generic hooks any model may define (it never learns which model it has):
``model.on_train_step(epoch_progress)`` before each step (schedules such as a KL
warm-up), and ``model.pretraining_stages()``, greedy stages that this same loop
trains, one after another, before the first epoch.

The whole dataset sits on the training device as one uint8 tensor; a batch is an
index slice scaled to float there, so no per-sample Python objects are made.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import torch

from aekit.config import TrainConfig
from aekit.pixels import to_model
from aekit.training.callbacks import Callback


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda, then mps, then cpu. Asking for one that is not there is an error."""
    from aekit.errors import ConfigError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available; use auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("train.device: 'mps' requested but MPS is not available; use auto or cpu")
    return torch.device(name)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam; the fused kernel where this torch has it (one kernel for all parameters
    instead of a loop over them).
    """
    params = list(model.parameters())
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # older torch, or a device without a fused Adam
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Trainer:
    """Fits ``model`` on uint8 images already on ``device``.

    >>> trainer = Trainer(model, TrainConfig(epochs=1), scale="unit")  # doctest: +SKIP
    >>> history = trainer.fit(x_train, x_test)  # doctest: +SKIP
    """

    eval_batch_size = 1000

    def __init__(self, model, config: TrainConfig, scale: str = "unit",
                 callbacks: Sequence[Callback] = ()):
        self.model = model
        self.config = config
        self.scale = scale
        self.callbacks = list(callbacks)
        self.epoch = 0
        self.step = 0
        self.history: list[dict] = []
        self.should_stop = False
        self.optimizer = None
        self.pretrained = False

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, x_train: torch.Tensor, x_test: torch.Tensor) -> list[dict]:
        """Train for ``config.epochs``; returns one metrics dict per epoch.

        A fresh fit first runs the model's pre-training stages (:meth:`pretrain`).
        """
        cfg = self.config
        model = self.model
        if self.epoch == 0 and not self.pretrained:
            self.pretrain(x_train, x_test)
        on_train_step = getattr(model, "on_train_step", None)
        self.optimizer = make_optimizer(model, cfg)
        # A generator of our own keeps shuffling independent of anything else that draws numbers.
        gen = torch.Generator().manual_seed(cfg.seed)
        n = len(x_train)
        steps = (n + cfg.batch_size - 1) // cfg.batch_size
        self._call("on_fit_start")
        try:
            for self.epoch in range(self.epoch + 1, cfg.epochs + 1):
                start = time.perf_counter()
                self._call("on_epoch_start", steps)
                model.train()
                perm = torch.randperm(n, generator=gen).to(x_train.device)
                terms = []  # detached (loss, recon, reg) per step; no device sync inside the loop
                for i in range(0, n, cfg.batch_size):
                    if on_train_step is not None:
                        on_train_step(self.epoch - 1 + i / n)
                    x = to_model(x_train[perm[i:i + cfg.batch_size]], self.scale)  # (B, C, H, W) float
                    out = model(x)
                    self.optimizer.zero_grad(set_to_none=True)
                    out.loss.backward()
                    self.optimizer.step()
                    self.step += 1
                    terms.append((out.loss.detach() * len(x), out.recon_loss.detach() * len(x),
                                  out.reg_loss.detach() * len(x)))
                    self._call("on_step_end", out.loss.detach())
                train = (torch.stack([torch.stack(t) for t in zip(*terms)]).sum(1) / n).tolist()
                test = self.evaluate(x_test)
                metrics = {"epoch": self.epoch, "step": self.step,
                           "train_loss": train[0], "train_recon_loss": train[1], "train_reg_loss": train[2],
                           **{f"test_{k}": v for k, v in test.items()},
                           "seconds": round(time.perf_counter() - start, 4)}
                self.history.append(metrics)
                self._call("on_epoch_end", metrics)
                if self.should_stop:
                    break
        finally:
            self._call("on_fit_end")
        return self.history

    def pretrain(self, x_train: torch.Tensor, x_test: torch.Tensor) -> None:
        """Train each of ``model.pretraining_stages()`` in turn with this same loop.

        A stage gets a trainer of its own (its own optimiser over the stage's parameters,
        ``stage.epochs`` epochs, the same batch size, learning rate and seed); each of its
        epochs reaches this trainer's callbacks as ``on_pretrain_epoch_end``.
        """
        stages = getattr(self.model, "pretraining_stages", None)
        for stage in stages() if stages is not None else ():
            if stage.epochs < 1:
                continue
            child = Trainer(stage.module, dataclasses.replace(self.config, epochs=stage.epochs), self.scale,
                            [_StageRelay(self, stage.name)])
            child.fit(x_train, x_test)
        self.pretrained = True

    @torch.no_grad()
    def evaluate(self, x_u8: torch.Tensor) -> dict[str, float]:
        """Mean loss terms and per-pixel MSE over ``x_u8`` in eval mode."""
        model = self.model
        was_training = model.training
        model.eval()
        sums = torch.zeros(4, device=x_u8.device)
        for i in range(0, len(x_u8), self.eval_batch_size):
            x = to_model(x_u8[i:i + self.eval_batch_size], self.scale)
            out = model(x)
            mse = torch.mean((out.recon_x - x) ** 2)
            sums += torch.stack([out.loss, out.recon_loss, out.reg_loss, mse]) * len(x)
        model.train(was_training)
        loss, recon, reg, mse = (sums / len(x_u8)).tolist()
        return {"loss": loss, "recon_loss": recon, "reg_loss": reg, "mse": mse}


class _StageRelay(Callback):
    """Passes a pre-training stage's epochs on to the callbacks of the trainer that runs it."""

    def __init__(self, parent: Trainer, stage: str):
        self.parent, self.stage = parent, stage

    def on_epoch_end(self, trainer, metrics):
        metrics = {**metrics, "epochs": trainer.config.epochs}  # the stage's own epoch count
        for cb in self.parent.callbacks:
            hook = getattr(cb, "on_pretrain_epoch_end", None)
            if hook is not None:
                hook(self.parent, self.stage, metrics)
