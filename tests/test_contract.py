"""The model contract, held by a model that lives here: added in one block, used by aekit unchanged.

``GridNet`` below is the model docs/adding-a-model.md walks through: a small conv
autoencoder whose code is a grid (``latent_dim`` channels at a quarter of the image
size: 4x7x7 on MNIST), with three named loss terms and an after-step hook (an
exponential moving average of the code's channel means, a buffer, that one of the
terms reads). The tests train it, resume it bit for bit, evaluate it, export it and
fit it as a scikit-learn estimator through aekit's public API, with nothing in aekit
knowing its name.
"""

# ---------------------------------------------------------------------------- the model, in one block
import math
from dataclasses import dataclass

import torch
from torch import nn

from aekit.config import ModelConfig, rule
from aekit.metric import Metric
from aekit.models import AutoEncoder, ModelOutput, register_model


@dataclass
class GridNetConfig(ModelConfig):
    width: int = rule(8, min=1, max=256, help="gridnet: channels of the hidden convolutions")
    code_weight: float = rule(1e-3, min=0.0, help="gridnet: weight of the code's mean square (term 'code')")
    drift_weight: float = rule(1e-2, min=0.0, help="gridnet: weight of the batch's drift from the EMA (term 'drift')")
    ema_decay: float = rule(0.9, min=0.0, max=1.0, help="gridnet: decay of the EMA of the code's channel means")


