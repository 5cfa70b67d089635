"""Registry-driven checks: every registered model, on each body it can sit on, gets them."""

import dataclasses

import pytest
import torch

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import AutoEncoder, ModelOutput, create_model, get_model_class, list_models, register_model
from aekit.presets import PRESETS, list_presets
from aekit.rundir import RunDir

SHAPES = [(1, 28, 28), (3, 32, 32)]


def _variants():
    """(name, extra fields): every model, plus the conv body for those with an ``arch`` field."""
    out = []
    for name in list_models():
        out.append(pytest.param(name, {}, id=name))
        fields = {f.name for f in dataclasses.fields(get_model_class(name).config_class)}
        if "arch" in fields:
            out.append(pytest.param(name, {"arch": "conv", "channels": (8, 16)}, id=f"{name}-conv"))
    return out


VARIANTS = _variants()


@pytest.mark.parametrize("name, extra", VARIANTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_shapes_loss_and_gradients(name, extra, shape):
    torch.manual_seed(0)
    model = create_model(name, shape, latent_dim=4, **extra)
    x = torch.rand(5, *shape)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.recon_x.shape == x.shape
    assert out.z.shape == (5, *model.code_shape) == (5, 4)
    assert model.encode(x).shape == (5, 4)
    assert model.decode(out.z).shape == x.shape
    assert torch.equal(model.unflat_codes(model.flat_codes(out.z)), out.z)
    assert torch.isfinite(out.loss) and out.loss.ndim == 0
    assert "recon" in out.terms and all(t.ndim == 0 for t in out.terms.values())
    assert torch.allclose(out.loss, sum(out.terms.values()))
    assert torch.allclose(out.loss, out.recon_loss + out.reg_loss)
    out.loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.any(p.grad != 0), f"{name}: no gradient reaches {pname}"


@pytest.mark.parametrize("name, extra", VARIANTS)
def test_save_and_load_give_identical_outputs(name, extra, tmp_path):
    torch.manual_seed(1)
    model = create_model(name, (1, 28, 28), latent_dim=3, **extra)
    with torch.no_grad():  # move away from the initialisation so a fresh model cannot pass by chance
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    RunDir(tmp_path).save_weights("checkpoint", model)
    torch.manual_seed(2)
    other = create_model(name, (1, 28, 28), latent_dim=3, **extra)
    RunDir(tmp_path).load_weights("checkpoint", other)
    model.eval(), other.eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model.encode(x), other.encode(x))
        a, b = model(x), other(x)
        assert torch.equal(a.recon_x, b.recon_x) and torch.equal(a.loss, b.loss)


@pytest.mark.parametrize("name, extra", VARIANTS)
def test_eval_mode_is_deterministic(name, extra):
    model = create_model(name, (1, 28, 28), latent_dim=3, **extra).eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x).recon_x, model(x).recon_x)
        assert torch.equal(model(x).recon_x, model.decode(model.encode(x)))


