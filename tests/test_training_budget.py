"""Issue 20, the training side: step budget and schedule, augmentation, validation split and early stopping,
photo losses, the auto preset's choices, and all of it exact on resume.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import aekit
from aekit.cli.main import main
from aekit.config import TrainConfig
from aekit.errors import ConfigError
from aekit.models import create_model
from aekit.presets import DEFAULT_PRESET, default_preset
from aekit.resolve import build_config
from aekit.training import Callback, EarlyStopping, OverfitCheck, Trainer
from aekit.training.augment import augment, max_shift
from aekit.training.budget import (
    PCAMLP_IMAGES,
    PCAMLP_MIN_IMAGES,
    PCAMLP_VAL_IMAGES,
    PIXEL_BUDGET,
    SMALL_SET_BUDGET,
    SMALL_SET_INFERENCE_STEPS,
    SMALL_SET_MAX_EPOCHS,
    held_out_count,
    hold_out,
    plan,
)
from aekit.training.schedule import lr_at, planned_epochs, steps_per_epoch

# ----------------------------------------------------------------------------- schedule and budget


def test_the_schedule_warms_up_linearly_then_follows_a_half_cosine_to_zero():
    cfg = TrainConfig(lr=0.01, lr_schedule="cosine", warmup_steps=4)
    total = 104
    assert [lr_at(cfg, s, total) for s in range(4)] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert lr_at(cfg, 4, total) == pytest.approx(0.01)  # the peak, where the cosine starts
    assert lr_at(cfg, 54, total) == pytest.approx(0.005)  # half way through the decay: half the peak
    assert lr_at(cfg, 29, total) == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lr_at(cfg, 103, total) < 0.01 * 0.001 and lr_at(cfg, 104, total) == pytest.approx(0.0)
    constant = TrainConfig(lr=0.01, warmup_steps=2)
    assert [lr_at(constant, s, total) for s in (0, 1, 2, 90)] == pytest.approx([0.005, 0.01, 0.01, 0.01])


def test_a_steps_budget_becomes_the_whole_epochs_that_reach_it():
    assert steps_per_epoch(1000, 64) == 16 and steps_per_epoch(1024, 64) == 16 and steps_per_epoch(3, 64) == 1
    assert planned_epochs(TrainConfig(epochs=7), 1000) == 7  # no budget: the epochs
    assert planned_epochs(TrainConfig(steps=100, batch_size=64), 1000) == 7  # 16 a pass: 7 passes reach 100
    assert planned_epochs(TrainConfig(steps=96, batch_size=64), 1000) == 6
    assert planned_epochs(TrainConfig(steps=5, batch_size=64), 10_000) == 1


def _auto(shape, n, **given):
    cfg = build_config("auto", **given)
    line = plan(cfg, shape, n, set(given))
    return cfg, line


def test_auto_gives_a_small_set_many_epochs_and_a_large_one_few_within_the_same_compute():
    small, line = _auto((3, 32, 32), 1700)
    large, _ = _auto((1, 32, 32), 50_000)  # grey: resconv (a large set of colour photos trains pcamlp, below)
    budget = int(PIXEL_BUDGET / (64 * 32 * 32))  # the compute cap
    fit = 1700 - 170
    per_epoch = -(-fit // 64)
    assert large.train.steps == budget
    # a small set (passed over 30 times or more) gets SMALL_SET_BUDGET times the steps, up to 300 passes
    assert small.train.steps == min(SMALL_SET_BUDGET * budget, SMALL_SET_MAX_EPOCHS * per_epoch) == 7200
    assert small.train.epochs == -(-small.train.steps // per_epoch) == 300
    assert small.model.inference_steps == SMALL_SET_INFERENCE_STEPS == 20 and large.model.inference_steps == 0
    assert _auto((3, 32, 32), 1700, inference_steps=5)[0].model.inference_steps == 5  # a flag is never changed
    assert large.train.epochs <= 4 and large.train.augment == "none" and small.train.augment == "flips+shifts"
    assert large.model.model == small.model.model == "resconv"
    assert line.startswith("auto: resconv started at PCA (a linear path beside it) with a 16-D code and 3 stages, 20 "
                           "inference steps per code for 32x32 RGB photos (1,700 images): ")
    assert f"{small.train.steps:,} steps of 64" in line and "flips+shifts" in line and "validation 10%" in line
    # a set seen many times starts from its PCA (the linear path); a large one trains the network from scratch
    assert small.model.linear_path and not large.model.linear_path
    assert not _auto((3, 32, 32), 1700, linear_path=False)[0].model.linear_path  # a flag is never changed
    assert _auto((1, 32, 32), 50_000, linear_path=True)[0].model.linear_path
    bounded = _auto((3, 32, 32), 1700, latent_activation="tanh")[0].model
    assert not bounded.linear_path and not bounded.inference_steps  # PCA's codes and the steps' are unbounded
    _, plain = _auto((1, 32, 32), 50_000)
    assert plain.startswith("auto: resconv with a 16-D code and 3 stages for 32x32 grey images (50,000 images): ")
    # a bigger image costs more per step: fewer steps, smaller batches
    big, _ = _auto((3, 64, 64), 1700)
    assert big.train.batch_size == 32 and big.train.steps == int(PIXEL_BUDGET / (32 * 64 * 64)) < small.train.steps
    assert big.train.epochs < 30 and big.model.inference_steps == 0  # 24 passes: not a small set
    # a tiny set: SMALL_SET_MAX_EPOCHS passes (2 steps each here), no fewer than MIN_STEPS steps
    tiny, _ = _auto((3, 32, 32), 100)
    assert tiny.train.steps == 600 and tiny.train.val_fraction == 0.1
    assert _auto((3, 32, 32), 20)[0].train.steps == 300  # 300 passes of one step: MIN_STEPS


def test_auto_trains_pcamlp_on_a_large_set_of_small_colour_photos():
    cfg, line = _auto((3, 32, 32), 50_000)
    model, train = cfg.model, cfg.train
    assert model.model == "pcamlp" and model.linear_path and model.latent_dim == 16
    assert (model.components, model.width, model.depth) == (256, 1024, 3)
    assert (train.batch_size, train.lr, train.weight_decay, train.warmup_steps) == (2048, 0.006, 0.05, 200)
    assert train.steps == int(PCAMLP_IMAGES / 2048) and train.augment == "flips+shifts"
    assert held_out_count(50_000, train.val_fraction) == PCAMLP_VAL_IMAGES  # 2,000, not 10%: the rest trains
    assert train.patience == train.epochs // 5
    assert line.startswith("auto: pcamlp started at PCA (a linear path beside it) with a 16-D code and 256 "
                           "principal axes, 3 hidden layers of 1024, 3 inference steps per code for 32x32 RGB "
                           f"photos (50,000 images): {train.steps:,} steps of 2048 (~{train.epochs} epochs)")
    assert "validation 4% (2,000 images)" in line
    # what keeps resconv: one of its own flags, grey images, fewer images, larger images
    for shape, n, given in [((3, 32, 32), 50_000, {"width": 32}), ((3, 32, 32), 50_000, {"linear_path": False}),
                            ((1, 28, 28), 60_000, {}), ((3, 32, 32), PCAMLP_MIN_IMAGES - 1, {}),
                            ((3, 64, 64), 50_000, {})]:
        assert _auto(shape, n, **given)[0].model.model == "resconv", (shape, n, given)
    assert _auto((4, 32, 32), 50_000)[0].model.model == "pcamlp"  # alpha kept as a fourth channel
    # the fields every model has carry over, and a given field is never changed
    cfg, _ = _auto((3, 32, 32), 50_000, latent_dim=64, lr=0.001, batch_size=512, loss="l1", compile=False)
    assert (cfg.model.latent_dim, cfg.model.loss, cfg.train.compile) == (64, "l1", False)
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.steps) == (0.001, 512, int(PCAMLP_IMAGES / 512))
    assert not _auto((3, 32, 32), 50_000, latent_activation="tanh")[0].model.linear_path
    # a larger code, a gentler rate: 0.006 at 16-D (and below), about a third of it at 64-D
    assert _auto((3, 32, 32), 50_000, latent_dim=8)[0].train.lr == 0.006
    assert _auto((3, 32, 32), 50_000, latent_dim=64)[0].train.lr == pytest.approx(0.002, rel=0.02)


def test_auto_keeps_grey_images_unflipped_and_every_given_field():
    grey, line = _auto((1, 28, 28), 60_000)
    assert grey.train.augment == "none" and "augment none (grey: a mirrored digit is another)" in line
    cfg, _ = _auto((3, 64, 64), 1700, steps=50, augment="shifts", val_fraction=0.0, batch_size=16, latent_dim=64)
    assert (cfg.train.steps, cfg.train.augment, cfg.train.val_fraction, cfg.train.batch_size) == (50, "shifts", 0.0, 16)
    assert cfg.model.latent_dim == 64 and cfg.train.patience == 0  # no validation: nothing to stop on
    assert cfg.train.epochs == -(-50 // -(-1700 // 16))


def test_auto_takes_the_epochs_given_as_the_budget_instead_of_planning_steps():
    cfg, line = _auto((3, 32, 32), 1700, epochs=2)
    fit = 1700 - 170
    per_epoch = -(-fit // 64)
    assert (cfg.train.steps, cfg.train.epochs) == (0, 2)  # no steps budget: the 2 epochs given
    assert cfg.train.warmup_steps == max(1, 2 * per_epoch // 20)  # warm-up from the 2 epochs' steps
    assert f"{2 * per_epoch:,} steps of 64 (~2 epochs)" in line


def test_the_default_preset_is_auto_except_for_the_seeds_digits_or_a_named_model():
    assert default_preset({}) == DEFAULT_PRESET
    assert default_preset({"dataset": "mnist"}) == default_preset({"dataset": "mnist-sample"}) == DEFAULT_PRESET
    assert default_preset({"dataset": "photos/"}) == "auto"
    assert default_preset({"dataset": "fashion-mnist"}) == "auto"
    assert default_preset({"dataset": "photos/", "model": "conv"}) == DEFAULT_PRESET
    assert default_preset({"dataset": "photos/", "hidden": (16,)}) == DEFAULT_PRESET  # an MLP's layers: no auto


def test_the_new_fields_are_validated_by_name():
    with pytest.raises(ConfigError, match="train.augment: 'rotate' is not allowed; choose one of: none, flips"):
        build_config(augment="rotate")
    with pytest.raises(ConfigError, match=r"train.val_fraction: must be <= 0.5"):
        build_config(val_fraction=0.9)
    with pytest.raises(ConfigError, match="train.optimizer: 'sgd' is not allowed"):
        build_config(optimizer="sgd")
    with pytest.raises(ConfigError, match="model.loss: 'ssim2' is not allowed; choose one of: mse, bce, l1, ssim"):
        build_config(loss="ssim2")


def test_the_seed_presets_keep_a_constant_rate_adam_and_no_augmentation():
    for name in ("classic-3d-tanh", "classic-2d-relu", "classic-128-sigmoid", "classic-100-sigmoid",
                 "classic-30-bce", "conv-16", "resconv-16"):
        t = build_config(name).train
        assert (t.steps, t.optimizer, t.lr_schedule, t.warmup_steps, t.augment, t.val_fraction, t.patience) == (
            0, "adam", "constant", 0, "none", 0.0, 0), name


# ----------------------------------------------------------------------------- augmentation


def test_augmentation_is_seeded_flips_mirror_and_shifts_stay_within_a_sixteenth():
    x = torch.arange(4 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(4, 3, 32, 32)
    a = augment(x, "flips+shifts", torch.Generator().manual_seed(5))
    b = augment(x, "flips+shifts", torch.Generator().manual_seed(5))
    c = augment(x, "flips+shifts", torch.Generator().manual_seed(6))
    assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    flipped = augment(x, "flips", torch.Generator().manual_seed(0))
    for i in range(4):  # each image is itself or its mirror image
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    assert not torch.equal(flipped, x)
    assert max_shift(32) == 2 and max_shift(64) == 4 and max_shift(8) == 1
    ramp = torch.arange(32, dtype=torch.uint8).expand(64, 1, 32, 32).contiguous()  # column index as the pixel
    shifted = augment(ramp, "shifts", torch.Generator().manual_seed(1))
    offset = shifted[:, 0, 0, 16].long() - 16  # the column now in the middle, against the middle one
    assert set(offset.tolist()) == {-2, -1, 0, 1, 2}
    assert torch.equal(shifted[:, 0, 0, 0], offset.clamp(min=0).to(torch.uint8))  # the edge column repeated
    assert torch.equal(augment(x, "none", torch.Generator()), x)


@pytest.mark.parametrize("most", [None, 3, 40])
def test_a_shift_moves_every_pixel_as_indexing_it_would_up_to_the_largest_shift_given(most):
    """The shifts are slices of an edge-padded batch: the same images as indexing each pixel at its shifted place."""
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (300, 3, 20, 33), dtype=np.uint8))
    out = augment(x, "shifts", torch.Generator().manual_seed(2), most)
    g = torch.Generator().manual_seed(2)
    sy, sx = (max_shift(20), max_shift(33)) if most is None else (min(most, 19), min(most, 32))
    dy, dx = torch.randint(-sy, sy + 1, (300,), generator=g), torch.randint(-sx, sx + 1, (300,), generator=g)
    for i in range(300):
        rows = (torch.arange(20) - dy[i]).clamp(0, 19)
        cols = (torch.arange(33) - dx[i]).clamp(0, 32)
        assert torch.equal(out[i], x[i][:, rows][:, :, cols]), i
    assert int(dy.abs().max()) == sy and int(dx.abs().max()) == sx  # the largest shift is drawn


def test_the_largest_shift_is_a_flag_validated_by_name():
    assert build_config("auto", shift=3).train.shift == 3 and build_config("auto").train.shift is None
    with pytest.raises(ConfigError, match="train.shift: must be >= 1"):
        build_config(shift=0)


def _symmetries(image: torch.Tensor, square: bool) -> list[torch.Tensor]:
    """The image under each symmetry of its rectangle: flips of either axis, and with ``square`` their transposes."""
    turned = [image, image.flip(-1), image.flip(-2), image.flip(-1).flip(-2)]
    return turned + [t.transpose(-1, -2) for t in turned] if square else turned


@pytest.mark.parametrize("h, w, count", [(8, 8, 8), (6, 10, 4)], ids=["square", "oblong"])
def test_dihedral_augmentation_draws_every_symmetry_of_the_image_and_nothing_else(h, w, count):
    x = torch.arange(h * w, dtype=torch.uint8).reshape(1, 1, h, w).expand(800, 2, h, w).contiguous()
    turned = augment(x, "dihedral", torch.Generator().manual_seed(0))
    assert turned.shape == x.shape and turned.dtype == torch.uint8
    options = _symmetries(x[0], square=h == w)
    assert len({tuple(t.flatten().tolist()) for t in options}) == count  # all distinct for this image
    seen = [next(i for i, t in enumerate(options) if torch.equal(t, y)) for y in turned]  # each one of them
    share = np.bincount(seen, minlength=count) / len(seen)
    assert share.min() > 0.6 / count and share.max() < 1.4 / count  # about equally often
    # seeded, and the draws depend on the batch size alone: a generator ends where it would for any images
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(augment(x, "dihedral+shifts", g1), augment(x, "dihedral+shifts", g2))
    augment(torch.zeros_like(x), "dihedral+shifts", g2)
    augment(x, "dihedral+shifts", g1)
    assert torch.equal(g1.get_state(), g2.get_state())


# ----------------------------------------------------------------------------- the trainer, exact on resume


def _images(n=120, size=16, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


class _Grab(Callback):
    """Keeps a deep copy of the trainer's state after step ``at``."""

    def __init__(self, at):
        self.at, self.state = at, None

    def on_step_end(self, trainer, loss):
        if trainer.step == self.at:
            tensors, meta = trainer.state_dict()
            self.state = ({k: v.clone() for k, v in tensors.items()}, copy.deepcopy(meta))


