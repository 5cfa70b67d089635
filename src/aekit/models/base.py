"""The base every autoencoder shares: hooks, the output record, the reconstruction loss."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import InputError
from aekit.pixels import model_input, to_model


@dataclass
class ModelOutput:
    """What every model's ``forward`` returns (the same record for all variants)."""

    recon_x: torch.Tensor  # (B, C, H, W)
    z: torch.Tensor  # (B, latent_dim)
    loss: torch.Tensor  # scalar: recon_loss + reg_loss, what the trainer minimises
    recon_loss: torch.Tensor  # scalar
    reg_loss: torch.Tensor  # scalar, 0 for a plain autoencoder


@dataclass
class PretrainingStage:
    """One step of greedy pre-training a model asks for (see ``AutoEncoder.pretraining_stages``).

    ``module(x)`` takes the same images as the model and returns a :class:`ModelOutput`
    whose ``recon_x`` has the images' shape; only ``module.parameters()`` are trained.
    """

    name: str
    module: nn.Module
    epochs: int


def binary_cross_entropy(recon_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``F.binary_cross_entropy(recon_x, x)`` (mean), except that a NaN in ``recon_x`` gives a NaN loss.

    The kernel refuses any input outside [0, 1], a NaN included (on the CPU a RuntimeError,
    on CUDA a device-side assert that ends the process), and a diverging model's sigmoid
    outputs NaN. Masked this way the NaN reaches the trainer's divergence check and
    ``--on-nan skip`` like any other non-finite loss, with no host sync; where nothing is
    NaN the loss and its gradient are the kernel's, bit for bit.
    """
    bad = torch.isnan(recon_x)
    loss = F.binary_cross_entropy(recon_x.masked_fill(bad, 0.5), x)
    return torch.where(bad.any(), torch.nan, loss)


def model_codes(z, latent_dim: int) -> np.ndarray:
    """Check codes handed to the API and return them as float32 ``(N, latent_dim)``.

    Accepted: numbers (numpy arrays, tensors or nested lists) shaped ``(N, latent_dim)``,
    finite in float32. Anything else is an :class:`~aekit.errors.InputError` naming ``z``:
    a wrong shape would fail inside the decoder's first layer, and a NaN or infinite code
    would decode to NaN images without a word.
    """
    expected = f"expected (N, {latent_dim}), N codes of the model's {latent_dim} units"
    try:
        array = z.detach().cpu().numpy() if hasattr(z, "detach") else np.asarray(z)
    except (TypeError, ValueError):  # ragged lists, objects numpy cannot hold
        raise InputError(f"z: not an array of codes (ragged, or not numbers); {expected}") from None
    if array.dtype == object or array.dtype.kind not in "uif":
        raise InputError(f"z: expected numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != latent_dim:
        hint = f"; one code: z[None], shape (1, {latent_dim})" if array.shape == (latent_dim,) else ""
        raise InputError(f"z: shape {array.shape} does not fit the model's codes; {expected}{hint}")
    if len(array) == 0:
        raise InputError(f"z: no codes given (shape {array.shape}); {expected}")
    with np.errstate(over="ignore"):  # a float64 past float32's range becomes inf, refused just below
        codes = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(codes).all():
        where = "" if not np.isfinite(array).all() else " in float32 (beyond its range, about 3.4e38)"
        raise InputError(f"z: the codes include NaN or infinity{where}")
    return codes


def make_activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity,
        "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
    }[name]()


class AutoEncoder(nn.Module):
    """The base class of every model.

    A variant overrides the hooks it needs:

    - ``encode(x) -> z`` and ``decode(z) -> recon_x``: the two halves;
    - ``corrupt(x)``: applied to the input in training mode only (denoising);
    - ``regularizer(x, z)``: added to the reconstruction loss (sparse, contractive);
    - ``forward(x)``: the whole step, for models whose code is not a plain function (VAE).

    Generic hooks the trainer calls on any model, without knowing which it is:

    - ``on_train_step(epoch_progress)``: before every training step, with the epochs
      done so far as a float (1.5: half way through the second); schedules such as a
      KL warm-up read it;
    - ``pretraining_stages()``: greedy stages trained, in order, before the first epoch;
    - ``gradient_function()``: the loss and its gradients written out by hand, where a
      model's backward pass is short enough to skip autograd's bookkeeping.

    A model whose codes follow a known prior sets ``is_generative`` and implements
    ``sample(n)``; any model can interpolate and traverse its codes.

    :meth:`encode_images`, :meth:`reconstruct_images` and :meth:`decode_codes` run the
    model on whole arrays (uint8 pixels in, numpy out) in batches, in eval mode.
    """

    name = "base"  # set by @register_model
    summary = ""
    config_class = ModelConfig
    is_generative = False  # True: sample(n) draws from a prior over codes

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

    def on_train_step(self, epoch_progress: float) -> None:
        """Called by the trainer before each training step; nothing by default."""

    def pretraining_stages(self) -> Sequence[PretrainingStage]:
        """Stages the trainer runs before the first epoch; none by default."""
        return ()

    def gradient_function(self) -> Callable[[torch.Tensor], ModelOutput] | None:
        """A function ``x -> ModelOutput`` that also sets every parameter's ``.grad`` to the gradient
        of its ``loss``, written out without autograd; ``None`` (the default): the trainer uses autograd.

        It must be this model's ``forward`` in training mode, gradients included, to the last
        bit (the trainer calls it in its place for fp32 training in one process).
        """
        return None

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` decoded from codes drawn from the prior."""
        raise NotImplementedError(f"{self.name} has no prior over its codes; use sample_from_codes")

    @torch.no_grad()
    def sample_from_codes(self, codes: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from a Gaussian fitted (mean, full covariance) to ``codes`` ``(N, k)``.

        For a model with no prior this is the simplest density over codes that knows
        where the data lies: a standard normal could land far from every training code.
        """
        mean = codes.mean(0)
        centred = codes - mean  # (N, k)
        cov = centred.T @ centred / max(len(codes) - 1, 1)  # (k, k)
        # a little jitter keeps the Cholesky factor real when some code units are constant
        jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
        chol = torch.linalg.cholesky(cov + jitter * torch.eye(len(mean), device=cov.device, dtype=cov.dtype))
        eps = torch.randn(n, len(mean), generator=generator).to(codes)
        return self.decode(mean + eps @ chol.T)

    @torch.no_grad()
    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, steps: int) -> torch.Tensor:
        """Decode ``steps`` codes evenly spaced from ``encode(x_a)`` to ``encode(x_b)`` (ends included).

        ``x_a``, ``x_b``: one image each, ``(C, H, W)``; returns ``(steps, C, H, W)``.
        """
        z = self.encode(torch.stack([x_a, x_b]))  # (2, k)
        t = torch.linspace(0, 1, steps, device=z.device)[:, None]  # (steps, 1)
        return self.decode((1 - t) * z[0] + t * z[1])

    @torch.no_grad()
    def traverse(self, z: torch.Tensor, dim: int, values: torch.Tensor) -> torch.Tensor:
        """Decode copies of the code ``z`` ``(k,)`` with unit ``dim`` set to each of ``values``."""
        codes = z.repeat(len(values), 1)  # (len(values), k)
        codes[:, dim] = values.to(codes)
        return self.decode(codes)

    def encode_images(self, images, scale: str = "unit", batch_size: int = 1000) -> np.ndarray:
        """Codes ``(N, latent_dim)`` float32 of images (uint8, or floats in ``scale``; the shapes
        :func:`aekit.pixels.model_input` accepts).
        """
        x = model_input(images, self.input_shape, scale)
        return self._in_batches(x, scale, batch_size, self.encode, (self.latent_dim,))

    def reconstruct_images(self, images, scale: str = "unit", batch_size: int = 1000) -> np.ndarray:
        """Reconstructions ``(N, C, H, W)`` float32, in the model's pixel range ``scale``."""
        x = model_input(images, self.input_shape, scale)
        return self._in_batches(x, scale, batch_size, lambda x: self(x).recon_x, self.input_shape)

    def decode_codes(self, z, batch_size: int = 1000) -> np.ndarray:
        """Images ``(N, C, H, W)`` float32, in the model's pixel range, decoded from codes ``(N, latent_dim)``
        (finite numbers: :func:`model_codes`).
        """
        z = torch.from_numpy(model_codes(z, self.latent_dim))
        return self._in_batches(z, None, batch_size, self.decode, self.input_shape)

    @torch.no_grad()
    def _in_batches(self, inputs, scale: str | None, batch_size: int, fn: Callable, out_shape) -> np.ndarray:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise InputError(f"batch_size: must be a positive integer, got {batch_size!r}")
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        outs = []
        try:
            for i in range(0, len(inputs), batch_size):
                x = torch.as_tensor(np.asarray(inputs[i:i + batch_size]))
                if scale is not None:
                    x = to_model(x, scale)
                outs.append(fn(x.to(device)).float().cpu().numpy())
        finally:
            self.train(was_training)
        return np.concatenate(outs) if outs else np.zeros((0, *out_shape), np.float32)

    def reconstruction_loss(self, recon_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean per pixel, times ``loss_scale`` (0.5 gives the textbook's 0.5*MSE).

        Always in fp32, also under autocast: a mean over every pixel of the batch in low
        precision would lose digits (and CUDA's autocast refuses a low-precision BCE).
        """
        with torch.autocast(recon_x.device.type, enabled=False):
            recon_x, x = recon_x.float(), x.float()
            if self.config.loss == "bce":
                loss = binary_cross_entropy(recon_x, x)
            elif self.config.loss in ("l1", "ssim"):
                from aekit.models.losses import LOSSES  # the losses for photos, beside these two

                loss = LOSSES[self.config.loss](recon_x, x)
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