@pytest.mark.parametrize("name", list_models())
def test_one_epoch_on_mnist_sample_through_the_cli(name, tmp_path, capsys):
    import json

    import numpy as np

    import aekit
    from aekit.cli.main import main

    out = tmp_path / name
    args = ["train", "--model", name, "--dataset", "mnist-sample", "--epochs", "1", "--batch-size", "64",
            "--latent-dim", "4", "--hidden", "64", "--device", "cpu", "--out", str(out)]
    fields = {f.name for f in dataclasses.fields(get_model_class(name).config_class)}
    if "channels" in fields:
        args += ["--channels", "8,16"]
    if "width" in fields:
        args += ["--width", "8"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    assert "epoch 1/1" in stdout and f"run saved in {out}" in stdout
    assert json.loads((out / "config.json").read_text())["model"]["model"] == name
    (metrics,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite([metrics["train_loss"], metrics["test_loss"], metrics["test_mse"]]).all()
    assert metrics["test_mse"] < 0.11  # learnt something: an all-black guess scores 0.113, an untrained one more
    assert (out / "recon" / "epoch_001.png").exists()
    for picture in ("recon.gif", "recon.png", "latent.png", "latent.html", "loss.png", "report.html"):
        assert (out / picture).stat().st_size > 1000, f"{name}: {picture} missing"
    run = aekit.load_run(out)
    x = run.load_data().x_test[:8]
    assert run.encode(x).shape == (8, 4) and run.reconstruct(x).shape == (8, 1, 28, 28)


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_builds_its_model(preset):
    from aekit.resolve import build_config

    cfg = build_config(preset)
    fields = {k: v for k, v in cfg.to_dict()["model"].items() if k != "model"}
    model = create_model(cfg.model.model, (1, 28, 28), **fields)
    x = torch.rand(2, 1, 28, 28) - (0.5 if cfg.data.scale == "centered" else 0.0)
    assert torch.isfinite(model(x).loss)
    if PRESETS[preset]["source"] == "aekit":
        assert len(PRESETS[preset]["summary"]) > 60  # says what it is good at, not just its name


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_summary_and_config_class(name):
    cls = get_model_class(name)
    assert cls.summary
    assert issubclass(cls.config_class, ModelConfig)


def test_mlp_architecture_matches_the_seed():
    model = create_model("mlp", hidden=(128, 64, 12), latent_dim=3, activation="tanh",
                         latent_activation="linear", output_activation="sigmoid")
    linears = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 64), (64, 12), (12, 3)]
    assert isinstance(model.encoder[-1], torch.nn.Linear)  # linear code
    assert [type(m).__name__ for m in model.decoder][-2:] == ["Linear", "Sigmoid"]
    assert sum(isinstance(m, torch.nn.Tanh) for m in model.decoder) == 3


def test_sigmoid_code_and_half_mse():
    model = create_model("mlp", hidden=(256, 128), latent_dim=100, activation="sigmoid",
                         latent_activation="sigmoid", loss_scale=0.5)
    assert isinstance(model.encoder[-1], torch.nn.Sigmoid)
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert torch.allclose(out.loss, 0.5 * torch.mean((out.recon_x - x) ** 2))


def test_bce_loss_is_torch_bce():
    model = create_model("mlp", hidden=(), latent_dim=30, activation="relu", latent_activation="relu",
                         loss="bce")
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert torch.allclose(out.loss, torch.nn.functional.binary_cross_entropy(out.recon_x, x))
    assert len([m for m in model.encoder if isinstance(m, torch.nn.Linear)]) == 1


def test_unknown_model_and_bad_field():
    with pytest.raises(ConfigError, match="unknown model 'nope'; choose one of: .*mlp"):
        create_model("nope")
    with pytest.raises(ConfigError, match="model.latent_dim"):
        create_model("mlp", latent_dim=0)


def test_registering_twice_is_refused():
    with pytest.raises(RuntimeError):
        register_model("mlp")(type("Dup", (AutoEncoder,), {}))


def test_a_conv_run_saved_before_conv_decoder_existed_still_loads(tmp_path):
    import json

    import aekit
    from aekit.models.configs import ConvConfig

    run = aekit.train("conv-16", dataset="mnist-sample", epochs=1, out=tmp_path / "new", plots=False, verbose=False,
                      progress=False, device="cpu", conv_decoder="refine", channels="8,16")
    old = RunDir(tmp_path / "new")
    tensors, meta = old.load_checkpoint()
    del meta["config"]["model"]["conv_decoder"]  # as an older aekit wrote it
    old.save_checkpoint("checkpoint", tensors, {k: v for k, v in meta.items() if k != "format"})
    again = aekit.load_run(tmp_path / "new")
    assert again.config.model.conv_decoder == "refine" and ConvConfig().conv_decoder == "subpixel"
    x = run.load_data().x_test[:4]
    assert (again.reconstruct(x) == run.reconstruct(x)).all()
    assert json.loads((tmp_path / "new" / "config.json").read_text())["model"]["conv_decoder"] == "refine"


