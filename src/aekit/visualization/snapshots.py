"""A training callback that saves originals (top row) over reconstructions (bottom row).

Frames go to ``recon/``: ``epoch_NNN.png`` before training (000) and after every
epoch, plus ``step_NNNNNN.png`` at a few steps of the first epoch, where the
pictures change fastest (at 1/2, 1/4, 1/8... of it). ``recon/frames.json`` lists
them in order with their epoch and step; ``aekit.visualization.animation`` makes
``recon.gif`` from it. Pillow only: nothing here imports matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aekit import io
from aekit.errors import AekitError
from aekit.io import atomic_write_text
from aekit.pixels import to_model
from aekit.training.callbacks import Callback
from aekit.visualization.images import pair_grid, save_png

FRAMES_INDEX = "frames.json"


def snapshot_indices(data, n: int) -> np.ndarray:
    """``n`` test indices of ``data`` (an :class:`~aekit.data.ImageData`) to show: every class in
    turn, or the first ``n`` when it has no labels (its test split is already shuffled).
    """
    labels = data.y_test if data.labeled else np.zeros(len(data.x_test), np.int64)
    return pick_snapshot_indices(labels, n)


def pick_snapshot_indices(labels: np.ndarray, n: int) -> np.ndarray:
    """A fixed set of ``n`` test indices, cycling through the classes so every digit shows."""
    labels = np.asarray(labels)
    chosen: list[int] = []
    by_class = [np.flatnonzero(labels == c).tolist() for c in np.unique(labels)]
    while len(chosen) < min(n, len(labels)):
        for idx in by_class:
            if idx and len(chosen) < n:
                chosen.append(idx.pop(0))
    return np.array(chosen, dtype=np.int64)


def first_epoch_steps(steps: int, frames: int) -> list[int]:
    """Steps ``steps/2, steps/4, ...`` (``frames`` of them at most, each >= 1), ascending.

    >>> first_epoch_steps(63, 6)
    [1, 2, 4, 8, 16, 32]
    """
    picked = {round(steps / 2 ** k) for k in range(1, frames + 1)}
    return sorted(s for s in picked if 0 < s < steps)


class ReconSnapshots(Callback):
    """Writes ``recon/epoch_NNN.png`` before training and after every epoch, and
    ``recon/step_NNNNNN.png`` at ``first_epoch_frames`` steps of the first epoch.

    Each frame is one forward pass over the fixed snapshot images (10 by default)
    and a small PNG (``benchmarks/plots.py`` measures the cost). A frame that cannot
    be written is one warning line through ``log``; training goes on without snapshots.
    """

    def __init__(self, images_u8: torch.Tensor, out_dir: str | Path, scale: str = "unit", upscale: int = 2,
                 first_epoch_frames: int = 6, log: Callable[[str], None] | None = None):
        self.images = images_u8  # (N, C, H, W) uint8, on the training device
        self.out_dir = Path(out_dir)
        self.scale = scale
        self.upscale = upscale
        self.first_epoch_frames = first_epoch_frames
        self.log = log or io.log
        self.frames: list[dict] = []  # {"file", "epoch", "step"} in training order
        self._dense: dict[int, float] = {}  # global step -> fractional epoch, for the first epoch
        self._first_epoch = None
        self._failed = False

    def state_dict(self):
        return {"frames": self.frames, "first_epoch": self._first_epoch}

    def load_state_dict(self, state):
        self.frames, self._first_epoch = list(state.get("frames", [])), state.get("first_epoch")

    @torch.no_grad()
    def _save(self, trainer, name: str, epoch: float, index: bool = False) -> None:
        if self._failed:
            return
        model = trainer.model
        was_training = model.training
        model.eval()
        recon = model(to_model(self.images, self.scale)).recon_x
        model.train(was_training)
        try:
            save_png(pair_grid(self.images, recon, self.scale, upscale=self.upscale), self.out_dir / name)
            self.frames.append({"file": name, "epoch": round(epoch, 4), "step": trainer.step})
            if index:
                atomic_write_text(self.out_dir / FRAMES_INDEX, json.dumps(self.frames, indent=1) + "\n")
        except (AekitError, OSError) as exc:
            self._failed = True
            self.log(f"warning: could not write a reconstruction snapshot ({exc}); training goes on without them")

    def on_fit_start(self, trainer):
        if not self.frames:  # a resumed run already has its first frames
            self._first_epoch = trainer.epoch + 1
            self._save(trainer, f"epoch_{trainer.epoch:03d}.png", trainer.epoch, index=True)

    def on_epoch_start(self, trainer, steps):
        self._dense = {}
        if trainer.epoch == self._first_epoch:
            first_step = trainer.step - trainer.batch  # the step before this epoch's first (also when resumed)
            self._dense = {first_step + s: trainer.epoch - 1 + s / steps
                           for s in first_epoch_steps(steps, self.first_epoch_frames)}

    def on_step_end(self, trainer, loss):
        if trainer.phase.main and trainer.step in self._dense:
            self._save(trainer, f"step_{trainer.step:06d}.png", self._dense[trainer.step])

    def on_epoch_end(self, trainer, metrics):
        self._save(trainer, f"epoch_{metrics['epoch']:03d}.png", metrics["epoch"], index=True)
