"""Inference steps: moving each image's code towards the one its decoder reconstructs it best from.

An encoder network only approximates the best code for its decoder (PCA's projection is that
code, exactly). A model with ``inference_steps`` takes, when it encodes outside training, that
many steps of Adam on each image's squared reconstruction error from the encoder's code, the
decoder fixed (semi-amortised inference: Kim et al. 2018). An image whose error the steps do not
lower keeps the encoder's code.

The decoder's gradient is written out here, layer by layer (:func:`trace`), not taken by
autograd: the steps then run under ``no_grad`` and inside an exported ONNX encoder, which
tracing could not follow through ``torch.autograd.grad``.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(3, 8), nn.LayerNorm(8), nn.SiLU(), nn.Linear(8, 2))
>>> y, back = trace(net, torch.randn(4, 3))
>>> back(torch.ones(4, 2)).shape
torch.Size([4, 3])
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-12
FIRST_STEP = 0.4  # the default learning rate is FIRST_STEP / sqrt(code size): a first step of this length

Backward = Callable[[torch.Tensor], torch.Tensor]

# d activation(n) / dn, for each activation aekit builds (aekit.models.base.make_activation)
SLOPES: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda n: (n > 0).to(n.dtype),
    nn.LeakyReLU: lambda n: torch.where(n > 0, 1.0, 0.01).to(n.dtype),  # nn.LeakyReLU's default slope
    nn.ELU: lambda n: torch.where(n > 0, torch.ones_like(n), torch.exp(n.clamp_max(0))),
    nn.Tanh: lambda n: 1 - torch.tanh(n) ** 2,
    nn.Sigmoid: lambda n: torch.sigmoid(n) * (1 - torch.sigmoid(n)),
    nn.Identity: lambda n: torch.ones_like(n),
    nn.GELU: lambda n: 0.5 * (1 + torch.erf(n / math.sqrt(2))) + n * torch.exp(-0.5 * n * n) / math.sqrt(2 * math.pi),
    nn.SiLU: lambda n: torch.sigmoid(n) * (1 + n * (1 - torch.sigmoid(n))),
}


def _normalised(unit: torch.Tensor, rstd: torch.Tensor, g: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Gradient through ``unit = (a - mean) * rstd`` (mean and variance over ``dims``): d/da from d/d unit."""
    return rstd * (g - g.mean(dims, keepdim=True) - unit * (g * unit).mean(dims, keepdim=True))


def trace(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Backward]:
    """``module(x)`` and a function from the gradient with respect to the output to the gradient with respect
    to ``x``, written out for the layers aekit's decoders are built of: linear, 3x3 convolution of stride 1,
    layer and group norm, the activations, sequences, and any module with a ``trace(x)`` method of its own
    (a residual block, an upsampling step). The outputs and gradients are fp32; the products run in the
    autocast's precision. Raises ``TypeError`` for any other layer.
    """
    if hasattr(module, "trace"):
        return module.trace(x)
    if isinstance(module, nn.Sequential):
        backs = []
        for layer in module:
            x, back = trace(layer, x)
            backs.append(back)

        def chain(g):
            for back in reversed(backs):
                g = back(g)
            return g
        return x, chain
    if isinstance(module, nn.Linear):
        return module(x).float(), lambda g: (g @ module.weight).float()
    if isinstance(module, nn.Conv2d):
        if module.stride != (1, 1) or module.dilation != (1, 1) or module.groups != 1 or \
                module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise TypeError(f"inference steps: no written-out gradient for {module}")
        return module(x).float(), lambda g: F.conv_transpose2d(g, module.weight, padding=module.padding).float()
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
        x = x.float()
        if isinstance(module, nn.LayerNorm):
            dims, grouped = tuple(range(-len(module.normalized_shape), 0)), x
            weight = module.weight if module.elementwise_affine else 1.0
            bias = module.bias if module.bias is not None else 0.0
            ungroup = regroup = lambda t: t  # noqa: E731
        else:  # (B, G, C/G, ...): no batch size written into an exported graph
            grouped = x.unflatten(1, (module.num_groups, -1))
            dims = tuple(range(2, grouped.dim()))
            weight = module.weight.view(-1, *([1] * (x.dim() - 2))) if module.affine else 1.0
            bias = module.bias.view(-1, *([1] * (x.dim() - 2))) if module.affine else 0.0
            ungroup, regroup = (lambda t: t.flatten(1, 2)), (lambda t: t.unflatten(1, (module.num_groups, -1)))
        mean, var = grouped.mean(dims, keepdim=True), grouped.var(dims, unbiased=False, keepdim=True)
        rstd = torch.rsqrt(var + module.eps)
        unit = (grouped - mean) * rstd
        return ungroup(unit) * weight + bias, lambda g: ungroup(_normalised(unit, rstd, regroup(g * weight), dims))
    slope = SLOPES.get(type(module))
    if slope is not None:
        x = x.float()
        return module(x), lambda g: g * slope(x)
    raise TypeError(f"inference steps: no written-out gradient for {type(module).__name__}")


def adam_steps(z: torch.Tensor, error_and_slope: Callable, steps: int, lr: float) -> torch.Tensor:
    """``steps`` steps of Adam from codes ``z`` ``(B, k)`` on each row's own error: ``error_and_slope(z)`` gives
    each image's error ``(B,)`` and its gradient with respect to ``z``. A row whose error the steps do not lower
    keeps its code.
    """
    (b1, b2) = ADAM_BETAS
    z = first = z.float()
    m, v = torch.zeros_like(z), torch.zeros_like(z)
    before = None
    for k in range(1, steps + 1):
        error, g = error_and_slope(z)
        if before is None:
            before = error
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        z = z - lr * (m / (1 - b1 ** k)) / ((v / (1 - b2 ** k)).sqrt() + ADAM_EPS)
    if before is None:
        return z
    after, _ = error_and_slope(z, slope=False)
    return torch.where((after < before)[:, None], z, first)


def default_lr(lr: float | None, code_size: int) -> float:
    """The inference steps' learning rate: ``lr``, or ``FIRST_STEP / sqrt(code_size)`` when unset."""
    return lr if lr is not None else FIRST_STEP / math.sqrt(code_size)
