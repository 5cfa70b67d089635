"""Runs that survive: exact resume, one-file checkpoints, divergence, Ctrl-C, tolerant reading, checked inputs."""

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError, Diverged, InputError, Interrupted, RunError
from aekit.rundir import RunDir
from aekit.training import Callback

FAST = dict(dataset="mnist-sample", device="cpu", verbose=False, progress=False, plots=False, batch_size=256)


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _tensors(path):
    from safetensors.numpy import load_file

    return load_file(path)


def _same_state(a, b):
    """Weights and optimiser state of two checkpoints, bit for bit."""
    ta, tb = _tensors(a / "checkpoint.safetensors"), _tensors(b / "checkpoint.safetensors")
    keys = [k for k in ta if k.startswith(("model/", "optimizer/"))]
    return keys and set(keys) <= set(tb) and all(np.array_equal(ta[k], tb[k]) for k in keys)


class CtrlCAt(Callback):
    """Acts as Ctrl-C would, after optimisation step ``step`` of the main run (or of a stage)."""

    def __init__(self, step, stage=False):
        self.step, self.stage = step, stage

    def on_step_end(self, trainer, loss):
        count = trainer.step if trainer.phase.main else trainer.batch
        if trainer.phase.main != self.stage and count == self.step:
            trainer._interrupted = True


@pytest.mark.parametrize("overrides, stop", [
    (dict(model="vae", hidden="64", latent_dim=2, kl_warmup_epochs=1.5), dict(step=20)),  # noise, warm-up
    (dict(model="denoising", hidden="64", noise="salt_pepper"), dict(step=16)),  # mid-epoch: 16 steps/epoch
    (dict(model="stacked", hidden="64", pretrain_epochs=1), dict(step=5, stage=True)),  # inside pre-training
    (dict(model="mlp", hidden="64", precision="bf16"), dict(step=31)),
])
def test_a_stopped_run_resumed_equals_one_never_stopped(tmp_path, overrides, stop):
    kwargs = {**FAST, "epochs": 3, "seed": 5, **overrides}
    whole = aekit.train(out=tmp_path / "whole", **kwargs)
    with pytest.raises(Interrupted, match="continue it with: aekit train --resume"):
        aekit.train(out=tmp_path / "cut", callbacks=[CtrlCAt(**stop)], **kwargs)
    meta = RunDir(tmp_path / "cut").read_checkpoint_meta()
    assert meta["kind"] == "state" and meta["position"]["batch"] > 0 or stop.get("stage")  # saved mid-epoch
    again = aekit.train(resume=tmp_path / "cut", **{k: v for k, v in FAST.items() if k != "batch_size"
                                                  and k != "dataset"})
    assert _strip(again.metrics) == _strip(whole.metrics)
    assert _same_state(tmp_path / "whole", tmp_path / "cut")
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_resume_extends_a_finished_run_to_more_epochs(tmp_path):
    kwargs = {**FAST, "hidden": "64", "seed": 2}
    five = aekit.train(out=tmp_path / "five", epochs=5, **kwargs)
    aekit.train(out=tmp_path / "three", epochs=3, **kwargs)
    notes = []
    same = aekit.train(resume=tmp_path / "three", log=notes.append, plots=False)  # finished: nothing to do
    assert notes == [f"{tmp_path / 'three'}: already trained all its 3 epoch(s); nothing to do (to train on, give "
                     f"more: --resume {tmp_path / 'three'} --epochs 13)"] and len(same.metrics) == 3
    with pytest.raises(ConfigError, match=r"^epochs: .* has trained 3 epoch\(s\) already.*epochs=13"):
        aekit.train(resume=tmp_path / "three", epochs=2)
    more = aekit.train(resume=tmp_path / "three", epochs=5, verbose=False, progress=False, plots=False)
    assert _strip(more.metrics) == _strip(five.metrics)
    assert json.loads((tmp_path / "three" / "config.json").read_text())["train"]["epochs"] == 5
    with pytest.raises(ConfigError, match="checkpoint_every and max_memory can change, not lr$"):
        aekit.train(resume=tmp_path / "three", epochs=9, lr=0.1)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path):
    kwargs = {**FAST, "hidden": "64", "epochs": 2}
    whole = aekit.train(out=tmp_path / "whole", **kwargs)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_text((tmp_path / "whole" / "config.json").read_text())
    (cut / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 9}\n')  # from before the kill
    again = aekit.train(resume=cut, verbose=False, progress=False, plots=False)
    assert _strip(again.metrics) == _strip(whole.metrics)


