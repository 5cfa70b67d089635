"""--precision: what ``auto`` picks, autocast and the gradient scaler, determinism in every precision."""

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError
from aekit.models import create_model
from aekit.presets import PRESETS
from aekit.resolve import build_config
from aekit.rundir import RunDir
from aekit.training import precision as prec

FAST = dict(dataset="mnist-sample", device="cpu", verbose=False, progress=False, plots=False, batch_size=256,
            epochs=2, seed=3)
CPU = torch.device("cpu")


def _model(preset=None, **overrides):
    cfg = build_config(preset, **overrides)
    torch.manual_seed(0)
    return create_model(cfg.model, (1, 28, 28))


def test_multiply_adds_counts_linear_and_convolution_layers():
    mlp = _model("classic-3d-tanh")
    sizes = [784, 128, 64, 12, 3, 12, 64, 128, 784]
    assert prec.multiply_adds(mlp) == sum(a * b for a, b in zip(sizes, sizes[1:]))

    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1),  # 4 x 14 x 14 outputs, 9 each
                               torch.nn.ConvTranspose2d(4, 2, 2, stride=2))  # 4 x 14 x 14 inputs, 2 x 4 each
    conv.input_shape = (1, 28, 28)
    assert prec.multiply_adds(conv) == 4 * 14 * 14 * 9 + 4 * 14 * 14 * 2 * 4
    assert conv.training  # counted in eval mode, given back as it was


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.startswith("classic-")])
def test_auto_keeps_every_seed_preset_in_fp32_even_on_a_bf16_cpu(monkeypatch, preset):
    """The seed presets reproduce their tutorials' figures: their models are too small for auto's bf16."""
    monkeypatch.setattr(prec, "native_bf16", lambda device: True)
    monkeypatch.setattr(prec, "BF16_HOLDS_QUALITY", True)
    assert prec.resolve_precision("auto", CPU, _model(preset)) == "fp32"


def test_auto_picks_bf16_only_with_the_hardware_the_evidence_and_a_model_big_enough(monkeypatch):
    big = _model("vae-2d")
    assert prec.multiply_adds(big) >= prec.AUTO_BF16_MIN_MACS
    for native, holds, want in [(True, True, "bf16"), (False, True, "fp32"), (True, False, "fp32")]:
        monkeypatch.setattr(prec, "native_bf16", lambda device, native=native: native)
        monkeypatch.setattr(prec, "BF16_HOLDS_QUALITY", holds)
        assert prec.resolve_precision("auto", CPU, big) == want
    for name in ("fp32", "bf16", "fp16"):  # an explicit choice is taken as given
        assert prec.resolve_precision(name, CPU, big) == name


def test_a_bad_precision_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match="precision"):
        build_config(precision="fp8")


def test_under_autocast_the_layers_run_in_bf16_and_the_loss_in_fp32():
    model = _model(model="mlp", hidden="64")
    x = torch.rand(8, 1, 28, 28)
    seen = []
    model.decoder.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    with prec.autocast("bf16", CPU):
        out = model(x)
    assert seen == [torch.bfloat16]
    assert out.loss.dtype == torch.float32 and out.recon_loss.dtype == torch.float32
    assert torch.allclose(out.recon_loss, torch.nn.functional.mse_loss(out.recon_x.float(), x))


def test_fp16_has_a_gradient_scaler_and_the_others_none():
    assert isinstance(prec.make_scaler("fp16", CPU), torch.amp.GradScaler)
    assert prec.make_scaler("bf16", CPU) is None and prec.make_scaler("fp32", CPU) is None


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_run_repeats_to_the_last_digit_in_every_precision(tmp_path, precision):
    a = aekit.train(out=tmp_path / "a", precision=precision, model="vae", hidden="64", latent_dim=2, **FAST)
    b = aekit.train(out=tmp_path / "b", precision=precision, model="vae", hidden="64", latent_dim=2, **FAST)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics)
    assert all(np.isfinite(m["test_loss"]) for m in a.metrics)
    assert a.metrics[-1]["train_loss"] < a.metrics[0]["train_loss"]  # it learns in this precision too
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert pa.dtype == torch.float32 and torch.equal(pa, pb)  # the weights stay fp32: autocast casts copies
    meta = RunDir(tmp_path / "a").read_checkpoint_meta()
    assert meta["precision"] == precision
    assert (meta["scaler"] is not None) == (precision == "fp16")


def test_bf16_and_fp32_train_to_nearly_the_same_loss(tmp_path):
    fp32 = aekit.train(out=tmp_path / "fp32", precision="fp32", **FAST)
    bf16 = aekit.train(out=tmp_path / "bf16", precision="bf16", **FAST)
    assert fp32.metrics[-1]["test_loss"] != bf16.metrics[-1]["test_loss"]  # the arithmetic did change
    assert bf16.metrics[-1]["test_loss"] == pytest.approx(fp32.metrics[-1]["test_loss"], rel=0.05)


def test_the_run_log_names_the_precision_auto_chose(tmp_path):
    lines = []
    aekit.train(out=tmp_path / "run", precision="auto", log=lines.append, **{**FAST, "verbose": True})
    assert any(" in fp32 -> " in line for line in lines)  # the default preset is below auto's bf16 size
