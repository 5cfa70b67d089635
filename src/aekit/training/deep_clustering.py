"""Refining a trained autoencoder's codes for clustering (DEC / IDEC) with aekit's one training loop.

:func:`refine` starts the centroids where k-means on the codes puts them (as both papers do),
wraps the autoencoder in :class:`aekit.models.idec.DeepClustering` and trains that with
:class:`~aekit.training.trainer.Trainer`, whose ``on_train_step`` hook refreshes the target
distribution every ``update_interval`` steps. The autoencoder passed in is copied, never
changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from aekit.config import TrainConfig
from aekit.io import Log, quiet
from aekit.models.idec import GAMMA, UPDATE_INTERVAL, DeepClustering
from aekit.training.callbacks import Callback

STEPS = 2000  # optimisation steps, rounded to whole passes over the images (IDEC ran 2e4 on MNIST's 70,000)
BATCH_SIZE = 256  # both papers'
LR = 1e-3  # IDEC's Adam learning rate
CHECK_IMAGES = 2000  # images the trainer scores after each epoch (its test loss)


@dataclass
class Refined:
    """What :func:`refine` returns: the trained module and the clusters of the images it refined.

    ``labels_`` ``(N,)`` argmax of ``q``; ``probabilities_`` ``(N,)`` that ``q``; ``distances_``
    ``(N,)`` the refined code's Euclidean distance to its centroid; ``codes_`` ``(N, d)`` the refined
    codes; ``history`` the trainer's per-epoch metrics; ``refreshes`` the share of images whose
    cluster changed at each target refresh.
    """

    module: DeepClustering
    labels_: np.ndarray
    probabilities_: np.ndarray
    distances_: np.ndarray
    codes_: np.ndarray
    history: list[dict] = field(default_factory=list)
    refreshes: list[dict] = field(default_factory=list)


class _EpochLog(Callback):
    """One log line per epoch: the two losses and the share of images whose cluster changed at the last refresh."""

    def __init__(self, name: str, log: Log):
        self.name, self.log = name, log

    def on_epoch_end(self, trainer, metrics: dict) -> None:
        changed = trainer.model.refreshes[-1]["changed"] if trainer.model.refreshes else 1.0
        recon = "" if trainer.model.variant == "dec" else f"reconstruction {metrics['train_recon_loss']:.4g}, "
        self.log(f"{self.name} epoch {metrics['epoch']}/{trainer.config.epochs}: {recon}"
                 f"clustering {metrics['train_cluster']:.4g}, "
                 f"{changed:.2%} of the images changed cluster at the last refresh")


def initial_centroids(z: np.ndarray, k: int, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
    """``(k, d)``: the means of ``labels``' clusters when given (another method's clusters), else k-means's
    centres on the codes ``z`` ``(N, d)`` (20 restarts, as DEC and IDEC start).
    """
    if labels is not None:
        return np.stack([z[labels == j].mean(0) if np.any(labels == j) else z.mean(0) for j in range(k)])
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return KMeans(n_clusters=k, n_init=20, random_state=seed).fit(z).cluster_centers_


def refine(autoencoder, images: np.ndarray, k: int, *, variant: str = "idec", scale: str = "unit",
           epochs: int | None = None, batch_size: int = BATCH_SIZE, lr: float = LR, gamma: float | None = None,
           update_interval: int = UPDATE_INTERVAL, seed: int = 0, init_labels: np.ndarray | None = None,
           codes: np.ndarray | None = None, log: Log = quiet) -> Refined:
    """Refine a copy of ``autoencoder``'s codes of ``images`` (uint8 ``(N, C, H, W)``, or float32 in the
    model's range ``scale``) into ``k`` clusters.

    ``variant`` is ``"idec"`` (reconstruction + ``gamma`` x KL, gamma 0.1 by default) or ``"dec"``
    (the KL alone, gamma 1); ``init_labels`` ``(N,)`` start the centroids at those clusters' means
    instead of k-means's; ``codes`` ``(N, d)`` are the images' codes when the caller has them (features
    outside the pixel range, as scikit-learn's standardised rows, which ``encode_images`` refuses to encode).
    Trains ``epochs`` passes (default: the whole passes nearest :data:`STEPS` steps)
    of ``batch_size`` with Adam at ``lr`` on the CPU or wherever the autoencoder is, fp32.
    """
    from aekit.training.trainer import Trainer

    torch.manual_seed(seed)
    ae = copy.deepcopy(autoencoder).float()
    device = next(ae.parameters()).device
    x = torch.as_tensor(np.ascontiguousarray(images))  # (N, C, H, W)
    z = ae.encode_images(x.numpy(), scale) if codes is None else np.asarray(codes)  # (N, d)
    log(f"{variant.upper()}: centroids of {k} clusters from "
        f"{'the given clusters' if init_labels is not None else 'k-means on the codes'}")
    mu = torch.from_numpy(initial_centroids(z.astype(np.float64), k, seed, init_labels)).float().to(device)
    x = x.to(device)
    module = DeepClustering(ae, mu, x, variant=variant, gamma=(GAMMA if variant == "idec" else 1.0)
                            if gamma is None else gamma, update_interval=update_interval, scale=scale)
    batch_size = min(batch_size, len(x))
    if epochs is None:
        epochs = max(1, round(STEPS / -(-len(x) // batch_size)))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, precision="fp32")
    check = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:CHECK_IMAGES]]
    log(f"{variant.upper()}: {epochs} epochs of {len(x):,} images, batch {config.batch_size}, target refreshed "
        f"every {update_interval} steps")
    trainer = Trainer(module, config, scale=scale, precision="fp32", callbacks=[_EpochLog(variant.upper(), log)])
    history = trainer.fit(x, check)
    module.eval()
    codes, q = module.assign()
    labels = q.argmax(1)
    distances = (codes - module.centroids.detach()[labels]).norm(dim=1)
    return Refined(module, labels.cpu().numpy().astype(np.int64), q.max(1).values.cpu().numpy().astype(np.float64),
                   distances.cpu().numpy().astype(np.float64), codes.cpu().numpy(), history, module.refreshes)


__all__ = ["Refined", "initial_centroids", "refine"]