def test_best_weights_and_history_come_back(tmp_path):
    run = aekit.train(out=tmp_path / "r", epochs=3, checkpoint_every=1e-9, **{**FAST, "hidden": "64"})
    best = aekit.load_run(tmp_path / "r", "best")
    epoch = min(run.metrics, key=lambda m: m["test_loss"])["epoch"]
    assert RunDir(tmp_path / "r").read_checkpoint_meta("best")["epoch"] == epoch
    assert best.metrics == run.metrics and aekit.load_run(tmp_path / "r").metrics == run.metrics


def test_metrics_written_after_the_last_checkpoint_give_way_to_its_history(tmp_path):
    run = aekit.train(out=tmp_path / "r", epochs=2, **{**FAST, "hidden": "64"})
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:  # a kill after an epoch's line, before its checkpoint
        f.write(json.dumps({**run.metrics[-1], "epoch": 3}) + "\n")
    assert [m["epoch"] for m in aekit.load_run(tmp_path / "r").metrics] == [1, 2]
    assert [m["epoch"] for m in RunDir(tmp_path / "r").read_metrics()] == [1, 2]


# --------------------------------------------------------------------------- divergence


def _nan_row(n=512, bad=300):
    """Float images in [0, 1] with one NaN image: the steps that draw it have a NaN loss."""
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x[bad, 0, 0, 0] = float("nan")
    return x


def test_a_nan_loss_stops_the_run_naming_the_step(tmp_path):
    from aekit.config import TrainConfig
    from aekit.models import create_model
    from aekit.training import Trainer

    torch.manual_seed(0)
    trainer = Trainer(create_model("mlp", hidden=(32,)), TrainConfig(epochs=2, batch_size=64, lr=1e-3))
    with pytest.raises(Diverged) as info:
        trainer.fit(_nan_row(), torch.rand(64, 1, 28, 28))
    message = str(info.value)
    assert message.startswith("epoch 1 step ") and "the last finite loss was" in message
    assert "lower lr (now 0.001) or on_nan skip" in message and "\n" not in message and "--" not in message