def _trainer(cfg, callbacks=(), linear_path=False):
    torch.manual_seed(cfg.seed)
    if linear_path is None:  # pcamlp: the auto plan's model for a large set of small photos, its axes fitted once
        model = create_model("pcamlp", (3, 16, 16), latent_dim=4, components=32, width=16, depth=2)
    else:
        model = create_model(build_config("resconv-16", width=4, max_width=8, latent_dim=4,
                                          linear_path=linear_path).model, (3, 16, 16))
    return Trainer(model, cfg, "unit", callbacks, precision="fp32")


@pytest.mark.parametrize("linear_path, mode", [(False, "flips+shifts"), (True, "flips+shifts"),
                                               (False, "dihedral+shifts"), (None, "flips+shifts")],
                         ids=["network", "linear-path", "dihedral", "pcamlp"])  # PCA's start is not redone
@pytest.mark.parametrize("at", [7, 9])  # an epoch boundary (7 steps an epoch), and inside the second epoch
def test_schedule_augmentation_and_validation_are_exact_on_resume(at, linear_path, mode):
    cfg = TrainConfig(steps=20, batch_size=16, lr=0.01, lr_schedule="cosine", warmup_steps=3, augment=mode,
                      optimizer="adamw", weight_decay=0.05, device="cpu", seed=3)
    x, x_test, x_val = _images(), _images(30, seed=1), _images(12, seed=2)
    grab = _Grab(at)
    whole = _trainer(cfg, [grab], linear_path)
    whole.fit(x[:100], x_test, x_val)
    assert whole.config.epochs == 3 and whole.total_steps == 21 and len(whole.history) == 3
    assert "val_loss" in whole.history[-1] and whole.history[-1]["val_loss"] != whole.history[-1]["test_loss"]
    assert whole.optimizer.param_groups[0]["lr"] == pytest.approx(lr_at(cfg, 20, 21))  # the last step's
    resumed = _trainer(cfg, linear_path=linear_path)
    resumed.load_state_dict(*grab.state)
    resumed.fit(x[:100], x_test, x_val)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in whole.history]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in resumed.history]


