"""The optimiser: torch's Adam, fused, with a leaner step for the small networks.

For a network as small as the seed presets', ``torch.optim.Adam(fused=True).step`` spends
about as long outside its one fused kernel as in it: grouping the parameters again, and
adding 1 to every parameter's step count, one tensor at a time on the CPU.
:class:`LeanAdam` keeps Adam's state where Adam keeps it and, once every parameter has
it, calls the same kernel with the same arguments after one op that counts the step for
all parameters. The numbers are Adam's, bit for bit (``tests/test_optim.py``).
"""

from __future__ import annotations

import torch

from aekit.config import TrainConfig


def make_optimizer(module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (or AdamW with ``cfg.optimizer``); the fused kernel where this torch has it (one kernel for all parameters
    instead of a loop over them, and it can skip a step on the device), and its lean step on the CPU.
    """
    params = list(module.parameters())
    if cfg.optimizer == "adamw":  # decoupled weight decay (Loshchilov & Hutter 2019): torch's own AdamW
        try:
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    cpu = all(p.device.type == "cpu" for p in params)
    kind = LeanAdam if cpu and hasattr(torch, "_fused_adam_") else torch.optim.Adam
    try:
        return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # older torch, or a device without a fused Adam
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` whose ``step`` calls the fused kernel directly.

    Adam's own step runs whenever the lean one does not cover the case: the first step
    (it creates the state), a parameter without a gradient, several parameter groups,
    amsgrad, a tensor learning rate, a gradient scaler's ``grad_scale``. After a step of
    its own, the parameters' step counts become views of one tensor, so one ``add_``
    counts them all; :meth:`state_dict` hands out copies, and :meth:`load_state_dict`
    gives the state back to Adam until the next step binds it again.
    """

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self._lean = None  # (params, exp_avgs, exp_avg_sqs, step views, all steps) once bound

    def step(self, closure=None):
        lean = self._lean
        if closure is not None or lean is None or getattr(self, "grad_scale", None) is not None:
            loss = super().step(closure)
            if self._lean is None:
                self._bind()
            return loss
        params, exp_avgs, exp_avg_sqs, steps, counts = lean
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            return super().step()
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        found_inf = getattr(self, "found_inf", None)
        with torch.no_grad():
            counts.add_(1)
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"],
                               beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                               maximize=group["maximize"], grad_scale=None, found_inf=found_inf)
            if found_inf is not None:  # a skipped step does not count (as in Adam's own step)
                counts.sub_(found_inf)
        return None

    def _bind(self) -> None:
        """Make the step counts views of one tensor, where the lean step covers this optimiser."""
        self._lean = None
        if len(self.param_groups) != 1:
            return
        group = self.param_groups[0]
        params = group["params"]
        if group["amsgrad"] or group.get("decoupled_weight_decay") or group.get("differentiable") \
                or any(torch.is_tensor(v) for v in (group["lr"], *group["betas"])) \
                or any(p not in self.state or "step" not in self.state[p] for p in params) \
                or len({(p.device, p.dtype) for p in params}) != 1:
            return
        states = [self.state[p] for p in params]
        counts = torch.stack([s["step"] for s in states])  # (P,) float32, one per parameter
        steps = list(counts.unbind(0))
        for s, view in zip(states, steps):
            s["step"] = view
        self._lean = (list(params), [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                      steps, counts)

    def state_dict(self):
        state = super().state_dict()
        state["state"] = {i: {k: v.clone() if k == "step" else v for k, v in s.items()}
                          for i, s in state["state"].items()}  # the counts apart, not views of one tensor
        return state

    def load_state_dict(self, state_dict) -> None:
        self._lean = None
        super().load_state_dict(state_dict)
