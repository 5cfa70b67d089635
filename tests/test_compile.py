"""``--compile``: the training step through torch.compile, and the eager step where compiling fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.config import TrainConfig
from aekit.models import create_model
from aekit.training import Trainer


def _images(n, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, 8, 8), dtype=np.uint8))


def _fit(compile_: bool, log=None, epochs=2):
    torch.manual_seed(0)
    model = create_model("pcamlp", (3, 8, 8), latent_dim=4, components=16, width=16, depth=1)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=0.003, optimizer="adamw", device="cpu", seed=1,
                      compile=compile_, augment="flips")
    trainer = Trainer(model, cfg, "unit", precision="fp32", log=log)
    history = trainer.fit(_images(100), _images(40, seed=1))
    return trainer, history


def test_a_compile_that_fails_is_one_line_and_the_run_trains_as_an_eager_one(monkeypatch):
    def broken(module, **_):
        def call(*args, **kwargs):
            raise RuntimeError("backend='inductor' raised:\nInvalidCxxCompiler: No working C++ compiler found\nmore")
        return call

    eager, eager_history = _fit(False)
    monkeypatch.setattr(torch, "compile", broken)
    lines: list[str] = []
    compiled, history = _fit(True, log=lines.append)
    assert lines == ["warning: compile failed (RuntimeError: InvalidCxxCompiler: No working C++ compiler found); "
                     "training without it (--no-compile skips trying)"]
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        assert torch.equal(a, b)  # the failed call changed nothing: every step was the eager one
    assert [h["test_loss"] for h in history] == [h["test_loss"] for h in eager_history]


def test_compile_is_off_unless_asked_and_compiles_the_main_module_once(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **_: calls.append(module) or module)
    _fit(False)
    assert calls == []
    trainer, _ = _fit(True, epochs=1)
    assert calls == [trainer.model]  # the main run's module, once


def test_a_compiled_run_learns_what_the_eager_one_does():
    pytest.importorskip("torch._inductor")
    eager, eager_history = _fit(False, epochs=3)
    lines: list[str] = []
    compiled, history = _fit(True, log=lines.append, epochs=3)
    if lines:  # no C++ compiler on this machine: the fallback above is what runs
        pytest.skip(lines[0])
    # the same steps, computed with fused kernels: the same weights but for rounding
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)
    assert history[-1]["test_loss"] == pytest.approx(eager_history[-1]["test_loss"], rel=1e-3)
