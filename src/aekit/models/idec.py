"""A trained autoencoder with a clustering layer on its codes: DEC and IDEC.

DEC (Xie, Girshick & Farhadi 2016, "Unsupervised deep embedding for clustering analysis")
and IDEC (Guo, Gao, Liu & Yin 2017, "Improved deep embedded clustering with local structure
preservation") refine the codes of a trained autoencoder so that they cluster:

- each code ``z_i`` is softly assigned to centroid ``mu_j`` by a Student's t kernel with one
  degree of freedom (DEC eq. 1): ``q_ij = (1 + |z_i - mu_j|^2)^-1 / sum_j' (1 + |z_i - mu_j'|^2)^-1``;
- the target sharpens it and divides by the soft cluster sizes ``f_j = sum_i q_ij``, so that a
  large cluster does not swallow the rest (DEC eq. 3): ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``;
- the clustering loss is ``KL(P || Q) = sum_i sum_j p_ij log(p_ij / q_ij)`` (DEC eq. 2), a mean
  over the images here; it trains the encoder and the centroids;
- IDEC adds the reconstruction loss, so that the decoder keeps the codes from collapsing the
  data's local structure (IDEC eq. 4: ``L = L_r + gamma L_c``, gamma 0.1); DEC drops the decoder.

The target is held fixed between refreshes (every ``update_interval`` steps, IDEC's ``T``):
at a refresh the module copies its encoder and centroids, and ``f`` from the soft assignment
of all the images to cluster (:meth:`DeepClustering.refresh`). A batch's target then comes from
that copy's soft assignment of the same images, which is exactly the target the papers compute
for the whole set at the refresh, without the module having to know which images a batch holds.

The module trains through aekit's one training loop (:class:`aekit.training.trainer.Trainer`):
``forward`` returns a :class:`~aekit.models.base.ModelOutput` with the terms ``recon`` and
``cluster = gamma KL(P||Q)`` (DEC: ``cluster`` only), and the trainer's ``on_train_step`` hook
refreshes the target. The loop is driven by :func:`aekit.training.deep_clustering.refine`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from aekit.models.base import AutoEncoder, ModelOutput
from aekit.pixels import to_model

VARIANTS = ("idec", "dec")
GAMMA = 0.1  # IDEC's weight of the clustering loss against the reconstruction loss (Guo et al. 2017, section 4.2)
UPDATE_INTERVAL = 140  # IDEC's T for MNIST: steps between target refreshes (Guo et al. 2017, section 4.2)


def soft_assignment(z: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Student's t soft assignment ``q`` ``(N, k)`` of codes ``z`` ``(N, d)`` to ``centroids`` ``(k, d)``
    (DEC eq. 1 with alpha = 1): each row sums to 1.
    """
    kernel = 1.0 / (1.0 + torch.cdist(z, centroids).pow(2))  # (N, k)
    return kernel / kernel.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor, frequency: torch.Tensor | None = None) -> torch.Tensor:
    """DEC's target ``p`` ``(N, k)`` from ``q`` ``(N, k)`` (DEC eq. 3): ``q^2 / f`` normalised per row, with
    ``f`` ``(k,)`` the soft cluster sizes ``sum_i q_ij`` over the whole set (over ``q`` when not given).
    """
    f = q.sum(0) if frequency is None else frequency  # (k,)
    weight = q.pow(2) / f
    return weight / weight.sum(1, keepdim=True)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(P || Q)`` summed over clusters, mean over rows (DEC eq. 2); ``0 log 0`` counts as 0."""
    return torch.sum(torch.xlogy(p, p) - p * torch.log(q.clamp_min(1e-12)), 1).mean()


class DeepClustering(nn.Module):
    """``autoencoder`` with ``centroids`` ``(k, d)`` on its codes, trained by DEC's or IDEC's loss.

    ``images`` ``(N, C, H, W)`` (uint8, or floats in ``scale``) are the images to cluster: a refresh
    of the target assigns all of them. ``variant`` is ``"idec"`` (reconstruction loss +
    ``gamma`` KL) or ``"dec"`` (the KL alone; the decoder is not trained).
    """

    def __init__(self, autoencoder: AutoEncoder, centroids: torch.Tensor, images: torch.Tensor, *,
                 variant: str = "idec", gamma: float = GAMMA, update_interval: int = UPDATE_INTERVAL,
                 scale: str = "unit", batch_size: int = 1000):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant: {variant!r} is not one of {VARIANTS}")
        self.autoencoder = autoencoder
        self.centroids = nn.Parameter(centroids.detach().clone().float())  # (k, d)
        self.input_shape = autoencoder.input_shape
        self.variant, self.gamma, self.update_interval = variant, float(gamma), int(update_interval)
        self.scale, self.batch_size = scale, batch_size
        self._images = images
        self._steps = 0
        self._frozen: tuple[AutoEncoder, torch.Tensor] | None = None  # the encoder and centroids at the last refresh
        self._frequency: torch.Tensor | None = None  # (k,) soft cluster sizes at the last refresh
        self._last_labels: torch.Tensor | None = None  # (N,) hard clusters at the last refresh
        self.refreshes: list[dict] = []  # per refresh: step, share of images whose cluster changed

    @property
    def n_clusters(self) -> int:
        return len(self.centroids)

    def on_train_step(self, epoch_progress: float) -> None:
        """The trainer's hook before each step: refresh the target every ``update_interval`` steps."""
        if self._steps % self.update_interval == 0:
            self.refresh()
        self._steps += 1

    @torch.no_grad()
    def assign(self, images: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``(N, d)`` and soft assignment ``q`` ``(N, k)`` of ``images`` (default: the images to cluster)."""
        images = self._images if images is None else images
        was_training = self.training
        self.eval()
        zs = []
        try:
            for i in range(0, len(images), self.batch_size):
                x = to_model(images[i:i + self.batch_size].to(self.centroids.device), self.scale)
                zs.append(self.autoencoder.encode(x).float())
        finally:
            self.train(was_training)
        z = torch.cat(zs)  # (N, d)
        return z, soft_assignment(z, self.centroids)

    @torch.no_grad()
    def refresh(self) -> None:
        """Fix a new target: copy the encoder and centroids, and the soft cluster sizes over all the images."""
        _, q = self.assign()
        labels = q.argmax(1)  # (N,)
        changed = 1.0 if self._last_labels is None else float((labels != self._last_labels).float().mean())
        self.refreshes.append({"step": self._steps, "changed": changed})  # IDEC stops below a tolerance; logged here
        self._last_labels = labels
        self._frequency = q.sum(0)  # (k,)
        frozen = copy.deepcopy(self.autoencoder).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        self._frozen = (frozen, self.centroids.detach().clone())

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed target ``p`` ``(B, k)`` of images ``x`` ``(B, C, H, W)`` (refreshed first if never set)."""
        if self._frozen is None:
            self.refresh()
        frozen, centroids = self._frozen
        with torch.no_grad():
            return target_distribution(soft_assignment(frozen.encode(x).float(), centroids), self._frequency)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        ae = self.autoencoder
        z = ae.encode(x)  # (B, d)
        q = soft_assignment(z.float(), self.centroids)  # (B, k)
        cluster = self.gamma * kl_divergence(self.target(x), q)
        if self.variant == "dec":  # DEC fine-tunes the encoder alone: its loss is the clustering term only
            with torch.no_grad():
                recon_x = ae.decode(z)
            return ModelOutput(recon_x=recon_x, z=z, terms={"cluster": cluster})
        recon_x = ae.decode(z)
        return ModelOutput(recon_x=recon_x, z=z, terms={"recon": ae.reconstruction_loss(recon_x, x),
                                                        "cluster": cluster})

__all__ = ["DeepClustering", "GAMMA", "UPDATE_INTERVAL", "VARIANTS", "kl_divergence", "soft_assignment",
           "target_distribution"]