def test_augmentation_changes_training_and_a_constant_schedule_leaves_the_rate_alone():
    base = TrainConfig(epochs=1, batch_size=16, lr=0.01, device="cpu")
    x, x_test = _images(), _images(30, seed=1)
    plain = _trainer(base)
    plain.fit(x, x_test)
    assert plain.optimizer.param_groups[0]["lr"] == 0.01
    flipped = _trainer(TrainConfig(epochs=1, batch_size=16, lr=0.01, device="cpu", augment="flips"))
    flipped.fit(x, x_test)
    assert plain.history[0]["train_loss"] != flipped.history[0]["train_loss"]


def test_adamw_decays_the_weights_apart_from_the_gradient():
    cfg = TrainConfig(lr=0.1, weight_decay=0.5, optimizer="adamw")
    from aekit.training.optim import make_optimizer

    layer = torch.nn.Linear(2, 2)
    opt = make_optimizer(layer, cfg)
    assert isinstance(opt, torch.optim.AdamW)
    before = layer.weight.detach().clone()
    layer.weight.grad, layer.bias.grad = torch.zeros(2, 2), torch.zeros(2)  # no gradient: only the decay acts
    opt.step()
    assert torch.allclose(layer.weight, before * (1 - 0.1 * 0.5))  # Loshchilov & Hutter: w <- w - lr*wd*w


