"""The optimiser and the skipped step: torch's public fused Adam, and no private torch API in aekit."""

import re
from pathlib import Path

import pytest
import torch

from aekit.config import TrainConfig
from aekit.models import create_model
from aekit.training.optim import make_optimizer
from aekit.training.precision import Precision

SRC = Path(__file__).resolve().parents[1] / "src" / "aekit"


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 4, generator=g).requires_grad_(), torch.randn(4, generator=g).requires_grad_(),
            torch.randn(3, generator=g).requires_grad_()]


def _grads(step, params, bad_at=()):
    g = torch.Generator().manual_seed(100 + step)
    grads = [torch.randn(p.shape, generator=g) for p in params]
    if step in bad_at:
        grads[1][2] = float("nan")
    return grads


def test_make_optimizer_is_torchs_public_fused_adam_on_the_cpu():
    opt = make_optimizer(create_model("mlp"), TrainConfig(lr=0.002, weight_decay=0.1))
    assert type(opt) is torch.optim.Adam and opt.defaults["fused"]
    assert opt.param_groups[0]["lr"] == 0.002 and opt.param_groups[0]["weight_decay"] == 0.1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_skipped_step_leaves_weights_and_state_as_they_were_and_the_rest_are_adams(precision):
    """--on-nan skip through the unit-scale gradient scaler: the steps with a NaN gradient or a non-finite
    loss change nothing (not even Adam's step count); every other step is plain fused Adam's, bit for bit.
    """
    skipping, plain = _params(), _params()
    opt_a = torch.optim.Adam(skipping, lr=0.01, fused=True)
    opt_b = torch.optim.Adam(plain, lr=0.01, fused=True)
    prec = Precision(precision, "cpu", skip_non_finite=True)
    prec.start()
    oks = []
    for step in range(8):
        for p, g in zip(skipping, _grads(step, skipping, bad_at=(2,))):
            p.grad = g
        loss = torch.tensor(float("inf") if step == 5 else 1.0)  # step 5: finite gradients, infinite loss
        oks.append(bool(prec.step(opt_a, loss, skipping)))
        if step not in (2, 5):
            for p, g in zip(plain, _grads(step, plain)):
                p.grad = g
            opt_b.step()
    assert oks == [True, True, False, True, True, False, True, True]
    for p, q in zip(skipping, plain):
        assert torch.equal(p, q)
        assert all(torch.equal(opt_a.state[p][k], opt_b.state[q][k]) for k in opt_b.state[q])
    assert float(opt_a.state[skipping[0]]["step"]) == 6.0


def test_without_skipping_there_is_no_scaler_and_every_step_is_taken():
    prec = Precision("fp32", "cpu")
    prec.start()
    assert prec.scaler is None and not prec.skips
    params = _params()
    opt = torch.optim.Adam(params, lr=0.01, fused=True)
    for p, g in zip(params, _grads(0, params)):
        p.grad = g
    assert prec.step(opt, torch.tensor(1.0), params) is None
    assert float(opt.state[params[0]]["step"]) == 1.0


def test_aekit_calls_no_private_torch_function():
    """Only torch's public API: no ``torch._name`` (private kernels such as ``torch._fused_adam_``) and no
    undocumented optimiser attributes (``found_inf``, ``grad_scale``) set by hand.
    """
    found = []
    for path in SRC.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\btorch\._[a-z]", code) or re.search(r"\.(found_inf|grad_scale)\s*=", code):
                found.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)
