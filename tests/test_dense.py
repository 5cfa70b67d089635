"""The fully connected autoencoder's hand-written gradients (aekit.models.dense): autograd's, bit for bit."""

import copy

import pytest
import torch
from torch import nn

from aekit.config import TrainConfig
from aekit.models import create_model
from aekit.models.dense import chain_of
from aekit.models.mlp import MLPAutoEncoder
from aekit.training import Trainer

SHAPE = (1, 8, 8)


def _images(n=32, seed=0, shape=SHAPE):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g)


def _pair(**fields):
    """A model and an exact copy of it."""
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=SHAPE, **fields)
    return model, copy.deepcopy(model)


def _autograd(model, x):
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.loss.backward()
    return out


CASES = [
    dict(activation="tanh", latent_activation="linear", output_activation="sigmoid", loss="mse"),  # the default preset
    dict(activation="relu", latent_activation="linear", output_activation="tanh", loss="mse"),
    dict(activation="sigmoid", latent_activation="sigmoid", output_activation="sigmoid", loss="mse", loss_scale=0.5),
    dict(activation="relu", latent_activation="relu", output_activation="sigmoid", loss="bce"),
    dict(activation="tanh", latent_activation="tanh", output_activation="linear", loss="mse", loss_scale=2.0),
]


@pytest.mark.parametrize("fields", CASES, ids=lambda f: "-".join(str(v) for v in f.values()))
@pytest.mark.parametrize("hidden", [(16, 8), ()], ids=["deep", "one-layer"])
def test_gradients_loss_code_and_reconstruction_equal_autograds_to_the_bit(fields, hidden):
    by_autograd, by_hand = _pair(hidden=hidden, latent_dim=3, **fields)
    x = _images()
    grads = by_hand.gradient_function()
    assert grads is not None
    expected, got = _autograd(by_autograd, x), grads(x)
    for name in ("loss", "recon_loss", "reg_loss", "recon_x", "z"):
        a, b = getattr(expected, name), getattr(got, name)
        assert a.shape == b.shape and torch.equal(a.detach(), b), name
    for (name, p), q in zip(by_autograd.named_parameters(), by_hand.parameters()):
        assert q.grad is not None and torch.equal(p.grad, q.grad), name
    assert not got.loss.requires_grad  # nothing was recorded


def test_gradients_replace_the_old_ones_and_follow_the_weights():
    by_autograd, by_hand = _pair(hidden=(16,), latent_dim=2)
    grads = by_hand.gradient_function()
    for p in by_hand.parameters():
        p.grad = torch.full_like(p, 7.0)  # stale: must not be added to
    for step in range(3):
        x = _images(seed=step)
        _autograd(by_autograd, x)
        grads(x)
        for p, q in zip(by_autograd.parameters(), by_hand.parameters()):
            assert torch.equal(p.grad, q.grad)
        with torch.no_grad():  # the chain holds the layers, not copies: it sees new weights
            for p, q in zip(by_autograd.parameters(), by_hand.parameters()):
                p.sub_(0.1 * p.grad)
                q.sub_(0.1 * q.grad)


def test_only_the_plain_model_gets_hand_written_gradients():
    assert create_model("mlp", input_shape=SHAPE).gradient_function() is not None
    assert create_model("linear", input_shape=SHAPE).gradient_function() is not None  # a plain chain, no activations
    assert create_model("mlp", input_shape=SHAPE, activation="gelu").gradient_function() is None
    for name in ("denoising", "sparse", "contractive", "vae", "conv", "stacked"):
        assert create_model(name, input_shape=SHAPE).gradient_function() is None, name

    class Penalised(MLPAutoEncoder):  # a variant changing what forward computes falls back to autograd
        def regularizer(self, x, z):
            return z.pow(2).mean()

    assert Penalised(create_model("mlp", input_shape=SHAPE).config, SHAPE).gradient_function() is None


def test_chain_of_reads_linear_activation_pairs_and_refuses_anything_else():
    a, b = nn.Linear(4, 3), nn.Linear(3, 2)
    assert chain_of(nn.Sequential(a, nn.Tanh()), nn.Sequential(b)) == [(a, "tanh"), (b, "linear")]
    assert chain_of(nn.Sequential(a, nn.Tanh(), nn.Sigmoid())) is None  # two activations in a row
    assert chain_of(nn.Sequential(nn.Tanh(), a)) is None  # an activation before any layer
    assert chain_of(nn.Sequential(a, nn.Dropout(), b)) is None
    assert chain_of(nn.Sequential(nn.Linear(4, 3, bias=False))) is None


def _fit(hand: bool, monkeypatch, x, **train):
    monkeypatch.setattr(Trainer, "hand_gradients", hand)
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32, 8), latent_dim=3, activation="tanh")
    trainer = Trainer(model, TrainConfig(epochs=2, batch_size=64, lr=0.01, **train))
    history = trainer.fit(x, x[-50:])
    return model, history, trainer