# ----------------------------------------------------------------------------- validation and early stopping


def test_the_validation_split_is_seeded_disjoint_and_in_stored_order():
    x = np.arange(50)[:, None, None, None].astype(np.uint8)
    fit, val = hold_out(x, 0.1, seed=0)
    again, val_again = hold_out(x, 0.1, seed=0)
    _, other = hold_out(x, 0.1, seed=1)
    assert len(val) == 5 and len(fit) == 45 and np.array_equal(val, val_again) and not np.array_equal(val, other)
    assert set(fit.ravel()) | set(val.ravel()) == set(range(50)) and not set(fit.ravel()) & set(val.ravel())
    assert np.all(np.diff(val.ravel().astype(int)) > 0)
    assert hold_out(x, 0.0, 0)[1] is None and held_out_count(1, 0.5) == 0 and held_out_count(3, 0.01) == 1


class _Fake:
    def __init__(self, history=(), config=None):
        self.should_stop, self.history, self.finished = False, list(history), True
        self.config = config or TrainConfig()


def test_early_stopping_waits_patience_epochs_on_the_validation_loss_not_the_test_loss():
    stop, trainer, lines = EarlyStopping(2, log=None), _Fake(), []
    stop.log = lines.append
    for epoch, (val, test) in enumerate([(0.5, 0.9), (0.4, 0.1), (0.45, 0.05), (0.41, 0.01)], 1):
        stop.on_epoch_end(trainer, {"epoch": epoch, "val_loss": val, "test_loss": test})
        assert trainer.should_stop is (epoch == 4)
    assert stop.best_epoch == 2 and stop.state_dict() == {"best": 0.4, "best_epoch": 2, "stopped": True}
    assert lines == ["early stop at epoch 4: the validation loss has not improved for 2 epochs (best 0.4 at epoch 2); "
                     "best.safetensors holds that epoch's weights"]


