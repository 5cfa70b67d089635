"""Divergence and runs that cannot learn: BCE models diverge like any other, data too small to score is
refused before training, and a run that ended without learning says so.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aekit
from aekit.config import TrainConfig
from aekit.errors import DataError, Diverged
from aekit.models import create_model
from aekit.models.base import binary_cross_entropy
from aekit.training import LearningCheck, Trainer

FAST = dict(dataset="mnist-sample", device="cpu", verbose=False, progress=False, plots=False)


def _main(argv, capsys):
    from aekit.cli.main import main

    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


# --------------------------------------------------------------------------- BCE


def test_binary_cross_entropy_is_the_kernels_to_the_bit_and_nan_for_nan_outputs():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 784, generator=g, requires_grad=True)
    x = torch.rand(16, 784, generator=g)
    ours = binary_cross_entropy(torch.sigmoid(logits), x)
    (our_grad,) = torch.autograd.grad(ours, logits)
    theirs = F.binary_cross_entropy(torch.sigmoid(logits), x)
    (their_grad,) = torch.autograd.grad(theirs, logits)
    assert torch.equal(ours, theirs) and torch.equal(our_grad, their_grad)

    recon_x = torch.sigmoid(logits.detach()).index_put((torch.tensor([3]), torch.tensor([5])), torch.tensor(torch.nan))
    with pytest.raises(RuntimeError, match="between 0 and 1"):  # what the kernel does, and why the helper exists
        F.binary_cross_entropy(recon_x, x)
    assert torch.isnan(binary_cross_entropy(recon_x, x))


MARK = 0.123456  # a valid pixel value no torch.rand image holds in its first pixel


def _marked_images(n=512, marked=300):
    """Float images in [0, 1]; image ``marked`` is the one :func:`_nan_for_marked` makes the model output NaN for."""
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x[marked, 0, 0, 0] = MARK
    return x


def _nan_for_marked(model):
    """Make ``model``'s decoder output NaN for the marked image: a diverged output, with a valid target."""
    marked = {}
    model.register_forward_pre_hook(lambda module, args: marked.update(rows=args[0][:, 0, 0, 0] == MARK))
    model.decoder.register_forward_hook(lambda module, args, out: out.masked_fill(
        marked["rows"].view(-1, *[1] * (out.dim() - 1)), float("nan")))
    return model


BCE_MODELS = [pytest.param("vae", dict(hidden=(32,), latent_dim=2, loss="bce"), id="vae"),
              pytest.param("mlp", dict(hidden=(32,), loss="bce"), id="mlp")]


@pytest.mark.parametrize("name, fields", BCE_MODELS)
def test_a_nan_output_under_bce_stops_the_run_naming_the_step(monkeypatch, name, fields):
    monkeypatch.setattr(Trainer, "hand_gradients", False)  # hooks run on autograd's path
    torch.manual_seed(0)
    trainer = Trainer(_nan_for_marked(create_model(name, **fields)), TrainConfig(epochs=2, batch_size=64, lr=1e-3))
    with pytest.raises(Diverged) as info:
        trainer.fit(_marked_images(), torch.rand(64, 1, 28, 28))
    assert str(info.value).startswith("epoch 1 step ") and "the loss became nan" in str(info.value)


@pytest.mark.parametrize("name, fields", BCE_MODELS)
def test_on_nan_skip_skips_bce_steps_with_nan_outputs(monkeypatch, name, fields):
    monkeypatch.setattr(Trainer, "hand_gradients", False)
    torch.manual_seed(0)
    model = _nan_for_marked(create_model(name, **fields))
    history = Trainer(model, TrainConfig(epochs=2, batch_size=64, lr=1e-3, on_nan="skip")).fit(
        _marked_images(), torch.rand(64, 1, 28, 28))
    assert [m["skipped_steps"] for m in history] == [1, 1]  # the batch holding the marked image, each epoch
    assert all(np.isfinite(m["train_loss"]) and np.isfinite(m["test_loss"]) for m in history)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_hand_written_bce_step_gives_a_nan_loss_for_nan_outputs():
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,), loss="bce")
    with torch.no_grad():
        model.decoder[-2].weight[5, 0] = float("nan")  # output pixel 5 of every image is NaN
    x = torch.rand(8, 1, 28, 28)
    out = model.gradient_function()(x)
    assert torch.isnan(out.loss) and torch.isnan(model(x).loss)  # by hand as by autograd
    model.decoder[-2].weight.data[5, 0] = 0.0
    with pytest.raises(RuntimeError, match="target"):  # an error that is not a NaN output still raises
        model.gradient_function()(x * 2)


def test_every_step_nan_by_hand_stops_even_when_skipping():
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,), loss="bce")
    with torch.no_grad():
        model.decoder[-2].weight[5, 0] = float("nan")
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=64, lr=1e-3, on_nan="skip"))
    with pytest.raises(Diverged, match="every step had a non-finite loss"):
        trainer.fit(torch.rand(128, 1, 28, 28), torch.rand(64, 1, 28, 28))
    assert trainer._by_hand is not None


