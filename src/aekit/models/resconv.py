"""A residual convolutional autoencoder whose depth follows the image size, from 28x28 to 256x256 and beyond.

The encoder goes down by stride-2 convolutions until the feature map is about 4x4, one
stage per halving: ``round(log2(shorter side / 4))`` stages (3 at 28 or 32, 4 at 64, 6
at 256); the first one halves the image, so no layer but the decoder's last works at
full size. Their widths start at ``width`` and double per stage up to ``max_width``. At each
size below the full one sit ``blocks`` residual blocks (group norm, SiLU, 3x3 convolution, twice), as in
the autoencoders of latent diffusion (Rombach et al. 2022) but with a flat code: the last
map is flattened and mapped linearly to ``latent_dim``, and back. The decoder mirrors the
encoder with nearest-neighbour upsampling followed by a 3x3 convolution: the weights on
every output pixel sum alike, so a flat region stays flat. A stride-2 transposed
convolution gives pixels of either parity a different number of taps, which shows as a
checkerboard (Odena et al. 2016, "Deconvolution and checkerboard artifacts"); the conv
body's sub-pixel step can leave one too.

With ``linear_path`` (the ``auto`` plan's choice for a small set) a fixed linear map runs beside the
network, code ``z = P (x - mean) + net(x)`` and reconstruction ``mean + P^T z + net'(z)``,
and :meth:`init_from_data` sets ``mean`` and ``P`` to the training images' PCA (the top
``latent_dim`` principal axes) while the network's last layers start at zero: training
starts from PCA's reconstructions, exactly, and the network only has to learn what a linear
code misses. A small set or a short budget then ends no worse than PCA on the images that
choose the best weights, where a network from scratch can spend its whole budget getting
there (at 64-D on a 555-photo folder it ended at 1.56x PCA-64's error; docs/benchmarks.md).
The same idea as a skip connection (He et al. 2016) around the whole autoencoder, with the
linear solution (Baldi & Hornik 1989: a linear autoencoder learns PCA's subspace) as the
identity. The output is clamped to the output activation's range (in training with the
gradient passed straight through, so a pixel past the range is still pulled back).

With ``inference_steps`` (the ``auto`` plan gives a small set 20), encoding outside training moves
each code by that many steps of Adam on its image's squared error, the decoder fixed
(:mod:`aekit.models.inference`; :meth:`error_and_slope` writes the decoder's gradient out, so
the steps export): on the Debian folders the network's codes are well short of the best ones
for its decoder.

A size that is not a multiple of ``2**stages`` (28 with 3 stages, an odd size) is padded
by repeating its edge pixels up to the next multiple, and the reconstruction is cropped
back, so every stage halves exactly and the output has the input's shape.

>>> from aekit.models import create_model
>>> model = create_model("resconv", (3, 28, 28), latent_dim=16, width=8)
>>> model.stages, model.feature_shape
(3, (32, 4, 4))
>>> model(torch.rand(2, 3, 28, 28)).recon_x.shape
torch.Size([2, 3, 28, 28])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError
from aekit.models.base import AutoEncoder, make_activation
from aekit.models.configs import ResConvConfig
from aekit.models.inference import adam_steps, default_lr
from aekit.models.inference import trace as trace_layers
from aekit.models.registry import register_model

OUTPUT_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}  # what the output activation would bound it to


def auto_stages(height: int, width: int) -> int:
    """Stages down from ``height x width`` to a map of about 4x4: 28 -> 3, 48 -> 4, 64 -> 4, 256 -> 6."""
    return max(0, round(math.log2(min(height, width) / 4)))


def _norm(channels: int) -> nn.GroupNorm:
    # Group norm (Wu & He 2018) normalises each image alone, so it works at any batch size
    # and training and evaluation compute the same function.
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))))))``: the pre-activation residual block (He et al. 2016)."""

    def __init__(self, channels: int, activation: str):
        super().__init__()
        layers = [[_norm(channels), make_activation(activation), nn.Conv2d(channels, channels, 3, padding=1)]
                  for _ in range(2)]
        self.body = nn.Sequential(*layers[0], *layers[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    def trace(self, x: torch.Tensor):
        """The forward pass and its gradient, written out (:func:`aekit.models.inference.trace`)."""
        y, back = trace_layers(self.body, x)
        return x.float() + y, lambda g: g + back(g)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution from ``c_in`` to ``c_out`` channels."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))  # (B, c_in, h, w) -> (B, c_out, 2h, 2w)

    def trace(self, x: torch.Tensor):
        """The forward pass and its gradient, written out: each input pixel's gradient is the sum over the four
        it was copied to.
        """
        y, back = trace_layers(self.conv, F.interpolate(x, scale_factor=2, mode="nearest"))
        return y, lambda g: F.avg_pool2d(back(g), 2) * 4


@register_model("resconv")
class ResConvAutoEncoder(AutoEncoder):
    summary = "residual conv stages down to about 4x4 (depth from the image size), group norm, SiLU, " \
              "nearest-neighbour upsampling; any HxW from 28 to 256 and beyond, 1 to 4 channels"
    config_class = ResConvConfig

    def __init__(self, config: ResConvConfig, input_shape):
        super().__init__(config, input_shape)
        c, h, w = self.input_shape
        self.stages = auto_stages(h, w) if config.stages is None else config.stages
        step = 2 ** self.stages
        if step > 2 * min(h, w):
            raise ConfigError(f"model.stages: {self.stages} stages would halve {h}x{w} images below one pixel; "
                              f"at most {int(math.log2(2 * min(h, w)))} here, or leave it unset")
        padded = (math.ceil(h / step) * step, math.ceil(w / step) * step)
        top, left = (padded[0] - h) // 2, (padded[1] - w) // 2
        self.padding = (left, padded[1] - w - left, top, padded[0] - h - top)  # F.pad's order: W, then H
        widths = [min(config.width * 2 ** i, config.max_width) for i in range(max(self.stages, 1))]
        self.feature_shape = (widths[-1], padded[0] // step, padded[1] // step)
        act, blocks = config.activation, config.blocks

        # the first convolution halves the image: no layer works at full size but the last one up
        down: list[nn.Module] = []
        for c_in, c_out in zip((c, *widths[:-1]), widths[:self.stages]):
            down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)] + [ResBlock(c_out, act) for _ in range(blocks)]
        if self.stages == 0:
            down += [nn.Conv2d(c, widths[0], 3, padding=1)] + [ResBlock(widths[0], act) for _ in range(blocks)]
        self.encoder = nn.Sequential(*down, _norm(widths[-1]), make_activation(act))
        self.to_code = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(self.feature_shape), config.latent_dim),
                                     make_activation(config.latent_activation))

        self.from_code = nn.Linear(config.latent_dim, math.prod(self.feature_shape))
        up: list[nn.Module] = []
        for c_in, c_out in zip(widths[::-1], widths[-2::-1]):
            up += [ResBlock(c_in, act) for _ in range(blocks)] + [Upsample(c_in, c_out)]
        up += [ResBlock(widths[0], act) for _ in range(blocks)] + [_norm(widths[0]), make_activation(act)]
        up.append(Upsample(widths[0], c) if self.stages else nn.Conv2d(widths[0], c, 3, padding=1))
        self.linear_path = config.linear_path
        if not self.linear_path:
            self.decoder = nn.Sequential(*up, make_activation(config.output_activation))
            return
        self.decoder = nn.Sequential(*up)  # the network adds to PCA's reconstruction, clamped to this range:
        self.output_range = OUTPUT_RANGES.get(config.output_activation, (-math.inf, math.inf))
        # the sample PCA is fitted on: as many images as 5e7 values hold (16,000 at 32x32 RGB, 4,000 at 64x64),
        # at least 8 per code unit; the network makes up what a sample's axes miss against all the images'
        self.init_sample = min(20_000, max(8 * config.latent_dim, int(5e7 // math.prod(self.input_shape))))
        # PCA's mean and axes (latent_dim, C*H*W), set by init_from_data; pca_ready marks them set, so a
        # second fit (or a resumed one, whose checkpoint holds them) does not start them again
        self.register_buffer("pixel_mean", torch.zeros(self.input_shape))
        self.register_buffer("pca_ready", torch.zeros((), dtype=torch.bool))
        # fixed, not trained: an optimiser step of Adam's size (~lr per entry) on axes whose entries are about
        # 1/sqrt(C*H*W) scrambles them within a few steps of the warm-up (a 555-photo folder, 64-D: the loss rose
        # fivefold before recovering); the network's share, trained, moves the code and the image instead
        self.register_buffer("basis", torch.zeros(config.latent_dim, math.prod(self.input_shape)))
        last = up[-1].conv if isinstance(up[-1], Upsample) else up[-1]
        for layer in (self.to_code[1], last):  # the network's share of the code and the image starts at zero
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """The linear path's start: the PCA of training images ``x`` ``(n, C, H, W)``, in the model's range
        (the trainer passes a seeded sample before the first step of a new run). Nothing without a linear path,
        or once done.
        """
        if not self.linear_path or bool(self.pca_ready):
            return
        flat = x.flatten(1).double()  # (n, D)
        mean = flat.mean(0)
        k = min(self.config.latent_dim, *flat.shape)
        with torch.random.fork_rng(devices=[]):  # svd_lowrank draws its sketch from torch's global generator
            torch.manual_seed(0)
            _, _, v = torch.svd_lowrank(flat - mean, q=min(k + 16, *flat.shape), niter=6)  # v: (D, q)
        self.pixel_mean.copy_(mean.view(self.input_shape))
        self.basis.zero_()
        self.basis[:k].copy_(v[:, :k].T)  # rows: the top-k axes, orthonormal; any beyond the data's rank stay 0
        self.pca_ready.fill_(True)

    def _linear_code(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # PCA's coordinates in fp32: (B, D) @ (D, k)
            return (x.float() - self.pixel_mean).flatten(1) @ self.basis.T

    def _linear_image(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast(z.device.type, enabled=False):  # (B, k) @ (k, D) -> (B, C, H, W)
            return self.pixel_mean + (z.float() @ self.basis).view(-1, *self.input_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x_in = x
        x = F.pad(x, self.padding, mode="replicate") if any(self.padding) else x  # (B, C, H', W'), H' = h * 2**stages
        z = self.to_code(self.encoder(x))  # (B, c_last, h, w) -> (B, latent_dim)
        z = z + self._linear_code(x_in) if self.linear_path else z
        if self.training or self.monitoring or not self.config.inference_steps:
            return z
        x_in = x_in.float()
        return adam_steps(z, lambda z, slope=True: self.error_and_slope(z, x_in, slope), self.config.inference_steps,
                          default_lr(self.config.inference_lr, self.latent_dim))

    def error_and_slope(self, z: torch.Tensor, x: torch.Tensor, slope: bool = True):
        """Each image's per-pixel squared error ``(B,)`` when codes ``z`` ``(B, k)`` decode to approximate
        images ``x``, and its gradient with respect to the code (``None`` with ``slope=False``), written out
        (:mod:`aekit.models.inference`): the inference steps' objective.
        """
        h, back_code = trace_layers(self.from_code, z)
        y, back_net = trace_layers(self.decoder, h.view(-1, *self.feature_shape))
        left, _, top, _ = self.padding
        height, width = self.input_shape[1:]
        y = y[:, :, top:top + height, left:left + width]
        inside = None
        if self.linear_path:
            y = y + self._linear_image(z)
            low, high = self.output_range
            inside = (y >= low) & (y <= high)  # a clamped pixel does not move with the code
            y = y.clamp(low, high)
        diff = y - x
        error = diff.pow(2).flatten(1).mean(1)
        if not slope:
            return error, None
        g = (2 / self.input_dim) * diff
        if inside is not None:
            g = g * inside
        g_net = F.pad(g, self.padding) if any(self.padding) else g
        g_z = back_code(back_net(g_net).flatten(1))
        if self.linear_path:
            with torch.autocast(g.device.type, enabled=False):
                g_z = g_z + g.flatten(1) @ self.basis.T
        return error, g_z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.from_code(z).view(-1, *self.feature_shape)  # (B, k) -> (B, c_last, h, w)
        x = self.decoder(x)  # (B, C, H', W')
        left, _, top, _ = self.padding
        h, w = self.input_shape[1:]
        x = x[:, :, top:top + h, left:left + w]  # the padding cropped away: (B, C, H, W)
        if not self.linear_path:
            return x
        x = x + self._linear_image(z)
        low, high = self.output_range
        clamped = x.clamp(low, high)
        return x + (clamped - x).detach() if self.training else clamped  # straight-through in training