def test_the_overfitting_warning_names_the_flags_and_stays_quiet_when_the_held_out_loss_falls():
    rising = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "test_loss": v}
              for i, (t, v) in enumerate([(0.05, 0.04), (0.03, 0.03), (0.02, 0.032), (0.01, 0.036)])]
    lines = []
    OverfitCheck(lines.append).on_fit_end(_Fake(rising))
    assert len(lines) == 1 and "validation loss rose from 0.03 at epoch 2 to 0.036" in lines[0]
    assert "--augment flips+shifts" in lines[0] and "--patience" in lines[0]
    # only the remedies the run does not already have: an auto run (augmenting, AdamW, validation) is told of fewer
    # steps and a stronger weight decay
    done = []
    OverfitCheck(done.append).on_fit_end(_Fake(rising, TrainConfig(steps=500, augment="flips+shifts", optimizer="adamw",
                                                                    weight_decay=0.01, val_fraction=0.1, patience=3)))
    assert "--augment" not in done[0] and "--val-fraction" not in done[0]
    assert done[0].endswith("try --optimizer adamw --weight-decay 0.05 (now adamw, 0.01), or fewer --steps (now 500)")
    falling = [dict(m, val_loss=0.05 - 0.01 * i, test_loss=0.05 - 0.01 * i) for i, m in enumerate(rising)]
    quiet = []
    OverfitCheck(quiet.append).on_fit_end(_Fake(falling))
    assert quiet == []