@pytest.mark.parametrize("hand", [True, False], ids=["by-hand", "autograd"])
def test_the_bce_seed_preset_trains_as_with_the_plain_kernel(monkeypatch, tmp_path, hand):
    """classic-30-bce's numbers do not move: the NaN guard changes nothing where the outputs are finite."""
    monkeypatch.setattr(Trainer, "hand_gradients", hand)
    ours = aekit.train("classic-30-bce", epochs=1, out=tmp_path / "ours", **FAST).metrics
    monkeypatch.setattr("aekit.models.base.binary_cross_entropy", F.binary_cross_entropy)
    monkeypatch.setattr("aekit.models.dense._binary_cross_entropy", F.binary_cross_entropy)
    plain = aekit.train("classic-30-bce", epochs=1, out=tmp_path / "plain", **FAST).metrics
    strip = lambda rows: [{k: v for k, v in m.items() if k != "seconds"} for m in rows]  # noqa: E731
    assert strip(ours) == strip(plain)


@pytest.mark.parametrize("flags", [["--preset", "vae-2d"], ["--loss", "bce", "--activation", "relu"]],
                         ids=["vae-2d", "loss-bce"])
def test_a_diverging_bce_run_exits_3_with_one_line(tmp_path, capsys, flags):
    code, err = _main(["train", *flags, "--dataset", "mnist-sample", "--epochs", "1", "--lr", "1e6",
                       "--device", "cpu", "--quiet", "--no-plots", "--out", str(tmp_path / "run")], capsys)
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith("aekit train: error: epoch 1 step ") and "the loss became nan" in err[0]
    assert "lower --lr (now 1e+06) or --on-nan skip" in err[0]


@pytest.mark.slow
def test_on_nan_skip_cannot_save_weights_past_saving_and_says_so(tmp_path, capsys):
    """At --lr 1e6 the first step throws the VAE's weights so far that every later step is NaN: skipped,
    as documented, and the run still stops at the epoch's end, saying how many steps were skipped.
    """
    code, err = _main(["train", "--preset", "vae-2d", "--dataset", "mnist-sample", "--epochs", "1", "--lr", "1e6",
                       "--on-nan", "skip", "--device", "cpu", "--quiet", "--no-plots",
                       "--out", str(tmp_path / "run")], capsys)
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith("aekit train: error: epoch 1: the test loss is not finite (nan); ")
    assert "31 of 32 steps were skipped" in err[0] and "lower --lr (now 1e+06)" in err[0]


# --------------------------------------------------------------------------- data too small


def _npz(path, n, **arrays):
    x = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    np.savez(path, **(arrays or {"x": x}))
    return path


