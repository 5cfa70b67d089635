"""A sparse autoencoder: a penalty that keeps most code units near zero.

Two penalties on the code ``z`` ``(B, k)``:

- ``l1``: sum_j |z_j| per image, averaged over the batch;
- ``kl``: for sigmoid units, sum_j KL(rho || rho_hat_j) where rho_hat_j is unit j's mean
  activation over the batch and rho the target (Ng, "Sparse autoencoder", CS294A
  lecture notes, 2011, section 2.3):
  KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).
  rho_hat is computed from ``z`` itself, inside the graph, so the penalty's gradient
  reaches the encoder (an implementation that takes it from detached activations
  trains nothing).

Both are divided by the number of pixels D, like the KL term of the VAE here: the
reconstruction loss is a per-pixel mean, while the notes sum it over pixels, so a
weight means what it means there. Unset, the weight is 3 for ``kl`` (the notes' beta,
with rho = 0.05) and 0.1 for ``l1`` (tried on mnist-sample: it zeroes most code
activations for a small rise in test error, where a weight of 1 silenced every unit;
the figures are in docs/models.md).
"""

from __future__ import annotations

import torch

from aekit.models.bodies import BodyAutoEncoder
from aekit.models.configs import SPARSITY_WEIGHTS, SparseConfig
from aekit.models.registry import register_model


def kl_sparsity(z: torch.Tensor, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j), rho_hat_j = mean of z[:, j] over the batch (Ng 2011, section 2.3)."""
    rho_hat = z.mean(0).clamp(eps, 1 - eps)  # (k,)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


@register_model("sparse")
class SparseAutoEncoder(BodyAutoEncoder):
    summary = "L1 or KL (target mean activation rho) penalty that keeps most code units near zero"
    config_class = SparseConfig

    def penalties(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"sparsity": self.regularizer(x, z)}

    def regularizer(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The weighted sparsity penalty, the term ``sparsity``."""
        cfg = self.config
        if cfg.sparsity == "kl":
            penalty = kl_sparsity(z, cfg.sparsity_target)
        else:
            penalty = z.abs().sum(1).mean()
        weight = SPARSITY_WEIGHTS[cfg.sparsity] if cfg.sparsity_weight is None else cfg.sparsity_weight
        return weight * penalty / self.input_dim
