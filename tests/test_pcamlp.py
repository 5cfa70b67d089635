"""pcamlp: the MLP on the images' principal components (aekit.models.pcamlp), the auto plan's model for a large
set of small colour photos.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aekit
from aekit.errors import ConfigError
from aekit.models import create_model


def low_rank_images(n: int, shape=(3, 8, 8), rank: int = 6, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1] that lie near a ``rank``-dimensional plane (well-separated principal axes) plus noise."""
    g = torch.Generator().manual_seed(seed)
    d = int(np.prod(shape))
    axes = torch.linalg.qr(torch.randn(d, rank, generator=g))[0].T  # (rank, d), orthonormal
    weights = torch.randn(n, rank, generator=g) * torch.linspace(3.0, 1.0, rank)
    x = 0.5 + 0.05 * (weights @ axes) + 0.005 * torch.randn(n, d, generator=g)
    return x.clamp(0, 1).view(n, *shape)


def small(shape=(3, 8, 8), **fields):
    return create_model("pcamlp", shape, **{"latent_dim": 4, "components": 32, "width": 16, "depth": 2, **fields})


def test_the_training_loss_on_coordinates_is_the_pixel_mse_of_the_reconstruction():
    torch.manual_seed(0)
    model = small()
    x = low_rank_images(300)
    model.init_from_data(x)
    model.train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # away from the start: the loss must not be PCA's by accident
    out = model(x[:50])
    image = model.image(model.coordinates_of(model.encode(x[:50])))  # unclamped, as the loss sees it
    assert out.loss.item() == pytest.approx(F.mse_loss(image, x[:50]).item(), rel=1e-4)
    assert out.recon_x.shape == x[:50].shape and out.z.shape == (50, 4)
    # the coordinates' loss has a gradient for every trained parameter, as the pixels' would
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_it_starts_near_pca_and_its_linear_path_alone_is_pca():
    x = low_rank_images(400)
    model = small(latent_dim=4).eval()
    model.init_from_data(x)
    flat = x.flatten(1).double()
    mean = flat.mean(0)
    v = torch.linalg.svd(flat - mean, full_matrices=False)[2][:4]  # the top 4 axes, exact
    pca = (mean + (flat - mean) @ v.T @ v).float().view_as(x)
    with torch.no_grad():
        start_err = F.mse_loss(model(x).recon_x, x).item()
        for mlp in (model.encoder, model.decoder):  # the MLPs' share off: what is left is the linear path
            mlp[-1].weight.zero_()
            mlp[-1].bias.zero_()
        linear = model(x).recon_x
    assert torch.allclose(linear, pca.clamp(0, 1), atol=1e-4)
    pca_err = F.mse_loss(pca, x).item()
    assert pca_err <= start_err < 1.5 * pca_err  # the MLPs start small: near PCA, not far from it
    # the code's linear part is the whitened coordinates: unit variance on the training images
    assert torch.allclose(model.encode(x).std(0), torch.ones(4), atol=0.02)


def test_its_axes_and_scales_live_in_the_state_dict_and_are_fitted_once():
    x = low_rank_images(200)
    model = small()
    model.init_from_data(x)
    state = model.state_dict()
    assert {"basis", "scale", "pixel_mean", "pca_ready"} <= set(state)
    again = small()
    again.load_state_dict(state)
    again.init_from_data(low_rank_images(200, seed=1))  # loaded weights are not refitted (a resume)
    assert torch.equal(again.basis, model.basis) and torch.equal(again.scale, model.scale)
    with torch.no_grad():
        assert torch.equal(again.eval()(x).recon_x, model.eval()(x).recon_x)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (4, 16, 24), (3, 4, 4)])
def test_any_image_shape_and_fewer_images_than_axes(shape):
    model = create_model("pcamlp", shape, latent_dim=8, width=32)
    assert model.components == min(256, int(np.prod(shape)))
    x = torch.rand(20, *shape)  # 20 images: at most 19 axes carry data; the others stay zero with scale 1
    model.init_from_data(x)
    assert torch.isfinite(model.scale).all() and int((model.basis.abs().sum(1) > 0).sum()) <= 20
    with torch.no_grad():
        out = model.eval()(x)
    assert out.recon_x.shape == x.shape and torch.isfinite(out.recon_x).all()
    assert out.recon_x.min() >= 0 and out.recon_x.max() <= 1  # clamped to the sigmoid's range


def test_a_bounded_code_with_the_linear_path_is_refused_by_name():
    with pytest.raises(ConfigError, match="model.latent_activation: the linear path starts the code at PCA's"):
        create_model("pcamlp", (3, 8, 8), latent_activation="tanh")
    model = create_model("pcamlp", (3, 8, 8), latent_activation="tanh", linear_path=False, width=8)
    assert not hasattr(model, "to_code")


def test_other_losses_train_on_the_pixels():
    model = small(loss="l1")
    x = low_rank_images(100)
    model.init_from_data(x)
    out = model.train()(x)
    assert out.loss.item() == pytest.approx(F.l1_loss(out.recon_x, x).item(), rel=1e-5)


