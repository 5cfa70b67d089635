"""A training callback that saves originals (top row) over reconstructions (bottom row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aekit.training.callbacks import Callback
from aekit.visualization.images import image_grid, save_png, to_uint8


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


class ReconSnapshots(Callback):
    """Writes ``recon/epoch_NNN.png`` before training (000) and after every epoch."""

    def __init__(self, images_u8: torch.Tensor, out_dir: str | Path, scale: str = "unit", upscale: int = 2):
        self.images = images_u8  # (N, C, H, W) uint8, on the training device
        self.out_dir = Path(out_dir)
        self.scale = scale
        self.upscale = upscale

    @torch.no_grad()
    def _save(self, trainer, epoch: int) -> None:
        model = trainer.model
        was_training = model.training
        model.eval()
        x = trainer.batch(self.images)
        recon = model(x).recon_x
        model.train(was_training)
        pair = np.concatenate([to_uint8(self.images), to_uint8(recon, self.scale)])
        grid = image_grid(pair, rows=2, cols=len(self.images), upscale=self.upscale)
        save_png(grid, self.out_dir / f"epoch_{epoch:03d}.png")

    def on_fit_start(self, trainer):
        self._save(trainer, trainer.epoch)

    def on_epoch_end(self, trainer, metrics):
        self._save(trainer, metrics["epoch"])
