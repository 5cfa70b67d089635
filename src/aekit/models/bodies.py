"""The networks a model is built on: a fully connected stack (``mlp``) or a convolutional one (``conv``).

A variant is an objective (denoise, be sparse, be contractive, be a VAE); the body is
the network that carries it. Variants that work on either take an
:class:`~aekit.models.configs.ArchConfig` and pick with ``arch``; both bodies take images ``(B, C, H, W)`` of any size.

>>> from aekit.models.configs import ArchConfig
>>> enc = make_encoder(ArchConfig(arch="conv", latent_dim=16), (3, 32, 32), 16, "linear")
>>> enc(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 16])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.models.base import AutoEncoder, make_activation
from aekit.models.mlp import mlp


class BodyAutoEncoder(AutoEncoder):
    """An autoencoder on the body ``config.arch`` names (or ``arch``); variants override its hooks."""

    def __init__(self, config, input_shape, arch: str | None = None):
        super().__init__(config, input_shape)
        self.arch = arch or config.arch
        self.encoder = make_encoder(config, input_shape, config.latent_dim, config.latent_activation, self.arch)
        self.decoder = make_decoder(config, input_shape, config.latent_dim, self.arch)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, C, H, W) -> (B, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, C, H, W)


def make_encoder(config, input_shape, out_dim: int, last_activation: str, arch: str | None = None) -> nn.Module:
    """``(B, C, H, W) -> (B, out_dim)``, ending in ``last_activation``."""
    if (arch or config.arch) == "conv":
        return ConvEncoder(input_shape, config.channels, out_dim, config.activation, last_activation)
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), mlp([c * h * w, *config.hidden, out_dim], config.activation, last_activation))


def make_decoder(config, input_shape, in_dim: int, arch: str | None = None) -> nn.Module:
    """``(B, in_dim) -> (B, C, H, W)``, ending in ``config.output_activation``."""
    if (arch or config.arch) == "conv":
        return ConvDecoder(input_shape, config.channels, in_dim, config.activation, config.output_activation,
                           refine=config.conv_decoder == "refine")
    c, h, w = input_shape
    sizes = [in_dim, *config.hidden[::-1], c * h * w]
    return nn.Sequential(mlp(sizes, config.activation, config.output_activation), nn.Unflatten(1, (c, h, w)))


def _halvings(size: int, n: int) -> list[int]:
    """Spatial sizes after each stride-2, padding-1, 3x3 convolution: 28 -> 14 -> 7 -> 4."""
    sizes = [size]
    for _ in range(n):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _norm(channels: int) -> nn.GroupNorm:
    """Group normalisation after each hidden convolution (Wu & He 2018, "Group normalization").

    Without it, a ReLU conv body with sigmoid outputs and MSE can collapse on MNIST within
    a few dozen steps: the mostly black images drive the output layer's pre-activations so
    far down that the sigmoid passes no gradient, and the model stays at an all-black guess
    (a regression test in tests/test_family.py holds this). Group norm keeps the scale in
    check. It works on each image alone, unlike batch norm, so a code depends on its own
    image only (the contractive penalty's per-image Jacobian stays exact) and training and
    evaluation compute the same function.
    """
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ConvEncoder(nn.Module):
    """Per width in ``channels`` a stride-2 3x3 convolution and a group norm, then a linear map to the code."""

    def __init__(self, input_shape, channels, out_dim: int, activation: str, last_activation: str):
        super().__init__()
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *channels[:-1]), channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _norm(c_out), make_activation(activation)]
        self.convs = nn.Sequential(*layers)
        self.feature_shape = (channels[-1], _halvings(h, len(channels))[-1], _halvings(w, len(channels))[-1])
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(math.prod(self.feature_shape), out_dim)]
        if last_activation != "linear":
            head.append(make_activation(last_activation))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x))  # (B, C, H, W) -> (B, c_last, h, w) -> (B, out_dim)


class ConvDecoder(nn.Module):
    """The encoder mirrored, at the encoder's cost: a linear map to the last feature maps, per
    hidden width a stride-2 transposed convolution (group norm, activation) sized to land on
    the encoder's sizes, and a sub-pixel convolution to the image.

    The sub-pixel step (Shi et al. 2016, "Real-time single image and video super-resolution
    using an efficient sub-pixel convolutional neural network") is a 3x3 convolution at half
    size to ``4 * C`` channels whose groups of four become the 2x2 pixels of each position
    (``nn.PixelShuffle(2)``), cropped to an odd height or width. Every output pixel then sees
    a full 3x3 window, where a stride-2 transposed convolution gives pixels of different
    parity 1, 2 or 4 taps (the checkerboard of Odena et al. 2016); it reached a lower test
    MSE than that at the same cost (benchmarks/conv_body.py).

    ``refine=True`` is the body's earlier head, kept to load the runs trained with it: the
    last transposed convolution keeps the first width at full size, with a group norm, and
    a 3x3 convolution maps it to the image's channels. On 28x28 with ``channels=(32, 64)``
    that full-size stage made a training step about three times as dear.
    """

    def __init__(self, input_shape, channels, in_dim: int, activation: str, output_activation: str,
                 refine: bool = False):
        super().__init__()
        c, h, w = input_shape
        self.out_size = (h, w)
        hs, ws = _halvings(h, len(channels)), _halvings(w, len(channels))
        self.feature_shape = (channels[-1], hs[-1], ws[-1])
        self.head = nn.Sequential(nn.Linear(in_dim, math.prod(self.feature_shape)), make_activation(activation))
        widths = channels[::-1]  # e.g. (64, 32)
        ups = list(zip(widths, (*widths[1:], widths[-1]))) if refine else list(zip(widths[:-1], widths[1:]))
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(ups):
            level = len(channels) - i  # the sizes go from hs[level] to hs[level - 1]
            # out = 2*in - 1 + output_padding, so output_padding is 1 where the larger size is even
            pad = (1 - hs[level - 1] % 2, 1 - ws[level - 1] % 2)
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad),
                       _norm(c_out), make_activation(activation)]
        if refine:
            layers.append(nn.Conv2d(widths[-1], c, 3, padding=1))
        else:  # (B, w0, hs[1], ws[1]) -> (B, 4C, hs[1], ws[1]) -> (B, C, 2*hs[1], 2*ws[1])
            layers += [nn.Conv2d(widths[-1], 4 * c, 3, padding=1), nn.PixelShuffle(2)]
        if output_activation != "linear":
            layers.append(make_activation(output_activation))
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.head(z).view(-1, *self.feature_shape))  # (B, k) -> (B, c_last, h, w) -> (B, C, H', W')
        h, w = self.out_size
        return x[:, :, :h, :w]  # the sub-pixel step gives even sizes: H' = H + 1 for an odd H
