"""Inference steps (aekit.models.inference): the decoders' gradients written out agree with autograd, the steps
lower each image's error or keep the encoder's code, training and the per-epoch scoring skip them, and an encoder
that takes them exports to ONNX. pcamlp's own cases are in tests/test_pcamlp.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aekit.models import create_model
from aekit.models.base import monitoring
from aekit.models.inference import adam_steps, default_lr, trace


@pytest.mark.parametrize("layers", [
    lambda: nn.Sequential(nn.Linear(5, 12), nn.LayerNorm(12), nn.GELU(), nn.Linear(12, 3)),
    lambda: nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.SiLU(), nn.Conv2d(8, 2, 3, padding=1),
                          nn.Sigmoid()),
    lambda: nn.Sequential(nn.GroupNorm(2, 4, affine=False), nn.ELU(), nn.Conv2d(4, 4, 5, padding=2), nn.Tanh()),
])
def test_a_traced_stack_gives_autograds_gradient(layers):
    torch.manual_seed(0)
    net = layers()
    x = torch.randn(3, 5) if isinstance(net[0], nn.Linear) else torch.randn(3, 4, 6, 7)
    x.requires_grad_(True)
    y = net(x)
    g_out = torch.randn_like(y)
    expected, = torch.autograd.grad(y, x, g_out)
    with torch.no_grad():
        traced, back = trace(net, x.detach())
        got = back(g_out)
    assert torch.allclose(traced, y.detach(), atol=1e-5)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_layer_without_a_written_out_gradient_is_refused_by_name():
    with pytest.raises(TypeError, match="no written-out gradient for Conv2d"):
        trace(nn.Conv2d(2, 2, 3, stride=2, padding=1), torch.randn(1, 2, 8, 8))
    with pytest.raises(TypeError, match="no written-out gradient for Dropout"):
        trace(nn.Dropout(), torch.randn(2, 3))


def resconv(shape, **fields):
    torch.manual_seed(0)
    model = create_model("resconv", shape, **{"latent_dim": 6, "width": 8, "max_width": 32, **fields})
    model.init_from_data(torch.rand(100, *shape))
    with torch.no_grad():
        for p in model.parameters():  # away from the start, where the linear path's network share is zero
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("shape,fields", [
    ((3, 32, 32), {}),  # no linear path: the output activation is the decoder's last layer
    ((3, 28, 28), {"linear_path": True}),  # padded to 32: the crop's gradient
    ((4, 20, 24), {"linear_path": True, "stages": 2}),
    ((1, 16, 16), {"stages": 0, "activation": "gelu"}),
    ((3, 64, 64), {"linear_path": True, "blocks": 2}),
])
def test_resconvs_written_out_gradient_of_each_images_error_is_autograds(shape, fields):
    model = resconv(shape, **fields)
    x = torch.rand(5, *shape)
    z = model.encode(x).detach().requires_grad_(True)
    error = (model.decode(z) - x).pow(2).flatten(1).mean(1)
    expected, = torch.autograd.grad(error.sum(), z)
    with torch.no_grad():
        value, slope = model.error_and_slope(z, x)
    assert torch.allclose(value, error.detach(), rtol=1e-5, atol=1e-9)
    largest = float(expected.abs().max())
    assert largest > 1e-6 and torch.allclose(slope, expected, rtol=1e-4, atol=1e-4 * largest)


def test_resconvs_inference_steps_lower_each_images_error_or_keep_its_code():
    model = resconv((3, 28, 28), linear_path=True)
    x = torch.rand(12, 3, 28, 28)
    with torch.no_grad():
        z0 = model.encode(x)
        model.config.inference_steps = 10
        z = model.encode(x)
        with monitoring(model):  # the trainer's per-epoch scoring: the encoder's codes
            assert torch.equal(model.encode(x), z0)
        before, _ = model.error_and_slope(z0, x, slope=False)
        after, _ = model.error_and_slope(z, x, slope=False)
    moved = (z != z0).any(1)
    assert bool(moved.any()) and bool((after[moved] < before[moved]).all())
    assert torch.equal(z[~moved], z0[~moved])
    assert F.mse_loss(model.decode(z), x) < F.mse_loss(model.decode(z0), x)
    model.train()
    assert torch.equal(model.encode(x), z0)  # training reads the encoder's codes


def test_adam_steps_are_adams_and_keep_a_code_whose_error_rises():
    target = torch.tensor([[1.0, -2.0], [0.5, 0.5]])

    def bowl(z, slope=True):  # each row's error: |z - target|^2; the second row's slope points the wrong way
        g = 2 * (z - target)
        g[1] = -g[1]
        return (z - target).pow(2).sum(1), g if slope else None

    z0 = torch.zeros(2, 2)
    z = adam_steps(z0, bowl, steps=5, lr=0.1)
    param = z0[:1].clone().requires_grad_(True)
    opt = torch.optim.Adam([param], lr=0.1, eps=1e-12)
    for _ in range(5):
        opt.zero_grad()
        (param - target[:1]).pow(2).sum().backward()
        opt.step()
    assert torch.allclose(z[0], param.detach()[0], atol=1e-6)  # torch's Adam, step for step
    assert torch.equal(z[1], z0[1])  # its error rose: the encoder's code stays
    assert default_lr(None, 16) == pytest.approx(0.1) and default_lr(0.3, 16) == 0.3


def test_a_resconv_encoder_with_inference_steps_exports_to_onnx_and_agrees(tmp_path):
    pytest.importorskip("onnxruntime")
    from aekit.integrations.export import check_export, export_model

    model = resconv((3, 28, 28), linear_path=True, inference_steps=4)
    path = tmp_path / "encoder.onnx"
    export_model(model, path, part="encoder")
    x = torch.rand(6, 3, 28, 28)
    assert check_export(model, path, "encoder", x.numpy()) < 1e-4
    with torch.no_grad():
        assert not torch.equal(model.encode(x), model.to_code(model.encoder(F.pad(x, model.padding, mode="replicate")))
                               + model._linear_code(x))  # the steps moved the codes the file agrees with


def test_trains_done_line_says_its_test_loss_is_the_networks_own_when_codes_take_steps(tmp_path, capsys):
    from aekit.cli.main import main

    common = ["train", "--dataset", "mnist-sample", "--model", "resconv", "--latent-dim", "4", "--width", "4",
              "--max-width", "8", "--steps", "3", "--batch-size", "64", "--device", "cpu", "--no-plots"]
    assert main([*common, "--inference-steps", "2", "--out", str(tmp_path / "steps")]) == 0
    done = [line for line in capsys.readouterr().out.splitlines() if line.startswith("done:")]
    assert len(done) == 1 and "(the network's own codes; `aekit eval` scores them after 2 inference steps)" in done[0]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    done = [line for line in capsys.readouterr().out.splitlines() if line.startswith("done:")]
    assert len(done) == 1 and "inference steps" not in done[0]
