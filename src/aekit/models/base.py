"""The base every autoencoder shares: hooks, the output record, the reconstruction loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig


@dataclass
class ModelOutput:
    """What every model's ``forward`` returns (the same record for all variants)."""

    recon_x: torch.Tensor  # (B, C, H, W)
    z: torch.Tensor  # (B, latent_dim)
    loss: torch.Tensor  # scalar: recon_loss + reg_loss, what the trainer minimises
    recon_loss: torch.Tensor  # scalar
    reg_loss: torch.Tensor  # scalar, 0 for a plain autoencoder


def make_activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity,
        "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
    }[name]()


class AutoEncoder(nn.Module):
    """Base class. A variant overrides the hooks it needs:

    - ``encode(x) -> z`` and ``decode(z) -> recon_x``: the two halves;
    - ``corrupt(x)``: applied to the input in training mode only (denoising);
    - ``regularizer(x, z)``: added to the reconstruction loss (sparse, contractive).

    The trainer only calls ``forward`` and reads ``ModelOutput.loss``.
    """

    name = "base"  # set by @register_model
    summary = ""
    config_class = ModelConfig

    def __init__(self, config: ModelConfig, input_shape: tuple[int, int, int]):
        super().__init__()
        self.config = config
        self.input_shape = tuple(input_shape)  # (C, H, W)
        self.latent_dim = config.latent_dim

    @property
    def input_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def regularizer(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(())

    def reconstruction_loss(self, recon_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean per pixel, times ``loss_scale`` (0.5 gives the textbook's 0.5*MSE)."""
        if self.config.loss == "bce":
            loss = F.binary_cross_entropy(recon_x, x)
        else:
            loss = F.mse_loss(recon_x, x)
        return self.config.loss_scale * loss

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x_in = self.corrupt(x) if self.training else x
        z = self.encode(x_in)
        recon_x = self.decode(z)
        recon_loss = self.reconstruction_loss(recon_x, x)  # target is always the clean image
        reg_loss = self.regularizer(x_in, z)
        return ModelOutput(recon_x=recon_x, z=z, loss=recon_loss + reg_loss,
                           recon_loss=recon_loss, reg_loss=reg_loss)