# ----------------------------------------------------------------------------- losses


def test_ssim_matches_scikit_image_on_a_known_pair():
    skimage = pytest.importorskip("skimage.metrics")
    from aekit.models.losses import ssim, ssim_mix

    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 24, 20))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ref = np.mean([skimage.structural_similarity(a[i, c], b[i, c], gaussian_weights=True, sigma=1.5,
                                                 use_sample_covariance=False, data_range=1.0)
                   for i in range(2) for c in range(3)])
    ta, tb = torch.tensor(a), torch.tensor(b)
    assert float(ssim(ta, tb)) == pytest.approx(ref, abs=1e-9)
    assert float(ssim(ta, ta)) == pytest.approx(1.0)
    assert float(ssim_mix(ta, tb)) == pytest.approx(0.84 * (1 - ref) + 0.16 * float(F.l1_loss(ta, tb)))


@pytest.mark.parametrize("loss", ["l1", "ssim"])
def test_the_photo_losses_train_a_model(loss):
    from aekit.models.losses import LOSSES

    cfg = build_config("resconv-16", width=4, max_width=8, latent_dim=4, loss=loss)
    model = create_model(cfg.model, (3, 16, 16))
    x = _images(8).float() / 255
    out = model(x)
    assert float(out.recon_loss.detach()) == pytest.approx(float(LOSSES[loss](out.recon_x.detach(), x)))
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def photos(tmp_path):
    """40 small colour images in a folder, no labels."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(40):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / f"{k:02d}.png")
    return folder


def test_train_on_a_folder_plans_in_one_line_records_the_plan_and_resumes_it(photos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(photos), "--steps", "30", "--patience", "0", "--width", "4",
                 "--max-width", "8", "--device", "cpu", "--no-plots", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = [ln for ln in (captured.out + captured.err).splitlines() if ln.startswith("auto:")]
    assert len(lines) == 1 and "12x12 RGB photos (36 images): 30 steps of 64 (~30 epochs)" in lines[0]
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["steps"], train["epochs"], train["augment"], train["val_fraction"], train["lr_schedule"]) == (
        30, 30, "flips+shifts", 0.1, "cosine")  # 30 passes over a colour set: augmented
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 30 and all("val_loss" in m for m in metrics)
    best = aekit.load_run(out, which="best")
    assert best.model is not None
    # a re-run from its config.json plans nothing: its fields are its own, an edited one too
    edited = json.loads((out / "config.json").read_text())
    edited["train"]["steps"], edited["train"]["augment"] = 2, "none"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert main(["train", "--config", str(tmp_path / "edited.json"), "--out", str(tmp_path / "again"),
                 "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert not [ln for ln in (captured.out + captured.err).splitlines() if ln.startswith("auto:")]
    again = json.loads((tmp_path / "again" / "config.json").read_text())["train"]
    assert (again["steps"], again["epochs"], again["augment"]) == (2, 2, "none")
    # more epochs on resume train on (they replace the steps budget)
    assert main(["train", "--resume", str(out), "--epochs", "32", "--quiet", "--no-plots"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 32
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["steps"], train["epochs"], train["augment"]) == (0, 32, "flips+shifts")


def test_a_run_with_a_validation_split_is_loaded_and_evaluated_with_the_weights_it_chose(tmp_path):
    """Training returns the best weights by the validation loss; load_run and evaluate default to the same."""
    from aekit.evaluation.suite import EvalSettings
    from aekit.rundir import RunDir

    common = dict(dataset="mnist-sample", device="cpu", verbose=False, progress=False, plots=False,
                  precision="fp32", hidden=(16,), latent_dim=2, batch_size=256, lr=0.01, seed=0)
    run = aekit.train(out=tmp_path / "val", epochs=4, val_fraction=0.2, **common)
    assert run.weights == "best" and RunDir(run.path).chosen_weights() == "best"
    again = aekit.load_run(run.path)
    assert again.weights == "best"
    for a, b in zip(again.model.state_dict().values(), run.model.state_dict().values()):
        assert torch.equal(a, b)  # the weights training returned
    last = aekit.load_run(run.path, "checkpoint")
    assert last.weights == "checkpoint"
    settings = EvalSettings(semi_sizes=(), probe_train=200, kmeans_init=1, logreg_max_iter=20)
    result = aekit.evaluate(run.path, settings=settings, cache=False, log=lambda line: None)
    assert result.summary["run"]["checkpoint"] == "best"
    # without a validation split there is nothing to choose by but the test split: the last weights
    plain = aekit.train(out=tmp_path / "plain", epochs=2, **common)
    assert plain.weights == "checkpoint" and aekit.load_run(plain.path).weights == "checkpoint"