class GridNet(AutoEncoder):
    """Two stride-2 convolutions down to a ``(latent_dim, H/4, W/4)`` grid code, two transposed ones up."""

    summary = "test model: conv autoencoder with a grid code, three loss terms and an EMA buffer"
    config_class = GridNetConfig

    def __init__(self, config, input_shape):
        super().__init__(config, input_shape)
        c = input_shape[0]
        w, k = config.width, config.latent_dim
        self.encoder = nn.Sequential(nn.Conv2d(c, w, 3, 2, 1), nn.ReLU(), nn.Conv2d(w, k, 3, 2, 1))
        self.decoder = nn.Sequential(nn.ConvTranspose2d(k, w, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(w, c, 4, 2, 1), nn.Sigmoid())
        # a buffer: in the state_dict, so every checkpoint holds it and a resume continues it
        self.register_buffer("code_mean", torch.zeros(k))
        self._batch_mean = None  # the last training batch's channel means, for after_optimizer_step

    @property
    def code_shape(self):
        _, h, w = self.input_shape
        return (self.latent_dim, math.ceil(h / 4), math.ceil(w / 4))  # two stride-2 convolutions

    def encode(self, x):
        return self.encoder(x)  # (B, C, H, W) -> (B, k, H/4, W/4)

    def decode(self, z):
        return self.decoder(z)  # (B, k, H/4, W/4) -> (B, C, H, W)

    def forward(self, x):
        z = self.encode(x)
        recon_x = self.decode(z)
        means = z.mean((0, 2, 3))  # (k,)
        if self.training:
            self._batch_mean = means.detach().float()  # under bf16/fp16 autocast z is low precision
        return ModelOutput(recon_x, z, terms={
            "recon": self.reconstruction_loss(recon_x, x),
            "code": self.config.code_weight * z.pow(2).mean(),
            "drift": self.config.drift_weight * (means - self.code_mean).pow(2).sum(),
        })

    def after_optimizer_step(self):
        if self._batch_mean is not None:
            self.code_mean.lerp_(self._batch_mean, 1 - self.config.ema_decay)

    def metrics(self):
        # declared once: aekit eval computes it into eval.json, and the table and the report show it
        return (Metric("code_drift", "code drift from its EMA", "lower",
                       "mean square distance of the test codes' channel means from the EMA the hook kept",
                       needs="model", function=code_drift, fmt=".4f"),)


def code_drift(run, data) -> float:
    """The model's own metric: how far the test images' code means lie from the EMA."""
    model = run.model
    codes = model.unflat_codes(torch.from_numpy(run.encode(data.x_test[:500])))  # (N, k, h, w)
    return float((codes.mean((0, 2, 3)) - model.code_mean.cpu()).pow(2).sum())


# ---------------------------------------------------------------------------- the tests
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import aekit  # noqa: E402
from aekit.models import create_model  # noqa: E402
from aekit.models.configs import MODEL_CONFIGS  # noqa: E402
from aekit.models.registry import _REGISTRY  # noqa: E402

NAME = "gridnet-test"
FAST = dict(dataset="mnist-sample", device="cpu", verbose=False, progress=False, plots=False, batch_size=64,
            lr=0.01, precision="fp32", seed=3)
MODEL = dict(model=NAME, latent_dim=4)


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Registered for this module's tests, then taken out: the registry-driven tests elsewhere in the
    session run over aekit's own models. A user's file registers at import, with the same decorator.
    """
    register_model(NAME)(GridNet)
    yield
    _REGISTRY.pop(NAME, None)
    MODEL_CONFIGS.pop(NAME, None)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return aekit.train(out=tmp_path_factory.mktemp("contract") / "run", epochs=1, **MODEL, **FAST)


def test_the_code_is_a_grid_and_flat_codes_undo_it():
    model = create_model(NAME, (1, 28, 28), latent_dim=4)
    x = torch.rand(5, 1, 28, 28)
    z = model.encode(x)
    assert z.shape == (5, *model.code_shape) == (5, 4, 7, 7)
    flat = model.flat_codes(z)
    assert flat.shape == (5, model.code_size) == (5, 196)
    assert torch.equal(model.unflat_codes(flat), z)
    assert model.describe_code() == "codes flattened: 4x7x7 grid = 196 features"
    out = model(x)
    assert list(out.terms) == ["recon", "code", "drift"]
    assert torch.allclose(out.loss, out.terms["recon"] + out.terms["code"] + out.terms["drift"])
    assert torch.equal(out.recon_loss, out.terms["recon"])
    assert torch.allclose(out.reg_loss, out.terms["code"] + out.terms["drift"])


def test_it_trains_with_every_term_in_the_metrics_and_the_hook_after_each_step(run):
    (row,) = run.metrics
    for split in ("train", "test"):
        for key in ("loss", "recon_loss", "reg_loss", "code", "drift"):
            assert math.isfinite(row[f"{split}_{key}"]), (split, key)
        assert row[f"{split}_reg_loss"] == pytest.approx(row[f"{split}_code"] + row[f"{split}_drift"], rel=1e-6)
        assert row[f"{split}_loss"] == pytest.approx(row[f"{split}_recon_loss"] + row[f"{split}_reg_loss"], rel=1e-5)
    assert row["test_mse"] < 0.1  # it learned something: the mean image scores about 0.067 ... 0.1
    assert bool(run.model.code_mean.abs().sum() > 0)  # the EMA moved: the hook ran after the steps
    again = aekit.load_run(run.path)  # loads by name, the EMA buffer with the weights
    assert torch.equal(again.model.code_mean, run.model.code_mean)
    assert run.encode(np.zeros((2, 1, 28, 28), np.uint8)).shape == (2, 196)
    assert run.decode(run.encode(np.zeros((2, 1, 28, 28), np.uint8))).shape == (2, 1, 28, 28)


def test_the_console_shows_every_term(tmp_path, capsys):
    aekit.train(out=tmp_path / "r", epochs=1, **MODEL, **{**FAST, "verbose": True})
    found = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch 1/1")]
    assert found and all(f"{t} 0." in found[0] for t in ("(recon", " code", " drift")), found


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return aekit.train(out=tmp_path_factory.mktemp("contract") / "whole", epochs=2, **MODEL, **FAST)


def _same_run(a, b):
    from safetensors.numpy import load_file

    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics)
    ta, tb = load_file(a.path / "checkpoint.safetensors"), load_file(b.path / "checkpoint.safetensors")
    keys = [k for k in ta if k.startswith(("model/", "optimizer/"))]
    assert "model/code_mean" in keys and all(np.array_equal(ta[k], tb[k]) for k in keys)


def test_a_finished_run_extended_equals_one_run_through(run, whole, tmp_path):
    import shutil

    shutil.copytree(run.path, tmp_path / "cut")
    again = aekit.train(resume=tmp_path / "cut", epochs=2, device="cpu", verbose=False, progress=False, plots=False)
    _same_run(again, whole)


def test_a_run_stopped_mid_epoch_resumes_to_the_bit(whole, tmp_path):
    from aekit.errors import Interrupted
    from aekit.training import Callback

    class CtrlC(Callback):  # as Ctrl-C would: the trainer saves a checkpoint at the next step boundary
        def on_step_end(self, trainer, loss):
            if trainer.step == 40:  # of 63 steps in the first epoch
                trainer._interrupted = True

    with pytest.raises(Interrupted):
        aekit.train(out=tmp_path / "cut", epochs=2, callbacks=[CtrlC()], **MODEL, **FAST)
    again = aekit.train(resume=tmp_path / "cut", device="cpu", verbose=False, progress=False, plots=False)
    _same_run(again, whole)


def test_a_run_of_an_unregistered_model_names_it(run):
    from aekit.errors import ConfigError

    cls = _REGISTRY.pop(NAME)
    config = MODEL_CONFIGS.pop(NAME)
    try:
        with pytest.raises(ConfigError, match=f"unknown model '{NAME}'.*import the file with its @register_model"):
            aekit.load_run(run.path)
    finally:
        _REGISTRY[NAME], MODEL_CONFIGS[NAME] = cls, config


def test_it_evaluates(run):
    from aekit.evaluation.suite import EvalSettings

    settings = EvalSettings(semi_sizes=(20,), semi_draws=1, kmeans_init=1, probe_train=500, logreg_max_iter=50)
    result = aekit.evaluate(run, settings=settings, cache=False, log=lambda m: None)
    model_row = result.summary["results"]["model"]
    assert model_row and all(np.isfinite(v) for v in model_row.values() if isinstance(v, float))
    assert {"knn_acc", "logreg_acc", "kmeans_acc", "semi_20"} <= model_row.keys()  # the probes read flat codes
    assert result.summary["methods"]["pca_components"] == 196  # PCA's size: the flat code's, 4x7x7
    drift = model_row["code_drift"]  # the model's own metric, declared once, beside the built-ins
    assert math.isfinite(drift) and drift >= 0
    assert result.summary["metrics"]["code_drift"]["direction"] == "lower"
    from aekit.evaluation.table import eval_rows

    _, rows = eval_rows(result.summary)
    assert any("code drift from its EMA" in row[0] for row in rows)


def test_it_exports(run, tmp_path):
    from aekit.integrations.export import export_run, read_metadata

    fmt = "onnx"
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        fmt = "torchscript"
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    enc, dec = export_run(run, fmt, out=tmp_path, check_images=images)  # each checked against PyTorch
    meta = read_metadata(enc)
    assert meta["aekit.code_shape"] == "4,7,7" and meta["aekit.latent_dim"] == "196"
    assert "4x7x7 grid" in read_metadata(dec)["aekit.code"]


def test_it_is_a_scikit_learn_estimator():
    from aekit.data.load import load_dataset
    from aekit.sklearn import AnomalyDetector, AutoencoderTransformer

    data = load_dataset("mnist-sample")
    X = data.x_train[:600].reshape(600, -1)
    ae = AutoencoderTransformer(model=NAME, latent_dim=4, epochs=1, batch_size=100, random_state=0,
                                overrides={"precision": "fp32"}).fit(X)
    z = ae.transform(X[:10])
    assert z.shape == (10, 196) == (10, ae.n_components_)
    back = ae.inverse_transform(z)
    assert back.shape == (10, 784) and np.isfinite(back).all()
    det = AnomalyDetector(ae, contamination=0.1).fit(X)
    np.testing.assert_allclose(det.decision_function(X[:10]), ae.reconstruction_error(X[:10]), rtol=1e-12)


def test_the_adding_a_model_page_shows_this_model():
    """docs/adding-a-model.md walks through this file's model block, registered by its decorator there."""
    from pathlib import Path

    source = Path(__file__).read_text()
    block = source.split(" the model, in one block\n", 1)[1].split("\n# ------", 1)[0].strip()
    page = (Path(__file__).resolve().parents[1] / "docs" / "adding-a-model.md").read_text()
    shown = page.split("```python\n", 1)[1].split("```", 1)[0].strip()
    assert shown.replace('@register_model("gridnet")\n', "") == block


def test_the_reports_training_table_shows_the_test_terms(run):
    from aekit.visualization.report import ReportInputs, training_section

    body = training_section(ReportInputs.from_run_dir(run.path)).body
    for key in ("test_loss", "test_recon_loss", "test_code", "test_drift", "test_mse"):
        assert key in body, key


def test_the_reports_summary_names_the_grid_code(run):
    from aekit.visualization.report import ReportInputs, summary_section

    inputs = ReportInputs.from_run_dir(run.path)
    assert inputs.config["resolved"]["code_shape"] == [4, 7, 7]  # recorded when the run was written
    assert "4x7x7 grid code (196 features)" in summary_section(inputs).body


def test_the_latent_picture_says_it_shows_a_flattened_grid(run):
    from aekit.visualization.plots import plot_latent

    fig = plot_latent(run, run.load_data())
    assert fig.axes[0].get_title().startswith("codes flattened: 4x7x7 grid = 196 features, PCA to 2-D")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_it_trains_under_autocast(precision):
    from aekit.config import TrainConfig
    from aekit.training import Trainer

    torch.manual_seed(0)
    model = create_model(NAME, (1, 28, 28), latent_dim=4)
    x = torch.rand(64, 1, 28, 28)
    (row,) = Trainer(model, TrainConfig(epochs=1, batch_size=16, precision=precision)).fit(x, x[:16])
    assert all(math.isfinite(row[f"{s}_{t}"]) for s in ("train", "test") for t in ("loss", "code", "drift"))
    assert model.code_mean.dtype == torch.float32 and bool(model.code_mean.abs().sum() > 0)


def test_init_from_data_gets_a_seeded_sample_of_training_images_once_and_not_on_resume():
    from aekit.config import TrainConfig
    from aekit.training.trainer import Trainer

    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (40, 1, 8, 8), dtype=np.uint8))
    rows = {tuple(r.flatten().tolist()) for r in x.float() / 255}

    def trained(seed, state=None):
        model = create_model("mlp", (1, 8, 8), hidden=[8], latent_dim=2)
        calls = []
        model.init_sample = 7
        model.init_from_data = calls.append
        trainer = Trainer(model, TrainConfig(epochs=1, batch_size=10, seed=seed), "unit", precision="fp32")
        if state is not None:
            trainer.load_state_dict(*state)
        trainer.fit(x, x[:10])
        return calls, trainer

    (sample,), trainer = trained(3)
    assert sample.shape == (7, 1, 8, 8) and sample.dtype == torch.float32 and 0 <= sample.min() <= sample.max() <= 1
    assert {tuple(r.flatten().tolist()) for r in sample} <= rows  # training images, in the model's range
    assert len({tuple(r.flatten().tolist()) for r in sample}) == 7  # drawn without repeats
    (again,), _ = trained(3)
    (other,), _ = trained(4)
    assert torch.equal(sample, again) and not torch.equal(sample, other)  # seeded by the run's seed
    calls, _ = trained(3, trainer.state_dict())
    assert calls == []  # a resumed run keeps what its checkpoint holds
