"""The base every autoencoder shares: hooks, the output record, the reconstruction loss."""

from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import ConfigError, InputError
from aekit.metric import Metric
from aekit.pixels import model_input, to_model

RESERVED_TERMS = ("loss", "recon_loss", "reg_loss", "mse")  # metrics.jsonl already has train_/test_ + these


class ModelOutput:
    """What every model's ``forward`` returns (the same record for all variants).

    ``terms`` are the loss's named parts, scalars, in the order the model lists them;
    ``loss``, what the trainer minimises, is their sum, computed once here. ``"recon"``
    names the reconstruction term; any other name (``"kl"``, ``"sparsity"``) is a
    penalty, and the trainer logs each as ``train_<name>`` and ``test_<name>`` in
    metrics.jsonl beside ``train_loss``, ``train_recon_loss`` and ``train_reg_loss``
    (the sum of the penalties). The older keywords still build one:
    ``ModelOutput(recon_x, z, loss, recon_loss, reg_loss)`` gives the terms
    ``recon`` and ``reg``.
    """

    __slots__ = ("recon_x", "z", "terms", "loss")

    def __init__(self, recon_x: torch.Tensor, z: torch.Tensor, loss: torch.Tensor | None = None,
                 recon_loss: torch.Tensor | None = None, reg_loss: torch.Tensor | None = None, *,
                 terms: dict[str, torch.Tensor] | None = None):
        if terms is None:  # the fixed pair of the earlier record
            if recon_loss is None:
                raise TypeError("ModelOutput: give terms={'recon': ..., ...} (or recon_loss and reg_loss)")
            terms = {"recon": recon_loss, **({} if reg_loss is None else {"reg": reg_loss})}
        elif recon_loss is not None or reg_loss is not None:
            raise TypeError("ModelOutput: give either terms or recon_loss/reg_loss, not both")
        if not terms:
            raise TypeError("ModelOutput: terms is empty; a loss needs at least one term")
        self.recon_x = recon_x  # (B, C, H, W)
        self.z = z  # (B, *code_shape): the code the decoder read
        self.terms = terms  # name -> scalar
        if loss is None:
            values = iter(terms.values())
            loss = next(values)
            for value in values:  # left to right, as recon + reg was written before
                loss = loss + value
        self.loss = loss  # scalar: the sum of the terms

    @property
    def recon_loss(self) -> torch.Tensor:
        """The ``"recon"`` term (zero when the model has none)."""
        found = self.terms.get("recon")
        return found if found is not None else self.loss.new_zeros(())

    @property
    def reg_loss(self) -> torch.Tensor:
        """The sum of every term but ``"recon"`` (zero when there is none)."""
        rest = [v for k, v in self.terms.items() if k != "recon"]
        if not rest:
            return self.loss.new_zeros(())
        total = rest[0]
        for value in rest[1:]:
            total = total + value
        return total

    def __repr__(self) -> str:
        return f"ModelOutput(terms={sorted(self.terms)}, recon_x={tuple(self.recon_x.shape)}, z={tuple(self.z.shape)})"


