"""The arithmetic of a run: fp32, or bf16 / fp16 autocast (fp16 with a gradient scaler).

One :class:`Precision` object owns everything about it: the autocast context of the
forward pass, the gradient scaler, the step that is skipped when a loss or gradient is not
finite (``--on-nan skip``) and, on the CPU, the handling of denormal numbers. It is chosen
and checked (:func:`choose_precision`) before a run writes any file, and the run records
its name in ``config.json`` and in every checkpoint; a resumed run keeps it.

Under autocast the matrix products and convolutions run in the low precision while
losses, reductions and the optimiser's update stay in fp32 (the model base computes
the reconstruction loss in fp32 itself). ``auto`` picks bf16 only where

- the hardware runs it natively (:func:`native_bf16`), and
- the model declares that bf16 suits it (``AutoEncoder.suits_bf16``; by default the
  measured rule of :mod:`aekit.models.cost`: enough multiply-adds per image for bf16 to
  pay, and every preset of that size kept its test loss within 1% of fp32's);

otherwise fp32. ``benchmarks/precision.py`` prints the evidence.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from aekit.errors import ConfigError
from aekit.models.cost import AUTO_BF16_MIN_MACS, BF16_HOLDS_QUALITY, multiply_adds  # noqa: F401 (their home before)

NAMES = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# Flush denormal numbers to zero while training on the CPU (torch.set_flush_denormal): from the evidence of
# benchmarks/denormals.py (docs/scale.md, "Denormal numbers").
FLUSH_DENORMAL_ON_CPU = True


@functools.lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def resolve_precision(name: str, device: torch.device, model: torch.nn.Module | None = None) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for the ``train.precision`` setting ``name`` on ``device``
    (a :class:`~aekit.errors.ConfigError` naming the field where this device cannot run it).
    """
    if name == "auto":
        suits = model is None or getattr(model, "suits_bf16", lambda: True)()
        return "bf16" if native_bf16(device) and suits else "fp32"
    if name not in NAMES:
        raise ConfigError(f"train.precision: {name!r} is not one of auto, {', '.join(NAMES)}")
    if name == "fp16" and device.type == "mps":
        raise ConfigError("train.precision: fp16 autocast is not supported on mps; use fp32 or bf16")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision: this CUDA device has no bf16; use fp32 or fp16")
    return name


def choose_precision(cfg, image_shape, device: torch.device, recorded: str | None = None) -> str:
    """The precision a run trains in, decided before it writes a file: ``recorded`` (the one a resumed
    run started with), else ``cfg.train.precision`` resolved for ``device`` and the model ``cfg``
    builds for images of ``image_shape`` ``(C, H, W)``; that model is built on the CPU with torch's
    random state put back afterwards, so the run's own initialisation draws the same numbers.
    """
    if recorded is not None:
        return resolve_precision(recorded, device)  # still checked: a resume may move to another device
    model = None
    if cfg.train.precision == "auto":
        from aekit.models import create_model

        with torch.random.fork_rng(devices=[]):
            model = create_model(cfg.model, tuple(image_shape))
    return resolve_precision(cfg.train.precision, device, model)


def autocast(precision: str, device: torch.device):
    """A context for the forward pass: autocast to ``precision``, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


class Precision:
    """The arithmetic of one run on one device: autocast, the gradient scaler, the skipped step.

    ``name`` is ``fp32``, ``bf16`` or ``fp16`` (checked for ``device``); ``skip_non_finite``
    (``--on-nan skip``) makes a step whose loss or gradient is not finite leave the weights
    and the optimiser as they were. The trainer calls :meth:`start` when a phase gets its
    optimiser, :meth:`autocast` around the forward pass, then :meth:`backward` and
    :meth:`step`; :meth:`numerics` around the whole of training.

    Steps are skipped through torch's public :class:`torch.amp.GradScaler`: fp16's scales
    the loss (fp16's small range would underflow small gradients); for ``skip_non_finite``
    in fp32 and bf16 it runs at a constant scale of 1 (multiplying by 1 changes no bit) only
    to hand the optimiser its check, so that fused Adam skips the step on the device with
    no host sync.
    """

    def __init__(self, name: str, device: torch.device | str, skip_non_finite: bool = False):
        if name == "auto":
            raise ConfigError("train.precision: resolve auto first (resolve_precision or choose_precision)")
        self.device = torch.device(device)
        self.name = resolve_precision(name, self.device)  # checked for the device
        self.skip_non_finite = skip_non_finite
        self.flush_denormal = FLUSH_DENORMAL_ON_CPU and self.device.type == "cpu"
        self.scaler: torch.amp.GradScaler | None = None

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:  # compares with the name too: trainer.precision == "fp32"
        return self.name == (other.name if isinstance(other, Precision) else other)

    __hash__ = None

    @property
    def skips(self) -> bool:
        """Whether a step can be skipped (counted in ``skipped_steps``) instead of stopping the run."""
        return self.name == "fp16" or self.skip_non_finite

    def autocast(self):
        return autocast(self.name, self.device)

    def start(self) -> None:
        """A fresh scaler for a new optimiser (its state goes with the optimiser's)."""
        if self.name == "fp16":
            self.scaler = torch.amp.GradScaler(self.device.type)
        elif self.skip_non_finite:
            self.scaler = torch.amp.GradScaler(self.device.type, init_scale=1.0)
            self.scaler.scale(torch.ones((), device=self.device))  # makes its scale tensor, on this device
        else:
            self.scaler = None

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.name == "fp16" else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params) -> torch.Tensor | None:
        """The optimiser's step on the gradients ``params`` hold; returns whether the step counted
        (a 0-d bool tensor, on the device) where a step can be skipped, else ``None``.
        """
        scaler = self.scaler
        if scaler is None:
            optimizer.step()
            return None
        ok = torch.isfinite(loss.detach())
        if self.name != "fp16":
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                ok = ok & torch.stack([torch.isfinite(g).all() for g in grads]).all()
                # a non-finite loss can come with finite gradients (a square past fp32's range): make one
                # gradient NaN then, so the scaler's own check skips the step; times 1 changes no bit
                grads[0].mul_(torch.where(ok, 1.0, torch.nan))
        scaler.step(optimizer)
        scaler.update(None if self.name == "fp16" else 1.0)
        return ok

    @contextlib.contextmanager
    def numerics(self):
        """Training's CPU numerics: denormal numbers flushed to zero where :data:`FLUSH_DENORMAL_ON_CPU`
        says, the previous setting given back afterwards.

        The setting is the CPU thread's own: torch sets it for the calling thread, and a thread
        started later inherits it. So torch's pool of intra-op threads is started first (one op
        large enough to run in parallel), and then, in every process, the thread that trains
        flushes and the pool's threads do not: a run and its resumption in another process do
        the same arithmetic, whenever the pool would otherwise have started.
        """
        if not self.flush_denormal:
            yield
            return
        torch.zeros(1 << 17).add_(1.0)  # (131072,): past torch's grain size, so the pool starts now if not yet
        before = flushing_denormals()
        torch.set_flush_denormal(True)
        try:
            yield
        finally:
            torch.set_flush_denormal(before)

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None and self.name == "fp16" else None

    def load_state_dict(self, state: dict | None) -> None:
        if state and self.scaler is not None and self.name == "fp16":
            self.scaler.load_state_dict(state)


def flushing_denormals() -> bool:
    """Whether the CPU flushes denormal numbers to zero now (torch can set this but not report it)."""
    tiny = torch.tensor(1e-39)  # a denormal in fp32
    return bool(tiny.mul(1.0) == 0)