def test_on_nan_skip_skips_those_steps_and_keeps_the_weights_finite():
    from aekit.config import TrainConfig
    from aekit.models import create_model
    from aekit.training import Trainer

    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,))
    history = Trainer(model, TrainConfig(epochs=2, batch_size=64, lr=1e-3, on_nan="skip")).fit(
        _nan_row(), torch.rand(64, 1, 28, 28))
    assert [m["skipped_steps"] for m in history] == [1, 1]  # the batch holding the NaN image, each epoch
    assert all(np.isfinite(m["train_loss"]) for m in history)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_diverged_cli_run_exits_3_with_one_line_and_saves_no_bad_weights(tmp_path, capsys):
    from aekit.cli.main import main

    out = tmp_path / "run"
    code = main(["train", "--dataset", "mnist-sample", "--epochs", "3", "--lr", "1e4", "--activation", "linear",
                 "--output-activation", "linear", "--device", "cpu", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith("aekit train: error: epoch 1 step ") and "lower --lr (now 10000)" in err[0]
    assert "keeps no checkpoint" in err[0] and not (out / "checkpoint.safetensors").exists()


def test_commands_on_non_finite_weights_say_so_in_one_line(sample_run, tmp_path, capsys):
    import shutil

    from aekit.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(sample_run.path, run)
    model = aekit.load_run(run).model
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    RunDir(run).save_weights("checkpoint", model, {"config": json.loads((run / "config.json").read_text())})
    for command in (["eval", str(run)], ["plot", str(run)], ["generate", str(run), "--from-codes"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "the weights are not finite numbers" in err[0], err


# --------------------------------------------------------------------------- reading what is there


def test_a_damaged_metrics_line_is_skipped_with_a_warning(sample_run, tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "config.json").write_text((sample_run.path / "config.json").read_text())
    good = (sample_run.path / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text(good[0] + "\n{\"epoch\": 2, \"train_lo\n" + "[1, 2]\n")
    warnings = []
    assert [m["epoch"] for m in run.read_metrics(warnings.append)] == [1]
    assert warnings == [f"warning: {tmp_path / 'metrics.jsonl'}: skipped 2 damaged line(s) (2, 3)"]


@pytest.mark.parametrize("name, content, message", [
    ("config.json", "[1, 2]", "config.json: expected a JSON object, got list"),
    ("config.json", '{"model": 5}', "config.json: field 'model' should be an object, got 5"),
    ("config.json", '{"preset": 5}', "config.json: field 'preset' should be a preset name or null, got 5"),
    ("eval.json", '{"results": 5}', "eval.json: field 'results' should be an object, got 5"),
    ("eval.json", '{"results": {"model": [1]}}', "eval.json: field 'results.model' should be an object"),
])
def test_structurally_wrong_files_are_one_line_naming_file_and_field(sample_run, tmp_path, capsys, name, content,
                                                                     message):
    import shutil

    from aekit.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(sample_run.path, run)
    (run / name).write_text(content)
    assert main(["compare", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_checkpoint_with_wrong_metadata_is_one_line(sample_run, tmp_path, capsys):
    import shutil

    from safetensors.torch import save_file

    from aekit.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(sample_run.path, run)
    save_file({"model/x": torch.zeros(1)}, run / "checkpoint.safetensors",
              metadata={"aekit": json.dumps({"format": "aekit-checkpoint/2", "model": "mlp", "input_shape": [1, 28],
                                             "config": {}})})
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field 'input_shape' should be three positive integers" in err[0]
    (run / "checkpoint.safetensors").write_bytes(b"\xff" * 8 + b"junk")
    assert main(["eval", str(run)]) == 2
    assert "corrupt checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ('{"model": 5}', "model: expected an object of fields, got 5"),
    ('{"preset": 5}', "preset: expected a preset name or null, got 5"),
    ("[1]", "expected a JSON object"),
])
def test_a_config_file_of_the_wrong_shape_is_one_line(tmp_path, capsys, content, message):
    from aekit.cli.main import main

    (tmp_path / "c.json").write_text(content)
    assert main(["train", "--config", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(tmp_path / "c.json") in err[0], err


# --------------------------------------------------------------------------- what Run.encode accepts


def test_encode_accepts_every_usual_layout_and_gives_the_same_codes(sample_run):
    x = sample_run.load_data().x_test[:7]  # (7, 1, 28, 28) uint8
    want = sample_run.encode(x)
    for same in (x[:, 0], x.transpose(0, 2, 3, 1), x.reshape(7, -1), x.astype(np.int64), x.tolist(),
                 torch.from_numpy(x), x.astype(np.float64) / 255):
        assert np.allclose(sample_run.encode(same), want, atol=1e-6)
    assert sample_run.reconstruct(x[:, 0]).shape == (7, 1, 28, 28)


@pytest.mark.parametrize("bad, message", [
    (lambda x: x.astype(np.float64), "float pixels must be in the run's range [0, 1] (unit), got 0..255; pixels "
                                     "in 0..255: pass them as uint8"),
    (lambda x: x[:, :, :27], "shape (7, 1, 27, 28) does not fit the model, which takes 1x28x28 images"),
    (lambda x: np.repeat(x, 3, axis=1), "shape (7, 3, 28, 28) does not fit the model"),
    (lambda x: x[:0], "no images given"),
    (lambda x: x.astype(np.int64) * 2, "integer pixels must be in 0..255, got 0..510"),
    (lambda x: np.where(x > 0, np.nan, 0.0), "NaN or infinity"),
    (lambda x: x > 0, "expected uint8 pixels or floats, got dtype bool"),
])
def test_encode_refuses_what_does_not_fit_with_one_clear_error(sample_run, bad, message):
    x = sample_run.load_data().x_test[:7]
    with pytest.raises(InputError) as info:
        sample_run.encode(bad(x))
    assert message in str(info.value)
    with pytest.raises(InputError):
        sample_run.reconstruct(bad(x))


def test_resume_refuses_a_run_another_process_writes(sample_run, tmp_path):
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from aekit.rundir import RunDir
with RunDir({str(out)!r}).lock():
    print("locked", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match=rf"another aekit process \(pid {holder.pid}\) is writing this run"):
            aekit.train(out=out, epochs=1, **FAST)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    run = aekit.train(out=out, epochs=1, **FAST)  # the killed holder's lock is gone with it
    assert run.metrics and not (out / ".lock").exists()


@pytest.mark.parametrize("name, fields", [("mlp", {}), ("vae", {"latent_dim": 2})])
def test_a_mid_epoch_checkpoint_from_before_named_terms_resumes(name, fields):
    """An older checkpoint keeps the epoch's per-step rows as (loss, recon, reg, counted), with no term names."""
    from aekit.config import TrainConfig
    from aekit.models import create_model
    from aekit.training import Trainer

    x = torch.rand(96, 1, 8, 8)
    config = TrainConfig(epochs=1, batch_size=16, precision="fp32")

    def fresh():
        torch.manual_seed(0)
        return Trainer(create_model(name, (1, 8, 8), hidden=(8,), **fields), config)

    whole = fresh().fit(x, x[:16])
    cut = fresh()
    cut.callbacks.append(CtrlCAt(3))
    with pytest.raises(Interrupted):
        cut.fit(x, x[:16])
    tensors, meta = cut.state_dict()
    rows, names = tensors["epoch/terms"], meta.pop("terms")
    reg = rows[:, 2:-1].sum(1) if len(names) > 1 else torch.zeros(len(rows))
    tensors["epoch/terms"] = torch.stack([rows[:, 0], rows[:, 1], reg, rows[:, -1]], 1)  # the older layout
    again = fresh()
    again.load_state_dict(tensors, meta)
    assert _strip(again.fit(x, x[:16])) == _strip(whole)