@pytest.mark.parametrize("n, flags, says", [
    (1, [], "holds 1 image(s); training needs at least 2, one to train on and one to test on"),
    (5, [], "the test split is empty (5 training images, none to test on)"),  # 5 x 0.1 rounds to 0
    (50, ["--test-fraction", "0"], "give a larger --test-fraction (now 0.0)"),
])
def test_a_set_too_small_to_score_is_refused_before_training(tmp_path, capsys, n, flags, says):
    out = tmp_path / "run"
    code, err = _main(["train", "--dataset", str(_npz(tmp_path / "x.npz", n)), *flags, "--epochs", "1",
                       "--device", "cpu", "--quiet", "--no-plots", "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1, err
    assert says in err[0] and "--lr" not in err[0]
    assert not out.exists()  # nothing left that blocks the next command


def test_an_empty_test_split_of_its_own_is_refused(tmp_path):
    x = np.zeros((20, 28, 28), np.uint8)
    path = _npz(tmp_path / "x.npz", 0, x_train=x, y_train=np.zeros(20, np.int64), x_test=x[:0],
                y_test=np.zeros(0, np.int64))
    with pytest.raises(DataError, match="the test split is empty"):
        aekit.train(dataset=str(path), epochs=1, device="cpu", out=tmp_path / "run", verbose=False,
                    progress=False, plots=False)


# --------------------------------------------------------------------------- no learning


def test_a_run_that_did_not_learn_warns_naming_the_lr(tmp_path, capsys):
    code, err = _main(["train", "--dataset", "mnist-sample", "--epochs", "1", "--lr", "1e6", "--device", "cpu",
                       "--quiet", "--no-plots", "--out", str(tmp_path / "run")], capsys)
    assert code == 0 and len(err) == 1, err  # --quiet keeps the warning
    assert err[0].startswith("warning: the model did not learn: its test reconstruction loss (")
    assert "is worse than the mean test image's" in err[0] and "its training loss rose" in err[0]
    assert err[0].endswith("the learning rate is likely too high: try a lower --lr (now 1e+06)")
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()  # the run is kept


def test_the_first_steps_loss_survives_a_resume(tmp_path):
    first, again = [], []
    aekit.train(epochs=1, lr=1e6, out=tmp_path / "run", log=first.append, **FAST)
    aekit.train(resume=tmp_path / "run", epochs=2, log=again.append, verbose=False, progress=False, plots=False)
    at_first_step = [line.split("(")[3].split(" at the first step")[0] for line in (*first, *again)]
    assert len(at_first_step) == 2 and at_first_step[0] == at_first_step[1]  # the untrained model's, both times


def test_a_learning_rate_far_too_low_is_named_as_such(tmp_path):
    lines = []
    aekit.train(epochs=1, lr=1e-9, out=tmp_path / "run", log=lines.append, **FAST)
    assert len(lines) == 1 and "its training loss barely moved from the untrained model's" in lines[0]
    assert lines[0].endswith("too low: try a higher --lr (now 1e-09) or more --epochs")


def test_a_short_run_that_is_learning_is_told_it_is_under_trained_not_mis_tuned(tmp_path):
    """One epoch of classic-30-bce is still worse than the mean image, but its loss is falling: more epochs,
    not another learning rate.
    """
    lines = []
    run = aekit.train("classic-30-bce", epochs=1, out=tmp_path / "run", log=lines.append, **FAST)
    assert run.metrics[-1]["test_recon_loss"] > 0.26  # the mean test image's BCE on mnist-sample: 0.2639
    (warning,) = [line for line in lines if line.startswith("warning")]
    assert warning.startswith("warning: the model is not clearly better than a constant image: its test "
                              "reconstruction loss (0.37124) is not 5% below the mean test image's (0.26394)")
    assert "try more --epochs (now 1)" in warning and "--lr" not in warning


@pytest.mark.slow
def test_a_run_that_beats_the_mean_image_gets_no_warning(tmp_path):
    """The default preset's own 10 epochs of mnist-sample end well below the mean image (0.058 against 0.067)."""
    lines = []
    run = aekit.train(epochs=10, out=tmp_path / "run", log=lines.append, **FAST)
    assert run.metrics[-1]["test_recon_loss"] < 0.06
    assert not [line for line in lines if line.startswith("warning")]


def _history(*test_losses, train_loss=0.1):
    return [{"epoch": i + 1, "train_loss": train_loss, "test_loss": t, "test_recon_loss": t}
            for i, t in enumerate(test_losses)]


class _Done:
    """What LearningCheck reads of a trainer that finished."""

    def __init__(self, model, history, lr=1.0):
        self.model, self.history, self.finished, self.config = model, history, True, TrainConfig(lr=lr)


def test_learning_check_says_nothing_with_too_few_test_images_for_a_mean_image():
    model = create_model("mlp", hidden=(8,))
    lines = []
    one = np.random.default_rng(0).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)  # its mean is itself: loss 0
    check = LearningCheck(one, "unit", lines.append)
    check.load_state_dict({"first_loss": 0.2})
    check.on_fit_end(_Done(model, _history(0.5, train_loss=0.3)))
    assert lines == [] and check.constant_image_loss(model) == 0


@pytest.mark.parametrize("first_loss, history, advice", [
    (0.2, _history(0.5, train_loss=0.3), "lower"),  # the training loss rose from the first step's
    (0.2, _history(0.5, train_loss=0.205), "higher"),  # it barely moved, either way
    (0.2, _history(0.5, train_loss=0.195), "higher"),
    (0.2, _history(0.5, 0.5), "lower"),  # it fell, then the test loss stopped falling: a plateau
    (0.2, _history(0.6, 0.5), "epochs"),  # still falling, still at or above the mean image: under-trained
    (0.2, _history(0.01, 0.01, train_loss=0.3), None),  # better than the mean image
    (0.2, _history(0.084, 0.084), None),  # the plateau at about the mean image (0.0823) some models cross
    (None, _history(0.5), "epochs"),  # no first step to compare with: only the mean image
])
def test_learning_check_warns_only_when_not_better_than_the_mean_image(first_loss, history, advice):
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(8,))
    x_test = np.random.default_rng(0).integers(0, 256, (30, 1, 28, 28), dtype=np.uint8)
    lines = []
    check = LearningCheck(x_test, "unit", lines.append)
    check.load_state_dict({"first_loss": first_loss})
    constant = check.constant_image_loss(model)
    mean = torch.from_numpy(x_test).float().div(255)
    assert constant == pytest.approx(float(((mean - mean.mean(0)) ** 2).mean()), rel=1e-6)
    assert 0.01 < constant < 0.5
    check.on_fit_end(_Done(model, history))
    assert len(lines) == (advice is not None)
    if advice == "epochs":
        assert "try more --epochs" in lines[0] and "--lr" not in lines[0]
    elif advice:
        assert f"try a {advice} --lr (now 1)" in lines[0]
