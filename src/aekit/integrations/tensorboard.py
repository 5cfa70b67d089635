"""A training callback that writes TensorBoard event files (``aekit train --tensorboard``).

What it writes, at the trainer's global step (so every chart shares one x axis):

- scalars ``train/loss``, ``train/recon_loss``, ``train/reg_loss`` and ``test/loss``,
  ``test/recon_loss``, ``test/reg_loss``, ``test/mse`` after every epoch, one pair
  ``train/<name>``, ``test/<name>`` per named loss term of the model but ``recon``
  (a VAE's ``train/kl``), and ``train/step_loss`` every ``every_n_steps`` steps;
- the image ``reconstructions``: fixed test images (every class in turn) over their
  reconstructions, before training and after every epoch;
- at the end, the test codes in the embedding projector (tag ``codes``): the codes,
  the class names as metadata and a sprite of the images, so TensorBoard shows the
  code cloud in 3-D, rotatable, each point with its image.

Writing goes through ``torch.utils.tensorboard``, which needs the ``tensorboard``
package (``pip install 'aekit[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aekit.integrations import require
from aekit.training import Callback
from aekit.training.callbacks import named_terms

EMBEDDING_MAX = 10000  # points in the projector; the sprite of 28x28 images is then 2800 px square
EPOCH_TERMS = ("loss", "recon_loss", "reg_loss")


class TensorBoardLogger(Callback):
    """Writes losses, reconstruction grids and the final code cloud to ``log_dir``.

    Parameters
    ----------
    log_dir : str or Path
    snapshot_images : ndarray (N, C, H, W) uint8
        The fixed test images drawn over their reconstructions.
    embed_images : ndarray (M, C, H, W) uint8
        The test images whose codes go to the projector (at most ``EMBEDDING_MAX`` are used).
    embed_labels : ndarray (M,) int
    scale : str
        The model's pixel scale (see :mod:`aekit.pixels`).
    class_names : list of str, optional
        Metadata shown for each point; default the label numbers.
    every_n_steps : int, default 25
        How often ``train/step_loss`` is written.
    """

    def __init__(self, log_dir, snapshot_images: np.ndarray, embed_images: np.ndarray, embed_labels: np.ndarray,
                 scale: str = "unit", class_names: list[str] | None = None, every_n_steps: int = 25):
        self.log_dir = Path(log_dir)
        self.snapshot_images = snapshot_images
        self.embed_images = embed_images[:EMBEDDING_MAX]
        self.embed_labels = np.asarray(embed_labels)[:EMBEDDING_MAX]
        self.scale = scale
        self.class_names = class_names
        self.every_n_steps = every_n_steps
        self.writer = None

    @classmethod
    def for_data(cls, log_dir, data, scale: str, snapshot_images: int = 10) -> "TensorBoardLogger":
        """A logger for a dataset's test split; fails at once, before training, if tensorboard is missing."""
        from aekit.visualization.snapshots import snapshot_indices

        require("tensorboard", "tensorboard", "--tensorboard")
        labels = data.y_test if data.labeled else np.zeros(len(data.x_test), np.int64)  # one "unlabeled" class
        return cls(log_dir, data.x_test[snapshot_indices(data, snapshot_images)], data.x_test, labels, scale,
                   data.class_names or ["unlabeled"])

    def on_fit_start(self, trainer):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))
        self._write_grid(trainer)

    def on_step_end(self, trainer, loss):
        # the writer opens with the main run: steps of pre-training stages come before it
        if self.writer is not None and trainer.step % self.every_n_steps == 0:
            self.writer.add_scalar("train/step_loss", float(loss), trainer.step)  # one device sync per N steps

    def on_epoch_end(self, trainer, metrics):
        for split in ("train", "test"):
            for term in EPOCH_TERMS:
                self.writer.add_scalar(f"{split}/{term}", metrics[f"{split}_{term}"], trainer.step)
            for term, value in named_terms(metrics, split).items():
                self.writer.add_scalar(f"{split}/{term}", value, trainer.step)
        self.writer.add_scalar("test/mse", metrics["test_mse"], trainer.step)
        self._write_grid(trainer)
        self.writer.flush()

    def on_fit_end(self, trainer):
        if self.writer is None:
            return
        try:
            if trainer.history:  # an interrupted first epoch leaves nothing worth projecting
                self._write_embedding(trainer)
        finally:
            self.writer.close()
            self.writer = None

    def _write_grid(self, trainer) -> None:
        from aekit.visualization.images import pair_grid

        recon = trainer.model.reconstruct_images(self.snapshot_images, self.scale)
        grid = pair_grid(self.snapshot_images, recon, self.scale, upscale=2)  # (H, W) or (H, W, 3) uint8
        self.writer.add_image("reconstructions", grid, trainer.step, dataformats="HW" if grid.ndim == 2 else "HWC")

    def _write_embedding(self, trainer) -> None:
        import torch

        codes = trainer.model.encode_images(self.embed_images, self.scale)  # (M, code_size): flat codes
        names = self.class_names or [str(c) for c in range(int(self.embed_labels.max(initial=0)) + 1)]
        sprites = torch.from_numpy(self.embed_images).float() / 255.0  # (M, C, H, W) in [0, 1]
        self.writer.add_embedding(codes, metadata=[names[c] for c in self.embed_labels], label_img=sprites,
                                  global_step=trainer.step, tag="codes")


__all__ = ["EMBEDDING_MAX", "TensorBoardLogger"]
