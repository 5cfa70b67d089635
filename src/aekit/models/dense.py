"""A dense chain's loss and gradients written out: the fully connected autoencoder's step without autograd.

A chain of ``nn.Linear`` layers, each followed by tanh, sigmoid, ReLU or nothing, scored
by MSE or BCE against its input, has a backward pass short enough to write by hand: per
layer the activation's derivative, one matrix product for the weight, a sum for the bias
and one product for the layer below. :class:`DenseChain` writes it with the same aten
kernels autograd calls, on tensors of the same layouts and in the same order, so its
gradients are autograd's bit for bit (``tests/test_dense.py`` holds that for every
activation, both losses and a ``loss_scale``). What it skips is the graph: recording
every op, the engine's walk back through it, and accumulating each gradient. On the seed
presets' small networks, whose step is half fixed cost per op, that is about a fifth of
a training step (``benchmarks/speed.py``).

Layout, batch size ``B`` and layer ``i`` with weight ``W_i`` ``(out, in)``::

    forward   a_i = h_{i-1} @ W_i.T + b_i      (F.linear: addmm for 2-D input)
              h_i = act_i(a_i)                 (in place; h_0 = x flattened to (B, C*H*W))
    backward  g   = dloss/dh_n                 (mse_loss_backward / binary_cross_entropy_backward)
              g   = act_i'(g, h_i)             (tanh_backward, sigmoid_backward, threshold_backward)
              dW_i = g.T @ h_{i-1},  db_i = g.sum(0),  g = g @ W_i  (not for the first layer)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aekit.models.base import ModelOutput

ACTIVATIONS = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu"}  # no activation: nothing, or nn.Identity
LOSSES = ("mse", "bce")
_IN_PLACE = {"tanh": torch.Tensor.tanh_, "sigmoid": torch.Tensor.sigmoid_, "relu": torch.Tensor.relu_}
_aten = torch.ops.aten
_BACKWARD = {  # the derivative autograd uses, from the activation's output
    "tanh": _aten.tanh_backward,
    "sigmoid": _aten.sigmoid_backward,
    "relu": lambda g, h: _aten.threshold_backward(g, h, 0),
}
_MEAN = 1  # aten's Reduction::Mean


def chain_of(*stacks: nn.Sequential) -> list[tuple[nn.Linear, str]] | None:
    """The ``(layer, activation)`` pairs of ``nn.Sequential`` stacks of biased linear layers and the
    activations above, in order; ``None`` when a stack holds anything else or two activations in a row.
    """
    pairs: list[tuple[nn.Linear, str]] = []
    for stack in stacks:
        open_layer = False  # the module before was a linear layer, still without its activation
        for module in stack:
            kind = type(module)
            if kind is nn.Linear and module.bias is not None:
                pairs.append((module, "linear"))
                open_layer = True
            elif kind in ACTIVATIONS and open_layer:
                pairs[-1] = (pairs[-1][0], ACTIVATIONS[kind])
                open_layer = False
            elif kind is not nn.Identity:
                return None
    return pairs or None


def has_hooks(module: nn.Module) -> bool:
    """Whether a hook would run if autograd took the step: a forward, forward-pre or backward hook on
    ``module`` or any module in it (or one registered for every module), or a gradient hook on a parameter.
    A hand-written step calls no module and records no graph, so it runs none of them.

    torch has no public way to ask; these are the dicts its ``register_*_hook`` methods fill.
    """
    glob = nn.modules.module
    if any(getattr(glob, name, None) for name in ("_global_forward_hooks", "_global_forward_pre_hooks",
                                                  "_global_backward_hooks", "_global_backward_pre_hooks")):
        return True
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    if any(getattr(m, kind, None) for m in module.modules() for kind in kinds):
        return True
    return any(getattr(p, "_backward_hooks", None) or getattr(p, "_post_accumulate_grad_hooks", None)
               for p in module.parameters())


def _binary_cross_entropy(h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.binary_cross_entropy``, or NaN where ``h`` holds a NaN (a diverged chain): the kernel raises
    on it. Caught, not masked as ``aekit.models.base.binary_cross_entropy`` does on any device: a
    chain runs on the CPU only, where the error is an exception, and this keeps the step's ops as they were.
    """
    try:
        return F.binary_cross_entropy(h, target)
    except RuntimeError:
        if not bool(torch.isnan(h).any()):
            raise
        return h.new_full((), torch.nan)