def check_term_names(names, where: str = "model") -> None:
    """Refuse term names that would not make their own metrics.jsonl keys (a programming error)."""
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED_TERMS:
            raise ValueError(f"{where}: loss term name {name!r} must be an identifier and none of {RESERVED_TERMS}")


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
    """Check flat codes handed to the API and return them as float32 ``(N, latent_dim)``
    (``latent_dim``: the model's ``code_size``, the width of its flat codes).

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


@contextlib.contextmanager
def monitoring(module: nn.Module):
    """Within: every :class:`AutoEncoder` in ``module`` (a model, a phase's module, a DDP wrapper) has
    ``monitoring`` set, for the trainer's scoring of each epoch.
    """
    models = [m for m in module.modules() if isinstance(m, AutoEncoder)]
    before = [m.__dict__.get("monitoring") for m in models]
    for m in models:
        m.monitoring = True
    try:
        yield
    finally:
        for m, value in zip(models, before):
            if value is None:
                m.__dict__.pop("monitoring", None)
            else:
                m.monitoring = value


class AutoEncoder(nn.Module):
    """The base class of every model.

    A variant overrides the hooks it needs:

    - ``encode(x) -> z`` and ``decode(z) -> recon_x``: the two halves;
    - ``corrupt(x)``: applied to the input in training mode only (denoising);
    - ``penalties(x, z) -> {name: scalar}``: named terms added to the reconstruction
      loss (sparse: ``sparsity``, contractive: ``contraction``); the older single-term
      ``regularizer(x, z)`` still works and becomes the term ``reg``;
    - ``forward(x) -> ModelOutput``: the whole step, for models whose code is not a plain
      function (VAE: terms ``recon`` and ``kl``).

    What the code is (see docs/adding-a-model.md): ``code_shape``, a tuple, ``(latent_dim,)``
    by default or ``(C, h, w)`` for a grid; ``code_kind``, ``"continuous"`` (floats) or
    ``"indices"`` (integers below ``code_levels``, a codebook's). :meth:`flat_codes` and
    :meth:`unflat_codes` turn any code into the ``(B, code_size)`` float features that
    evaluation, export, scikit-learn and the pictures work on, and back.

    Generic hooks the trainer calls on any model, without knowing which it is:

    - ``on_train_step(epoch_progress)``: before every training step, with the epochs
      done so far as a float (1.5: half way through the second); schedules such as a
      KL warm-up read it;
    - ``pretraining_stages()``: greedy stages trained, in order, before the first epoch;
    - ``gradient_function()``: the loss and its gradients written out by hand, where a
      model's backward pass is short enough to skip autograd's bookkeeping;
    - ``init_from_data(x)``: once before a new run's first step, with a sample of training
      images (``init_sample`` of them; resconv starts its linear path at their PCA);
    - ``after_optimizer_step()``: after every optimiser step (an EMA codebook update goes here);
    - ``anomaly_score(x) -> (B,)``: how unusual each image is to the model (default: its
      reconstruction error; the VAE: its negative ELBO).

    While the trainer scores the held-out splits after each epoch, :func:`monitoring` sets
    ``monitoring`` on the model: a model may then skip work that only refines its codes beyond
    what its networks give (pcamlp's inference steps), so that the per-epoch figures stay cheap.

    A model whose codes follow a known prior sets ``is_generative`` and implements
    ``sample(n)``; any model can interpolate and traverse its codes.

    :meth:`encode_images`, :meth:`reconstruct_images` and :meth:`decode_codes` run the
    model on whole arrays (uint8 pixels in, numpy out) in batches, in eval mode.
    """

    name = "base"  # set by @register_model
    summary = ""
    config_class = ModelConfig
    is_generative = False  # True: sample(n) draws from a prior over codes
    code_kind = "continuous"  # or "indices": integer codes below code_levels, flattened one-hot
    code_levels = 0  # for "indices": how many values a code unit takes (a codebook's size)
    monitoring = False  # True while the trainer scores an epoch (see monitoring())

    def __init__(self, config: ModelConfig, input_shape: tuple[int, int, int]):
        super().__init__()
        self.config = config
        self.input_shape = tuple(input_shape)  # (C, H, W)
        self.latent_dim = config.latent_dim
        if getattr(config, "alpha_loss", "channel") == "mask" and self.input_shape[0] != 4:
            raise ConfigError(f"model.alpha_loss: mask needs 4-channel images (data.color_mode rgba); these have "
                              f"{self.input_shape[0]}")

    @property
    def input_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def code_shape(self) -> tuple[int, ...]:
        """One image's code: ``(latent_dim,)`` unless a model declares a grid such as ``(C, h, w)``."""
        return (self.latent_dim,)

    @property
    def code_size(self) -> int:
        """Width of :meth:`flat_codes`: the code's units, times ``code_levels`` for index codes (one-hot)."""
        return math.prod(self.code_shape) * (self.code_levels if self.code_kind == "indices" else 1)

    def flat_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, *code_shape)`` as flat float features ``(B, code_size)`` (index codes one-hot).

        The one adapter between a model's own codes and everything that needs a vector:
        evaluation (PCA's size, probes, k-means), export, scikit-learn, the pictures. A
        vector code passes unchanged. A model with a codebook may override this (and
        :meth:`unflat_codes`) to give its code vectors instead of one-hot rows.
        """
        if self.code_kind == "indices":
            return F.one_hot(z.long().flatten(1), self.code_levels).flatten(1).float()  # (B, n, K) -> (B, n*K)
        return z.flatten(1) if z.dim() != 2 else z  # (B, *code_shape) -> (B, D)

    def unflat_codes(self, features: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`flat_codes`: ``(B, code_size)`` -> codes ``(B, *code_shape)``
        (index codes: the largest of each unit's ``code_levels`` features).
        """
        if self.code_kind == "indices":
            n = math.prod(self.code_shape)
            return features.reshape(len(features), n, self.code_levels).argmax(2).view(-1, *self.code_shape)
        return features if len(self.code_shape) == 1 else features.reshape(-1, *self.code_shape)

    def describe_code(self) -> str:
        """What one flat code is, for titles and messages: ``16-D code`` or
        ``codes flattened: 4x7x7 grid = 196 features``.
        """
        shape = self.code_shape
        if len(shape) == 1 and self.code_kind != "indices":
            return f"{shape[0]}-D code"
        grid = "x".join(map(str, shape))
        what = f"{grid} grid of indices below {self.code_levels}, one-hot" if self.code_kind == "indices" \
            else f"{grid} grid"
        return f"codes flattened: {what} = {self.code_size} features"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def regularizer(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The older one-penalty hook; overridden, its value becomes the term ``reg`` (see :meth:`penalties`)."""
        return x.new_zeros(())

    def penalties(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named scalar terms added to the reconstruction loss by the default ``forward``; none by default."""
        if type(self).regularizer is not AutoEncoder.regularizer:
            return {"reg": self.regularizer(x, z)}
        return {}

    init_sample = 0  # init_from_data's sample size: the trainer passes up to this many training images (0: none)

    def init_from_data(self, x: torch.Tensor) -> None:
        """A start fitted to the data: called by the trainer once, before the first step of a new run (not on a
        resume), with up to :attr:`init_sample` training images ``(n, C, H, W)`` in the model's range, seeded by
        the run's seed; nothing by default. What it sets must live in the ``state_dict`` (resconv's linear path:
        PCA's mean and axes).
        """

    def after_optimizer_step(self) -> None:
        """Called by the trainer after every optimiser step of the main run (an EMA update); nothing by default.

        Runs under ``torch.no_grad``; anything it changes that a resume needs must live in
        the model's ``state_dict`` (a buffer), which every checkpoint holds.
        """

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """How unusual each image ``x`` ``(B, C, H, W)`` is to the model, higher is more: ``(B,)`` float64.

        By default the reconstruction error, mean squared per feature, summed in float64
        (a float32 mean over many pixels loses digits that rank close images).
        """
        return (self.decode(self.encode(x)) - x).pow(2).flatten(1).double().mean(1)

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

    def suits_bf16(self) -> bool:
        """Whether bf16 autocast holds this model's quality and pays for its casts: ``precision auto``
        trains in bf16 on hardware that has it only where this says so. The default is the rule
        measured on the presets (:func:`aekit.models.cost.bf16_pays`); a model file may override it.
        """
        from aekit.models.cost import bf16_pays

        return bf16_pays(self)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` decoded from codes drawn from the prior."""
        raise NotImplementedError(f"{self.name} has no prior over its codes; use sample_from_codes")

    @torch.no_grad()
    def sample_from_codes(self, codes: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from a Gaussian fitted (mean, full covariance) to ``codes`` ``(N, k)``.

        For a model with no prior this is the simplest density over codes that knows
        where the data lies: a standard normal could land far from every training code.
        """
        codes = self.flat_codes(codes) if codes.dim() != 2 else codes  # (N, code_size)
        mean = codes.mean(0)
        centred = codes - mean  # (N, k)
        cov = centred.T @ centred / max(len(codes) - 1, 1)  # (k, k)
        # a little jitter keeps the Cholesky factor real when some code units are constant
        jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
        chol = torch.linalg.cholesky(cov + jitter * torch.eye(len(mean), device=cov.device, dtype=cov.dtype))
        eps = torch.randn(n, len(mean), generator=generator).to(codes)
        return self.decode(self.unflat_codes(mean + eps @ chol.T))

    @torch.no_grad()
    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, steps: int) -> torch.Tensor:
        """Decode ``steps`` codes evenly spaced from ``encode(x_a)`` to ``encode(x_b)`` (ends included).

        ``x_a``, ``x_b``: one image each, ``(C, H, W)``; returns ``(steps, C, H, W)``.
        """
        z = self.flat_codes(self.encode(torch.stack([x_a, x_b])))  # (2, code_size)
        t = torch.linspace(0, 1, steps, device=z.device)[:, None]  # (steps, 1)
        return self.decode(self.unflat_codes((1 - t) * z[0] + t * z[1]))

    @torch.no_grad()
    def traverse(self, z: torch.Tensor, dim: int, values: torch.Tensor) -> torch.Tensor:
        """Decode copies of the flat code ``z`` ``(code_size,)`` with unit ``dim`` set to each of ``values``."""
        codes = z.repeat(len(values), 1)  # (len(values), code_size)
        codes[:, dim] = values.to(codes)
        return self.decode(self.unflat_codes(codes))

    def metrics(self) -> Sequence[Metric]:
        """Metrics of this model's own (:class:`aekit.metric.Metric`, ``needs="model"``), which ``aekit eval``
        computes and reports beside the built-ins; none by default.
        """
        return ()

    def encode_images(self, images, scale: str = "unit", batch_size: int = 1000) -> np.ndarray:
        """Flat codes ``(N, code_size)`` float32 (:meth:`flat_codes`) of images (uint8, or floats in
        ``scale``; the shapes :func:`aekit.pixels.model_input` accepts).
        """
        x = model_input(images, self.input_shape, scale)
        return self._in_batches(x, scale, batch_size, lambda x: self.flat_codes(self.encode(x)), (self.code_size,))

    def reconstruct_images(self, images, scale: str = "unit", batch_size: int = 1000) -> np.ndarray:
        """Reconstructions ``(N, C, H, W)`` float32, in the model's pixel range ``scale``."""
        x = model_input(images, self.input_shape, scale)
        return self._in_batches(x, scale, batch_size, lambda x: self(x).recon_x, self.input_shape)

    def decode_codes(self, z, batch_size: int = 1000) -> np.ndarray:
        """Images ``(N, C, H, W)`` float32, in the model's pixel range, decoded from flat codes
        ``(N, code_size)`` (finite numbers: :func:`model_codes`; what :meth:`encode_images` gives).
        """
        z = torch.from_numpy(model_codes(z, self.code_size))
        return self._in_batches(z, None, batch_size, lambda z: self.decode(self.unflat_codes(z)), self.input_shape)

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

        With ``alpha_loss="mask"`` the mean is weighted by the true alpha (see
        :func:`aekit.models.losses.alpha_masked`).

        Always in fp32, also under autocast: a mean over every pixel of the batch in low
        precision would lose digits (and CUDA's autocast refuses a low-precision BCE).
        """
        with torch.autocast(recon_x.device.type, enabled=False):
            recon_x, x = recon_x.float(), x.float()
            if getattr(self.config, "alpha_loss", "channel") == "mask":
                from aekit.models.losses import alpha_masked

                loss = alpha_masked(self.config.loss, recon_x, x)
            elif self.config.loss == "bce":
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
        return ModelOutput(recon_x, z, terms={"recon": recon_loss, **self.penalties(x_in, z)})
