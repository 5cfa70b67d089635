"""A contractive autoencoder: penalise the encoder's sensitivity to its input.

The penalty is the squared Frobenius norm of the encoder's Jacobian J = dz/dx
(Rifai et al. 2011, "Contractive auto-encoders: explicit invariance during feature
extraction", ICML), ||J||_F^2 = sum_ij (dz_j / dx_i)^2, per image, averaged over the
batch, times ``contraction_weight`` and divided by the number of pixels D: the
reconstruction loss here is a per-pixel mean where the paper sums it, so the weight
means the paper's lambda.

For one layer z = f(W x + b) with an elementwise f, J = diag(f'(a)) W, so
||J||_F^2 = sum_j f'(a_j)^2 sum_i W_ji^2; for a sigmoid f' = z (1 - z), the paper's
closed form. It costs one (k, D) reduction. Any other encoder (hidden layers, conv, an
activation without a cheap derivative) gets the exact norm from autograd: one
backward pass per code unit (a plain loop, which ran faster than ``is_grads_batched``).
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.models.bodies import BodyAutoEncoder
from aekit.models.configs import ContractiveConfig
from aekit.models.registry import register_model

# f'(a) written in terms of z = f(a), which the forward pass already has
_DERIVATIVES = {
    "sigmoid": lambda z: z * (1 - z),
    "tanh": lambda z: 1 - z * z,
    "relu": lambda z: (z > 0).to(z),
    "linear": lambda z: torch.ones_like(z),
}


@register_model("contractive")
class ContractiveAutoEncoder(BodyAutoEncoder):
    summary = "penalises the encoder's Jacobian (closed form for one layer, autograd otherwise)"
    config_class = ContractiveConfig

    @property
    def has_closed_form(self) -> bool:
        cfg = self.config
        return self.arch == "mlp" and not cfg.hidden and cfg.latent_activation in _DERIVATIVES

    def jacobian_norm_closed_form(self, z: torch.Tensor) -> torch.Tensor:
        """||dz/dx||_F^2 per image ``(B,)`` for a one-layer encoder, from its code ``z`` ``(B, k)``."""
        (linear,) = [m for m in self.encoder.modules() if isinstance(m, nn.Linear)]
        slope = _DERIVATIVES[self.config.latent_activation](z)  # (B, k)
        return slope.pow(2) @ linear.weight.pow(2).sum(1)  # (B, k) @ (k,) -> (B,)

    def jacobian_norm_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """||dz/dx||_F^2 per image ``(B,)`` by autograd; differentiable when grad is enabled."""
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():  # evaluation runs under no_grad, but this needs a graph from x
            x = x.detach().requires_grad_(True)
            z = self.encode(x)  # (B, k)
            norm = x.new_zeros(len(x))
            for j in range(z.shape[1]):
                # row j of every image's J at once: image b's code depends on image b alone
                (row,) = torch.autograd.grad(z[:, j].sum(), x, create_graph=create_graph, retain_graph=True)
                norm = norm + row.pow(2).flatten(1).sum(1)  # (B, C, H, W) -> (B,)
        return norm

    def penalties(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"contraction": self.regularizer(x, z)}

    def regularizer(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The weighted Jacobian penalty, the term ``contraction``."""
        if self.config.contraction_weight == 0:
            return x.new_zeros(())
        norm = self.jacobian_norm_closed_form(z) if self.has_closed_form else self.jacobian_norm_autograd(x)
        return self.config.contraction_weight * norm.mean() / self.input_dim
