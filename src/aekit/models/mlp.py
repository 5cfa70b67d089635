"""A fully connected autoencoder: the seeds' model. Mirrored decoder.

``hidden=(128, 64, 12), latent_dim=3`` gives 784-128-64-12-3 and 3-12-64-128-784.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.models.base import AutoEncoder, make_activation
from aekit.models.dense import LOSSES, DenseChain, chain_of
from aekit.models.registry import register_model


def mlp(sizes: list[int], activation: str, last_activation: str) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between and ``last_activation`` at the end."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        act = last_activation if i == len(sizes) - 2 else activation
        if act != "linear":
            layers.append(make_activation(act))
    return nn.Sequential(*layers)


@register_model("mlp")
class MLPAutoEncoder(AutoEncoder):
    summary = "fully connected encoder and mirrored decoder (the seed tutorials' model)"

    def __init__(self, config, input_shape):
        super().__init__(config, input_shape)
        hidden, code, output = self.activations(config)
        sizes = [self.input_dim, *config.hidden, config.latent_dim]
        self.encoder = mlp(sizes, hidden, code)
        self.decoder = mlp(sizes[::-1], hidden, output)

    def activations(self, config) -> tuple[str, str, str]:
        """Activations between hidden layers, on the code and on the output."""
        return config.activation, config.latent_activation, config.output_activation

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))  # (B, C, H, W) -> (B, C*H*W) -> (B, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.input_shape)  # (B, C*H*W) -> (B, C, H, W)

    def gradient_function(self):
        """The chain's loss and gradients by hand (:mod:`aekit.models.dense`): autograd's numbers, bit for bit,
        at a fifth less time a step. ``None`` for a variant that changes what ``forward`` computes.
        """
        plain = all(getattr(type(self), name) is getattr(MLPAutoEncoder, name)
                    for name in ("forward", "encode", "decode", "corrupt", "regularizer", "penalties",
                                 "reconstruction_loss"))
        plain = plain and self.config.alpha_loss == "channel"  # the chain's loss knows no mask
        pairs = chain_of(self.encoder, self.decoder) if plain and self.config.loss in LOSSES else None
        if pairs is None or sum(p.numel() for p in self.parameters()) != sum(
                layer.weight.numel() + layer.bias.numel() for layer, _ in pairs):
            return None
        code_layer = sum(1 for m in self.encoder if type(m) is nn.Linear) - 1  # the encoder's last layer gives z
        return DenseChain(pairs, code_layer, self.config.loss, self.config.loss_scale)
