"""--precision: what ``auto`` picks, autocast and the gradient scaler, determinism in every precision."""

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError
from aekit.models import cost, create_model
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
    monkeypatch.setattr(cost, "BF16_HOLDS_QUALITY", True)
    assert prec.resolve_precision("auto", CPU, _model(preset)) == "fp32"


def test_auto_picks_bf16_only_with_the_hardware_the_evidence_and_a_model_big_enough(monkeypatch):
    big = _model("vae-2d")
    assert prec.multiply_adds(big) >= prec.AUTO_BF16_MIN_MACS
    for native, holds, want in [(True, True, "bf16"), (False, True, "fp32"), (True, False, "fp32")]:
        monkeypatch.setattr(prec, "native_bf16", lambda device, native=native: native)
        monkeypatch.setattr(cost, "BF16_HOLDS_QUALITY", holds)
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


def test_fp16_has_a_gradient_scaler_and_the_others_one_only_to_skip_steps():
    scalers = {}
    for name in ("fp32", "bf16", "fp16"):
        for skip in (False, True):
            p = prec.Precision(name, CPU, skip_non_finite=skip)
            p.start()
            scalers[name, skip] = p.scaler
            assert p.skips == (name == "fp16" or skip)
    assert isinstance(scalers["fp16", False], torch.amp.GradScaler) and scalers["fp16", False].get_scale() == 2**16
    assert scalers["fp32", False] is None and scalers["bf16", False] is None
    assert scalers["fp32", True].get_scale() == 1.0  # --on-nan skip: a scale of 1 changes no bit


def test_a_model_declares_whether_bf16_suits_it(monkeypatch):
    """The precision `auto` asks the model; the default is the measured rule, and a model file may override it."""
    monkeypatch.setattr(prec, "native_bf16", lambda device: True)
    big = _model("vae-2d")
    assert big.suits_bf16() and prec.resolve_precision("auto", CPU, big) == "bf16"
    monkeypatch.setattr(type(big), "suits_bf16", lambda self: False)
    assert prec.resolve_precision("auto", CPU, big) == "fp32"
    small = _model("classic-3d-tanh")
    monkeypatch.setattr(type(small), "suits_bf16", lambda self: True)
    assert prec.resolve_precision("auto", CPU, small) == "bf16"


def test_choose_precision_builds_no_real_model_and_keeps_a_recorded_choice(monkeypatch):
    monkeypatch.setattr(prec, "native_bf16", lambda device: True)
    cfg = build_config("vae-2d")
    state = torch.get_rng_state()
    assert prec.choose_precision(cfg, (1, 28, 28), CPU) == "bf16"
    assert torch.equal(torch.get_rng_state(), state)  # the random state is as it was
    assert prec.choose_precision(cfg, (1, 28, 28), CPU, recorded="fp32") == "fp32"  # a resumed run's own
    assert prec.choose_precision(build_config("classic-3d-tanh"), (1, 28, 28), CPU) == "fp32"


def test_an_impossible_precision_is_refused_before_the_run_writes_a_file(tmp_path, monkeypatch):
    def no_fp16(name, device, model=None):
        raise ConfigError("train.precision: fp16 autocast is not supported on this device")

    written = []
    monkeypatch.setattr(prec, "resolve_precision", no_fp16)
    monkeypatch.setattr(RunDir, "write_config", lambda self, *a, **k: written.append(self.path))
    with pytest.raises(ConfigError, match="train.precision"):
        aekit.train(out=tmp_path / "run", precision="fp16", **FAST)
    assert written == []  # refused before config.json
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_config_json_records_the_precision_used_and_reruns_from_it(tmp_path, monkeypatch):
    run = aekit.train(out=tmp_path / "a", precision="auto", **{**FAST, "epochs": 1})
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["train"]["precision"] == "auto" and saved["resolved"]["precision"] == "fp32"
    again = aekit.train(config=tmp_path / "a" / "config.json", out=tmp_path / "b", verbose=False, progress=False,
                        plots=False)
    assert again.metrics[0]["train_loss"] == run.metrics[0]["train_loss"]
    # a run dir from before the resolved section still reads, and resumes in its checkpoint's precision
    del saved["resolved"]
    (tmp_path / "a" / "config.json").write_text(json.dumps(saved))
    assert RunDir(tmp_path / "a").read_resolved() == {}
    monkeypatch.setattr(prec, "native_bf16", lambda device: True)
    monkeypatch.setattr(cost, "AUTO_BF16_MIN_MACS", 1)  # auto would pick bf16 today
    more = aekit.train(resume=tmp_path / "a", epochs=2, verbose=False, progress=False, plots=False)
    assert len(more.metrics) == 2 and RunDir(tmp_path / "a").read_checkpoint_meta()["precision"] == "fp32"
    assert RunDir(tmp_path / "a").read_resolved()["precision"] == "fp32"


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=pytest.mark.slow),
                                       pytest.param("fp16", marks=pytest.mark.slow)])
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


