
import numpy as np
import pytest
import torch

import aekit
from aekit.config import TrainConfig
from aekit.errors import ConfigError, RunError
from aekit.models import create_model
from aekit.rundir import RunDir
from aekit.training import Callback, Trainer


def _tiny_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)


def test_trainer_reduces_loss_and_calls_hooks():
    torch.manual_seed(0)
    from aekit.data import load_dataset

    data = load_dataset("mnist-sample")
    x_train = torch.from_numpy(data.x_train[:1000])
    x_test = torch.from_numpy(data.x_test[:200])
    model = create_model("mlp", hidden=(64,), latent_dim=8)
    calls = []

    class Spy(Callback):
        def on_fit_start(self, t): calls.append("fit_start")
        def on_epoch_start(self, t, steps): calls.append(("epoch_start", steps))
        def on_step_end(self, t, loss): calls.append("step")
        def on_epoch_end(self, t, m): calls.append(("epoch_end", m["epoch"]))
        def on_fit_end(self, t): calls.append("fit_end")

    trainer = Trainer(model, TrainConfig(epochs=3, batch_size=100, lr=0.005), callbacks=[Spy()])
    before = trainer.evaluate(x_test)["loss"]
    history = trainer.fit(x_train, x_test)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["test_loss"] < 0.6 * before
    assert calls[0] == "fit_start" and calls[-1] == "fit_end"
    assert calls[1] == ("epoch_start", 10) and calls.count("step") == 30
    assert history[-1]["step"] == 30
    for h in history:
        assert np.isfinite([h["train_loss"], h["test_loss"], h["test_mse"]]).all()


def test_callback_can_stop_training():
    class StopAfterOne(Callback):
        def on_epoch_end(self, t, m):
            t.should_stop = True

    trainer = Trainer(create_model("mlp"), TrainConfig(epochs=5, batch_size=128), callbacks=[StopAfterOne()])
    assert len(trainer.fit(_tiny_data(), _tiny_data(64, 1))) == 1


def test_checkpoint_round_trip_is_exact(tmp_path):
    torch.manual_seed(1)
    model = create_model("mlp", latent_dim=5)
    RunDir(tmp_path).save_weights("checkpoint", model, {"epoch": 3})
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    meta = RunDir(tmp_path).read_checkpoint_meta("checkpoint")
    assert meta["epoch"] == 3 and meta["model"] == "mlp" and meta["input_shape"] == [1, 28, 28]
    other = create_model("mlp", latent_dim=5)
    RunDir(tmp_path).load_weights("checkpoint", other)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model.eval()(x).recon_x, other.eval()(x).recon_x)


def test_checkpoint_load_errors_are_clear(tmp_path):
    model = create_model("mlp", latent_dim=5)
    run_dir = RunDir(tmp_path)
    with pytest.raises(RunError, match="no checkpoint here"):
        run_dir.load_weights("checkpoint", model)
    (tmp_path / "best.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match="corrupt"):
        run_dir.load_weights("best", model)
    run_dir.save_weights("checkpoint", create_model("mlp", latent_dim=2))
    with pytest.raises(RunError, match="do not fit"):
        run_dir.load_weights("checkpoint", model)


def test_load_run_gives_the_same_outputs(sample_run):
    again = aekit.load_run(sample_run.path)
    data = sample_run.load_data()
    x = data.x_test[:50]
    assert np.array_equal(sample_run.encode(x), again.encode(x))
    assert np.array_equal(sample_run.reconstruct(x), again.reconstruct(x))
    assert again.config == sample_run.config
    assert again.metrics == sample_run.metrics
    z = torch.zeros(2, 3)
    assert torch.equal(sample_run.model.decode(z), again.model.decode(z))


def test_load_run_errors(tmp_path):
    with pytest.raises(RunError, match="no such run directory"):
        aekit.load_run(tmp_path / "nope")
    with pytest.raises(RunError, match="no checkpoint"):
        aekit.load_run(tmp_path)


def test_same_seed_same_metrics_to_the_last_digit(tmp_path):
    kwargs = dict(dataset="mnist-sample", epochs=2, device="cpu", verbose=False, progress=False, seed=3, plots=False)
    a = aekit.train(out=tmp_path / "a", **kwargs)
    b = aekit.train(out=tmp_path / "b", **kwargs)
    strip = lambda ms: [{k: v for k, v in m.items() if k != "seconds"} for m in ms]  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics)
    from safetensors.numpy import load_file  # the files also hold wall-clock seconds: compare the tensors

    ta, tb = (load_file(tmp_path / run / "checkpoint.safetensors") for run in ("a", "b"))
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    c = aekit.train(out=tmp_path / "c", **{**kwargs, "seed": 4})
    assert strip(c.metrics) != strip(a.metrics)


def test_train_refuses_to_overwrite_a_run(sample_run):
    with pytest.raises(ConfigError, match="already holds a run"):
        aekit.train(dataset="mnist-sample", epochs=1, out=sample_run.path, verbose=False)


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os

    from aekit.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
