"""LeanAdam: torch's fused Adam stepped with one kernel call; its numbers are Adam's, bit for bit."""

import io

import pytest
import torch
from safetensors.torch import save

from aekit.config import TrainConfig
from aekit.models import create_model
from aekit.training.optim import LeanAdam, make_optimizer


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 4, generator=g).requires_grad_(), torch.randn(4, generator=g).requires_grad_(),
            torch.randn(3, generator=g).requires_grad_()]


def _grads(step, params):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=g) for p in params]


def _run(kind, steps, skip=(), missing=(), found_inf_at=(), **kwargs):
    params = _params()
    opt = kind(params, lr=0.01, fused=True, **kwargs)
    for step in range(steps):
        for i, (p, g) in enumerate(zip(params, _grads(step, params))):
            p.grad = None if (step in missing and i == 1) else g
        if step in skip:
            continue
        opt.found_inf = torch.tensor(1.0 if step in found_inf_at else 0.0) if found_inf_at else None
        opt.step()
    return params, opt


@pytest.mark.parametrize("case", [
    {},
    {"weight_decay": 0.01},
    {"maximize": True, "betas": (0.8, 0.99), "eps": 1e-6},
    {"missing": (3, 4)},  # a parameter without a gradient: Adam's own step takes those
    {"found_inf_at": (2, 5)},  # skipped steps (--on-nan skip) neither move the weights nor count
], ids=["plain", "weight-decay", "maximize-betas-eps", "missing-grad", "found-inf"])
def test_every_step_equals_fused_adams_to_the_bit(case):
    ours, lean = _run(LeanAdam, 8, **case)
    theirs, adam = _run(torch.optim.Adam, 8, **case)
    assert lean._lean is not None  # the lean step did run
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
    for p, q in zip(ours, theirs):
        a, b = lean.state[p], adam.state[q]
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_state_dict_round_trips_and_counts_apart():
    params, opt = _run(LeanAdam, 5)
    state = opt.state_dict()
    steps = [s["step"] for s in state["state"].values()]
    assert [float(s) for s in steps] == [5.0, 5.0, 5.0]
    save({f"step{i}": s for i, s in enumerate(steps)})  # safetensors refuses tensors sharing memory
    opt.step()  # the live counts move on; the saved copies do not
    assert [float(s) for s in steps] == [5.0, 5.0, 5.0]

    # resume: 5 steps, save, load into a fresh optimiser, 3 more == 8 steps straight
    buf = io.BytesIO()
    params, opt = _run(LeanAdam, 5)
    torch.save(opt.state_dict(), buf)
    resumed = LeanAdam(params, lr=0.01, fused=True)
    buf.seek(0)
    resumed.load_state_dict(torch.load(buf))
    for step in range(5, 8):
        for p, g in zip(params, _grads(step, params)):
            p.grad = g
        resumed.step()
    straight, _ = _run(torch.optim.Adam, 8)
    assert all(torch.equal(p, q) for p, q in zip(params, straight))


def test_make_optimizer_takes_the_lean_step_on_the_cpu():
    opt = make_optimizer(create_model("mlp"), TrainConfig(lr=0.002, weight_decay=0.1))
    assert isinstance(opt, LeanAdam) and opt.defaults["fused"]
    assert opt.param_groups[0]["lr"] == 0.002 and opt.param_groups[0]["weight_decay"] == 0.1
