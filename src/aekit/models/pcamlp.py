"""An MLP autoencoder on the training images' principal components: the ``auto`` plan's model for a
large set of small colour photos (CIFAR-10), where it does the most per second on a CPU.

The images are first written in a fixed basis, their top ``components`` principal axes
(256 by default), fitted by :meth:`init_from_data` on a sample of the training images and
kept as buffers; each coordinate is divided by its standard deviation. An encoder MLP
(``depth`` layers of ``width`` units, each linear, layer norm, SiLU) maps those ``K``
numbers to the code, a decoder MLP of the same shape maps the code back to ``K``
coordinates, and the basis turns them into an image. Beside each MLP runs a linear layer
started at PCA: the code starts as the top ``latent_dim`` whitened coordinates and the
reconstruction as PCA's, so training starts from PCA's error, as resconv's linear path does
(:mod:`aekit.models.resconv`), and the MLPs (their last layers started small) learn what a
linear code misses.

Why it pays (docs/benchmarks.md, "Your own images"): a 16-D code of a 32x32 photo lies
close to PCA's first few hundred axes, whose complement a 16-D code cannot describe
anyway (PCA-256 leaves 15% of PCA-16's error on CIFAR-10). Dense layers of width
1,024 in bf16 run at a large share of a CPU's peak, where convolutions over 32x32 maps do
not, so in the same minutes the model sees several times the images a conv model does.

In training with the MSE loss the error is computed on the coordinates: with an orthonormal
basis, ``|x - x'|^2 = |c - c'|^2 + |x - mean|^2 - |c|^2`` for ``x' = mean + c' B``, so the
loss is the reconstruction's per-pixel MSE exactly (before clamping) at the cost of the
coordinates, not of the pixels. Evaluation reconstructs the image, clamped to the output
activation's range, and scores it like any model.

Encoding outside training, the encoder's code then takes ``inference_steps`` (3) steps of Adam on
the image's reconstruction error, the decoder fixed (:meth:`infer`): the encoder only
approximates the best code for its decoder, where PCA's projection is exact, and on CIFAR-10 the
three steps take a 16-D code from 0.865x PCA-16's test MSE to 0.84x. The decoder's gradient is
written out (:meth:`coordinates_and_slope`), so the steps export. The trainer's loss and its
scoring of each epoch read the encoder's codes (``monitoring``, :mod:`aekit.models.base`).

>>> from aekit.models import create_model
>>> model = create_model("pcamlp", (3, 32, 32), latent_dim=16, components=64, width=32)
>>> model.init_from_data(torch.rand(200, 3, 32, 32))
>>> model.eval()(torch.rand(2, 3, 32, 32)).recon_x.shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.models.base import AutoEncoder, ModelOutput, make_activation
from aekit.models.configs import PCAMLPConfig
from aekit.models.inference import adam_steps, default_lr, trace
from aekit.models.registry import register_model
from aekit.models.resconv import OUTPUT_RANGES  # what the output activation would bound the image to

START_SCALE = 0.1  # the MLPs' last layers start at this share of their default init: near PCA, not stuck at it


def _mlp(n_in: int, n_out: int, width: int, depth: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), nn.LayerNorm(width), make_activation(activation)]
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


@register_model("pcamlp")
class PCAMLPAutoEncoder(AutoEncoder):
    summary = "MLP (layer norm, SiLU) on the training images' top principal components, started at PCA; " \
              "fast on a CPU for large sets of small colour photos (the auto plan's choice there)"
    config_class = PCAMLPConfig

    def __init__(self, config: PCAMLPConfig, input_shape):
        super().__init__(config, input_shape)
        d, k = self.input_dim, config.latent_dim
        self.components = min(config.components, d)
        n, w = self.components, config.width
        self.encoder = _mlp(n, k, config.encoder_width or w, config.encoder_depth or config.depth, config.activation)
        self.decoder = _mlp(k, n, w, config.depth, config.activation)
        self.output_range = OUTPUT_RANGES.get(config.output_activation, (-math.inf, math.inf))
        self.linear_path = config.linear_path
        if self.linear_path:
            self.to_code = nn.Linear(n, k)  # whitened coordinates -> code, started at the top k of them
            self.from_code = nn.Linear(k, n)  # code -> whitened coordinates, started as their inverse
            with torch.no_grad():
                for layer in (self.to_code, self.from_code):
                    layer.weight.copy_(torch.eye(*layer.weight.shape))
                    layer.bias.zero_()
                for mlp in (self.encoder, self.decoder):
                    mlp[-1].weight.mul_(START_SCALE)
                    mlp[-1].bias.zero_()
        # the sample the axes are fitted on: as many images as 1e8 values hold (32,000 at 32x32 RGB), at most
        # 50,000, at least 4 per axis
        self.init_sample = min(50_000, max(4 * n, int(1e8 // d)))
        # PCA's mean (C, H, W), axes (components, C*H*W, orthonormal rows) and the coordinates' standard
        # deviations, set by init_from_data; fixed, not trained (see resconv's linear path). Until then the axes
        # are the first `components` pixels, so a model built and trained outside the trainer still runs
        self.register_buffer("pixel_mean", torch.zeros(self.input_shape))
        self.register_buffer("basis", torch.eye(n, d))
        self.register_buffer("scale", torch.ones(n))
        self.register_buffer("pca_ready", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Fit the axes to training images ``x`` ``(n, C, H, W)`` (the trainer's seeded sample); once."""
        if bool(self.pca_ready):
            return
        flat = x.flatten(1).float()  # (n, D)
        mean = flat.mean(0)
        centred = flat - mean
        k = min(self.components, *flat.shape)
        with torch.random.fork_rng(devices=[]):  # svd_lowrank draws its sketch from torch's global generator
            torch.manual_seed(0)
            _, _, v = torch.svd_lowrank(centred, q=min(k + 16, *flat.shape), niter=4)  # v: (D, q)
        axes = v[:, :k].T.contiguous()  # (k, D)
        std = (centred @ axes.T).std(0)  # (k,)
        self.pixel_mean.copy_(mean.view(self.input_shape))
        self.basis.zero_()
        self.basis[:k].copy_(axes)  # any axes beyond the data's rank stay 0
        self.scale.fill_(1.0)
        self.scale[:k].copy_(torch.where(std > 1e-6 * std.max().clamp_min(1e-30), std, 1.0))
        self.pca_ready.fill_(True)

    def coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` -> their coordinates on the axes ``(B, components)``, in fp32."""
        with torch.autocast(x.device.type, enabled=False):
            return (x.float() - self.pixel_mean).flatten(1) @ self.basis.T

    def image(self, c: torch.Tensor) -> torch.Tensor:
        """Coordinates ``(B, components)`` -> images ``(B, C, H, W)``, in fp32, not clamped."""
        with torch.autocast(c.device.type, enabled=False):
            return self.pixel_mean + (c.float() @ self.basis).view(-1, *self.input_shape)

    def code_of(self, c: torch.Tensor) -> torch.Tensor:
        u = c / self.scale  # whitened: each coordinate of unit variance
        z = self.encoder(u)
        return z + self.to_code(u) if self.linear_path else z

    def coordinates_of(self, z: torch.Tensor) -> torch.Tensor:
        u = self.decoder(z)
        if self.linear_path:
            u = u + self.from_code(z)
        return u.float() * self.scale

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        c = self.coordinates(x)
        z = self.code_of(c)
        if self.training or self.monitoring or not self.config.inference_steps:
            return z
        return self.infer(z, c)

    @property
    def inference_lr(self) -> float:
        """The inference steps' learning rate: the field, or ``0.4 / sqrt(latent_dim)`` (a first step of length 0.4)."""
        return default_lr(self.config.inference_lr, self.latent_dim)

    def coordinates_and_slope(self, z: torch.Tensor, c: torch.Tensor, slope: bool = True):
        """Each image's squared error on the coordinates, ``|c_hat - c|^2 / D`` (its reconstruction's per-pixel
        MSE up to a constant), for codes ``z`` ``(B, k)``, and its gradient with respect to the code (``None``
        with ``slope=False``), written out (:func:`aekit.models.inference.trace`).
        """
        u, back = trace(self.decoder, z)
        if self.linear_path:
            u = u + self.from_code(z).float()
        c_hat = u * self.scale
        error = (c_hat - c).pow(2).sum(1) / self.input_dim
        if not slope:
            return error, None
        g_u = (2 / self.input_dim) * (c_hat - c) * self.scale  # d error / du
        g = back(g_u)
        if self.linear_path:
            g = g + (g_u @ self.from_code.weight).float()
        return error, g

    def infer(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The inference steps from the encoder's codes ``z`` for images of coordinates ``c`` (see
        :mod:`aekit.models.inference`).
        """
        c = c.float()
        return adam_steps(z, lambda z, slope=True: self.coordinates_and_slope(z, c, slope),
                          self.config.inference_steps, self.inference_lr)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.image(self.coordinates_of(z))
        low, high = self.output_range
        clamped = x.clamp(low, high)
        return x + (clamped - x).detach() if self.training else clamped  # straight-through in training

    def forward(self, x: torch.Tensor) -> ModelOutput:
        if not (self.training and self.config.loss == "mse" and self.config.alpha_loss == "channel") or len(x) == 0:
            return super().forward(x)
        c = self.coordinates(x)  # (B, K)
        z = self.code_of(c)
        c_hat = self.coordinates_of(z)  # (B, K) fp32
        with torch.autocast(x.device.type, enabled=False):
            outside = ((x.float() - self.pixel_mean).flatten(1).pow(2).sum(1) - c.pow(2).sum(1)).clamp_min(0)
            loss = ((c_hat - c).pow(2).sum(1) + outside).mean() / self.input_dim * self.config.loss_scale
        with torch.no_grad():  # the images, for whoever looks: in the autocast's precision (the loss is above)
            recon_x = (self.pixel_mean + (c_hat @ self.basis).view(-1, *self.input_shape)).clamp(*self.output_range)
        return ModelOutput(recon_x, z, terms={"recon": loss})

    def suits_bf16(self) -> bool:
        return True  # the MLPs' matmuls, under autocast; the axes and the loss stay in fp32