def test_auto_trains_it_on_a_large_set_of_small_photos_and_the_run_loads(tmp_path, monkeypatch):
    """A 20,000-image colour set (the auto plan's threshold), trained for a few steps: the plan picks pcamlp, says
    so, learns, and the run loads for encoding like any run (exact resume: tests/test_training_budget.py). The
    per-epoch scoring reads the encoder's codes; encoding the loaded run takes the inference steps.
    """
    from aekit.models.pcamlp import PCAMLPAutoEncoder

    inferred: list[int] = []
    infer = PCAMLPAutoEncoder.infer
    monkeypatch.setattr(PCAMLPAutoEncoder, "infer", lambda self, z, c: inferred.append(len(z)) or infer(self, z, c))
    rng = np.random.default_rng(0)
    n = 20_000
    base = rng.integers(0, 256, (8, 8, 8, 3))  # 8 pictures, each repeated with noise: structure to learn
    x = np.clip(base[rng.integers(0, 8, n + 500)] + rng.normal(0, 20, (n + 500, 8, 8, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "photos.npz"
    np.savez(path, x_train=x[:n], y_train=np.zeros(n, np.int64), x_test=x[n:], y_test=np.zeros(500, np.int64))
    lines: list[str] = []
    aekit.train(dataset=str(path), latent_dim=4, batch_size=1024, steps=30, compile=False, plots=False,
                verbose=False, progress=False, device="cpu", out=tmp_path / "full", log=lines.append)
    plan = next(line for line in lines if line.startswith("auto:"))
    assert plan.startswith("auto: pcamlp started at PCA (a linear path beside it) with a 4-D code and 192 principal "
                           "axes, 3 hidden layers of 1024, 3 inference steps per code for 8x8 RGB photos (20,000 "
                           "images): 30 steps of 1024 (~2 epochs)")
    assert "validation 10% (2,000 images)" in plan and "adamw weight decay 0.05" in plan and "compiled" not in plan
    assert "augment none (each image seen under 30 times)" in plan  # two epochs: too short to overfit
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["model"]["model"] == "pcamlp" and config["train"]["val_fraction"] == 0.1
    full = aekit.load_run(tmp_path / "full")
    assert full.model.name == "pcamlp" and bool(full.model.pca_ready)
    history = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["test_mse"] < history[0]["test_mse"]  # it learns
    assert not inferred  # training and its scoring of every epoch: the encoder's codes alone
    codes = full.encode(x[n:])
    assert codes.shape == (500, 4) and np.isfinite(codes).all()
    assert sum(inferred) == 500 and full.model.config.inference_steps == 3


def trained_small(steps: int = 60, **fields):
    """A small pcamlp trained for a few dozen steps on low-rank images: codes with room left to move."""
    torch.manual_seed(0)
    model = small(**fields)
    x = low_rank_images(400)
    model.init_from_data(x)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x


@pytest.mark.parametrize("linear_path", [True, False])
@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "sigmoid", "linear", "leaky_relu", "elu", "gelu"])
def test_the_written_out_gradient_of_each_codes_error_is_autograds(activation, linear_path):
    torch.manual_seed(1)
    model = small(activation=activation, linear_path=linear_path)
    model.init_from_data(low_rank_images(300))
    with torch.no_grad():
        for p in model.parameters():  # away from the start, where some layers are still the identity or zero
            p.add_(0.2 * torch.randn_like(p))
    model.eval()
    x = low_rank_images(9, seed=3)
    c = model.coordinates(x)
    z = model.code_of(c).detach().requires_grad_(True)
    error = (model.coordinates_of(z) - c).pow(2).sum(1) / model.input_dim
    expected, = torch.autograd.grad(error.sum(), z)
    with torch.no_grad():
        value, slope = model.coordinates_and_slope(z, c)
    assert torch.allclose(value, error.detach(), rtol=1e-5, atol=1e-9)
    largest = expected.abs().max()
    assert largest > 1e-6  # a gradient worth comparing
    assert torch.allclose(slope, expected, rtol=1e-4, atol=1e-4 * float(largest))


def test_inference_steps_lower_each_images_error_or_keep_the_encoders_code():
    model, x = trained_small()
    with torch.no_grad():
        c = model.coordinates(x)
        z0 = model.code_of(c)
        model.config.inference_steps = 5
        z = model.encode(x)
    before = (model.coordinates_of(z0) - c).pow(2).sum(1)
    after = (model.coordinates_of(z) - c).pow(2).sum(1)
    moved = (z != z0).any(1)
    assert bool(moved.any()) and bool((after[moved] < before[moved]).all())  # each moved code is better
    assert torch.equal(z[~moved], z0[~moved])  # the rest are the encoder's
    assert after.mean() < 0.99 * before.mean()
    recon = model.decode(z)
    assert F.mse_loss(recon, x) < F.mse_loss(model.decode(z0), x)
    model.train()  # training reads the encoder's codes: the steps are for encoding only
    assert torch.equal(model.encode(x), model.code_of(model.coordinates(x)))
    model.eval().config.inference_steps = 0
    assert torch.equal(model.encode(x), z0)


def test_an_encoder_with_inference_steps_exports_to_onnx_and_agrees(tmp_path):
    pytest.importorskip("onnxruntime")
    from aekit.integrations.export import check_export, export_model

    model, x = trained_small(inference_steps=3)
    path = tmp_path / "encoder.onnx"
    export_model(model, path, part="encoder")
    assert check_export(model, path, "encoder", x[:50].numpy()) < 1e-4


def test_within_monitoring_the_codes_are_the_encoders_and_after_it_the_steps_return():
    from aekit.models.base import monitoring

    model, x = trained_small(inference_steps=3)
    with torch.no_grad():
        stepped = model.encode(x)
        with monitoring(model):
            assert model.monitoring
            plain = model.encode(x)
        assert not model.monitoring and "monitoring" not in vars(model)
        assert torch.equal(plain, model.code_of(model.coordinates(x)))
        assert not torch.equal(plain, stepped) and torch.equal(model.encode(x), stepped)
        assert torch.equal(model(x).z, stepped)  # the eval forward (reconstruct_images) reads the stepped codes


def test_the_inference_lr_is_a_first_step_of_04_unless_set():
    assert small(latent_dim=16).inference_lr == pytest.approx(0.1)
    assert small(latent_dim=64).inference_lr == pytest.approx(0.05)
    assert small(latent_dim=16, inference_lr=0.3).inference_lr == 0.3