@pytest.mark.slow
def test_bf16_and_fp32_train_to_nearly_the_same_loss(tmp_path):
    fp32 = aekit.train(out=tmp_path / "fp32", precision="fp32", **FAST)
    bf16 = aekit.train(out=tmp_path / "bf16", precision="bf16", **FAST)
    assert fp32.metrics[-1]["test_loss"] != bf16.metrics[-1]["test_loss"]  # the arithmetic did change
    assert bf16.metrics[-1]["test_loss"] == pytest.approx(fp32.metrics[-1]["test_loss"], rel=0.05)


def test_the_run_log_names_the_precision_auto_chose(tmp_path):
    lines = []
    aekit.train(out=tmp_path / "run", precision="auto", log=lines.append, **{**FAST, "verbose": True})
    assert any(" in fp32 -> " in line for line in lines)  # the default preset is below auto's bf16 size


def test_cpu_training_flushes_denormals_and_gives_the_setting_back(tmp_path):
    """Set at the start of training and of a resumed run, restored afterwards; the runs still repeat and
    resume to the last digit with it on (here, and in test_resume.py / test_resume_kill.py, which train on the CPU).
    """
    from aekit.training import Callback

    seen = []

    class Look(Callback):
        def on_epoch_end(self, trainer, metrics):
            seen.append(prec.flushing_denormals())

    assert prec.FLUSH_DENORMAL_ON_CPU and not prec.flushing_denormals()
    a = aekit.train(out=tmp_path / "a", callbacks=[Look()], **FAST)
    aekit.train(out=tmp_path / "b", **{**FAST, "epochs": 1})
    assert not prec.flushing_denormals()  # given back
    more = aekit.train(resume=tmp_path / "b", epochs=2, callbacks=[Look()], verbose=False, progress=False,
                       plots=False)
    assert seen == [True, True, True] and not prec.flushing_denormals()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(more.metrics) == strip(a.metrics)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), more.model.parameters()))
    torch.set_flush_denormal(True)  # a setting of the caller's own is kept too
    try:
        with prec.Precision("fp32", CPU).numerics():
            assert prec.flushing_denormals()
        assert prec.flushing_denormals()
    finally:
        torch.set_flush_denormal(False)
    with prec.Precision("fp32", CPU).numerics():
        assert prec.flushing_denormals()
    assert not prec.flushing_denormals()


def test_a_run_killed_before_its_first_checkpoint_resumes_in_the_precision_config_json_recorded(tmp_path):
    aekit.train(out=tmp_path / "a", **{**FAST, "epochs": 1})
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "cut").mkdir()  # what a run killed before its first checkpoint leaves: config.json alone
    (tmp_path / "cut" / "config.json").write_text(json.dumps({**saved, "resolved": {"precision": "bf16"}}))
    aekit.train(resume=tmp_path / "cut", verbose=False, progress=False, plots=False)
    assert RunDir(tmp_path / "cut").read_checkpoint_meta()["precision"] == "bf16"  # not what auto picks: fp32