class DenseChain:
    """``x -> ModelOutput`` for a chain of :func:`chain_of` pairs, setting every trainable layer's ``.grad``.

    ``code_layer`` is the index of the layer whose output is the code ``z``; ``loss`` is
    ``mse`` or ``bce`` (mean per pixel) times ``loss_scale``, against the input itself.
    Each step writes the gradients into buffers of the chain's own, which become the
    layers' ``.grad`` (whatever ``.grad`` held before is dropped, as with
    ``zero_grad(set_to_none=True)`` then ``backward``). A weight or bias frozen with
    ``requires_grad_(False)`` gets no gradient (``.grad`` becomes ``None``, as autograd leaves it
    after ``zero_grad``), read at every call. Runs under ``no_grad``: nothing is recorded. Built
    for the layers where they are: move the model, build a new chain. Hooks are not run: the
    trainer uses a chain only on a model without any (:func:`has_hooks`).
    """

    def __init__(self, pairs: list[tuple[nn.Linear, str]], code_layer: int, loss: str, loss_scale: float):
        if loss not in LOSSES:
            raise ValueError(f"DenseChain: loss {loss!r} is not one of {LOSSES}")
        # per layer: weight, bias, the activation in place, its derivative, the gradient buffers
        self.plan = [(layer.weight, layer.bias, _IN_PLACE.get(act), _BACKWARD.get(act),
                      torch.empty_like(layer.weight), torch.empty_like(layer.bias)) for layer, act in pairs]
        self.code_layer = code_layer
        self.loss = loss
        self.loss_scale = loss_scale
        weight = pairs[0][0].weight
        self._scale = torch.full((), loss_scale, dtype=weight.dtype, device=weight.device)  # dloss/drecon_loss

    def __call__(self, x: torch.Tensor) -> ModelOutput:
        """Loss terms, reconstruction and code of ``x`` ``(B, C, H, W)``; every weight and bias gets its ``.grad``."""
        with torch.no_grad():
            target = h = x.flatten(1)  # (B, D)
            hs = [h]  # every layer's output, the input first: the backward pass reads them
            for weight, bias, activate, _, _, _ in self.plan:
                h = F.linear(h, weight, bias)  # (B, out): addmm(bias, h, weight.T), as autograd's forward
                if activate is not None:
                    activate(h)
                hs.append(h)
            if self.loss == "bce":
                recon_loss = _binary_cross_entropy(h, target)
                g = _aten.binary_cross_entropy_backward(self._scale, h, target, None, _MEAN)  # NaN stays NaN
            else:
                recon_loss = F.mse_loss(h, target)
                g = _aten.mse_loss_backward(self._scale, h, target, _MEAN)  # (B, D)
            if self.loss_scale != 1.0:
                recon_loss = self.loss_scale * recon_loss
            for i in range(len(self.plan) - 1, -1, -1):
                weight, bias, _, derivative, weight_grad, bias_grad = self.plan[i]
                if derivative is not None:
                    g = derivative(g, hs[i + 1])  # (B, out)
                if weight.requires_grad:
                    torch.mm(g.t(), hs[i], out=weight_grad)  # (out, in)
                    if weight.grad is not weight_grad:
                        weight.grad = weight_grad
                else:
                    weight.grad = None
                if bias.requires_grad:
                    torch.sum(g, 0, out=bias_grad)  # (out,)
                    if bias.grad is not bias_grad:
                        bias.grad = bias_grad
                else:
                    bias.grad = None
                if i:
                    g = g.mm(weight)  # (B, in)
        return ModelOutput(h.view(x.shape), hs[self.code_layer + 1], recon_loss, terms={"recon": recon_loss})