def _same_training(monkeypatch, x, **train):
    hand_model, hand_history, trainer = _fit(True, monkeypatch, x, **train)
    assert trainer._by_hand is not None  # the hand-written path ran
    auto_model, auto_history, trainer = _fit(False, monkeypatch, x, **train)
    assert trainer._by_hand is None
    for p, q in zip(hand_model.parameters(), auto_model.parameters()):
        assert torch.equal(p, q)
    strip = lambda h: [{k: v for k, v in m.items() if k != "seconds"} for m in h]  # noqa: E731
    assert strip(hand_history) == strip(auto_history)
    return hand_history


@pytest.mark.parametrize("on_nan", ["stop", "skip"])
def test_training_by_hand_is_training_by_autograd_to_the_bit(monkeypatch, on_nan):
    g = torch.Generator().manual_seed(1)
    _same_training(monkeypatch, torch.randint(0, 256, (300, 1, 28, 28), generator=g, dtype=torch.uint8),
                   on_nan=on_nan)


def test_a_non_finite_step_is_skipped_by_hand_as_by_autograd(monkeypatch):
    """With --on-nan skip, the batches holding a NaN image leave the weights as they were, by either path."""
    x = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    x[7, 0, 5, 5] = float("nan")
    history = _same_training(monkeypatch, x, on_nan="skip")
    assert [m["skipped_steps"] for m in history] == [1, 1]


def test_hand_gradients_stay_off_where_they_are_not_tested(monkeypatch):
    model = create_model("mlp")
    assert Trainer(model, TrainConfig(), precision="fp32")._gradient_function(model) is not None
    assert Trainer(model, TrainConfig(), precision="bf16")._gradient_function(model) is None
    monkeypatch.setattr(Trainer, "hand_gradients", False)
    assert Trainer(model, TrainConfig(), precision="fp32")._gradient_function(model) is None


def test_a_frozen_layer_gets_no_gradient_by_hand_as_by_autograd():
    by_autograd, by_hand = _pair(hidden=(16, 8), latent_dim=3)
    for model in (by_autograd, by_hand):
        model.encoder[0].weight.requires_grad_(False)  # frozen by a Python user
        model.decoder[-2].bias.requires_grad_(False)
    x = _images()
    _autograd(by_autograd, x)
    by_hand.gradient_function()(x)
    for (name, p), q in zip(by_autograd.named_parameters(), by_hand.parameters()):
        assert (p.grad is None) == (q.grad is None) == (not p.requires_grad), name
        assert p.grad is None or torch.equal(p.grad, q.grad), name


def test_training_leaves_a_frozen_layer_as_it_was(monkeypatch):
    x = torch.randint(0, 256, (200, 1, 28, 28), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32, 8), latent_dim=3)
    frozen = model.encoder[0].weight
    frozen.requires_grad_(False)
    before, trained = frozen.detach().clone(), model.encoder[2].weight.detach().clone()
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=64))
    trainer.fit(x, x[:50])
    assert trainer._by_hand is not None and torch.equal(frozen, before)
    assert not torch.equal(model.encoder[2].weight, trained)  # the layers not frozen did train


@pytest.mark.parametrize("where", ["forward hook", "forward pre-hook", "gradient hook"])
def test_a_hook_sends_the_step_back_to_autograd_which_runs_it(where):
    x = torch.randint(0, 256, (130, 1, 28, 28), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32, 8), latent_dim=3)
    calls = []
    if where == "forward hook":
        model.encoder[2].register_forward_hook(lambda m, i, o: calls.append(1))
    elif where == "forward pre-hook":
        model.register_forward_pre_hook(lambda m, i: calls.append(1))
    else:
        model.decoder[0].weight.register_hook(lambda g: calls.append(1))
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=64))
    trainer.fit(x, x[:10])
    assert trainer._by_hand is None
    assert len(calls) >= 3  # every training step ran it (3 steps), as autograd's forward and backward do


def test_a_hand_written_step_that_fails_hands_the_run_to_autograd_from_its_first_step(monkeypatch):
    from aekit.models import dense

    def broken(self, x):
        raise RuntimeError("a case the hand-written gradients do not cover")

    monkeypatch.setattr(dense.DenseChain, "__call__", broken)
    x = torch.randint(0, 256, (130, 1, 28, 28), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32, 8), latent_dim=3)
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=64))
    history = trainer.fit(x, x[:10])
    assert trainer._by_hand is None and history[0]["step"] == 3
    monkeypatch.undo()
    torch.manual_seed(0)
    reference = create_model("mlp", hidden=(32, 8), latent_dim=3)
    Trainer(reference, TrainConfig(epochs=1, batch_size=64)).fit(x, x[:10])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters()))