def test_model_output_sums_its_named_terms_and_keeps_the_old_keywords():
    recon, kl, extra = torch.tensor(0.5), torch.tensor(0.25), torch.tensor(0.125)
    out = ModelOutput(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3), terms={"recon": recon, "kl": kl, "extra": extra})
    assert out.loss.item() == 0.875 and out.recon_loss.item() == 0.5 and out.reg_loss.item() == 0.375
    only = ModelOutput(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3), terms={"recon": recon})
    assert only.loss is recon and only.reg_loss.item() == 0.0  # a plain model: no penalty, no extra op
    old = ModelOutput(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3), loss=recon + kl, recon_loss=recon, reg_loss=kl)
    assert list(old.terms) == ["recon", "reg"] and old.loss.item() == 0.75 and old.reg_loss is kl
    with pytest.raises(TypeError, match="terms is empty"):
        ModelOutput(torch.zeros(1), torch.zeros(1), terms={})


@pytest.mark.parametrize("name, terms", [("mlp", ["recon"]), ("vae", ["recon", "kl"]),
                                         ("sparse", ["recon", "sparsity"]), ("contractive", ["recon", "contraction"])])
def test_built_in_models_name_their_loss_terms(name, terms):
    model = create_model(name, (1, 8, 8), latent_dim=2, hidden=(8,))
    assert list(model(torch.rand(3, 1, 8, 8)).terms) == terms


def test_index_codes_flatten_one_hot_and_back():
    class Indexed(AutoEncoder):  # a code of 2x3 indices into a codebook of 5 entries
        code_kind, code_levels = "indices", 5

        @property
        def code_shape(self):
            return (2, 3)

    model = Indexed(ModelConfig(), (1, 4, 4))
    z = torch.randint(0, 5, (7, 2, 3))
    flat = model.flat_codes(z)
    assert flat.shape == (7, model.code_size) == (7, 30) and flat.dtype == torch.float32
    assert torch.equal(flat.view(7, 6, 5).argmax(2).view(7, 2, 3), z)
    assert torch.equal(flat.sum(1), torch.full((7,), 6.0))  # one 1 per code unit
    assert torch.equal(model.unflat_codes(flat), z)
    assert model.describe_code() == "codes flattened: 2x3 grid of indices below 5, one-hot = 30 features"


def test_a_model_of_ones_own_registers_with_its_config_and_trains():
    from dataclasses import dataclass

    from aekit.config import rule
    from aekit.models.configs import MODEL_CONFIGS
    from aekit.models.registry import _REGISTRY
    from aekit.training import Trainer

    @dataclass
    class TinyConfig(ModelConfig):
        shrink: float = rule(0.5, min=0.0, help="tiny: weight of the code's mean square")

    class Tiny(AutoEncoder):
        config_class = TinyConfig

        def __init__(self, config, input_shape):
            super().__init__(config, input_shape)
            self.net = torch.nn.Linear(self.input_dim, self.latent_dim)
            self.out = torch.nn.Linear(self.latent_dim, self.input_dim)
            self.steps_seen = 0

        def encode(self, x):
            return self.net(x.flatten(1))

        def decode(self, z):
            return self.out(z).view(-1, *self.input_shape)

        def penalties(self, x, z):
            return {"shrink": self.config.shrink * z.pow(2).mean()}

        def after_optimizer_step(self):
            self.steps_seen += 1

    register_model("tiny-own")(Tiny)
    try:
        model = create_model("tiny-own", (1, 4, 4), latent_dim=2, shrink=0.25)
        assert type(model) is Tiny and model.config.shrink == 0.25
        from aekit.config import TrainConfig

        x = torch.rand(40, 1, 4, 4)
        history = Trainer(model, TrainConfig(epochs=2, batch_size=16, precision="fp32")).fit(x, x[:8])
        assert model.steps_seen == 2 * 3  # after every optimiser step: 3 batches of 40 images, 2 epochs
        assert {"train_shrink", "test_shrink"} <= history[-1].keys()
        assert history[-1]["train_reg_loss"] == history[-1]["train_shrink"]
    finally:
        _REGISTRY.pop("tiny-own", None)
        MODEL_CONFIGS.pop("tiny-own", None)
