"""The ``auto`` preset: a model and a training budget chosen from the data, said in one line.

``aekit train --dataset FOLDER`` (no ``--preset``, ``--config`` or ``--model``) and
``--preset auto`` start from the ``auto`` preset, whose fields :func:`plan` fills from the
loaded data before anything trains: the residual conv family (its depth follows the image
size), started at the training images' PCA where the budget passes over them many times (a
linear path beside the network, so training starts from PCA's reconstructions:
:mod:`aekit.models.resconv`), a step budget from the data and image size, warm-up and cosine decay, AdamW,
augmentation where it suits the images, and a validation split with early stopping. A large set of
small colour photos (CIFAR-10) trains :mod:`aekit.models.pcamlp` instead, an MLP on the images'
principal components with its own budget (large batches, a compiled step, about 12 minutes). A
field the user gave is never changed. The chosen values are written to the run's
``config.json``, so a resume or ``--config`` re-run needs no planning.

Why these numbers (measured on the benchmark sets, ``docs/benchmarks.md``): a small set
gets many passes (the stamps folder's 1,700 images, 10 epochs, was 140 steps and lost to
PCA), a large one a few; the budget is capped by compute, ``PIXEL_BUDGET`` image-pixels
seen (about two minutes on a 2-core CPU), so a 64x64 set gets fewer steps than a 32x32 one.
"""

from __future__ import annotations

import math

from aekit.config import RunConfig
from aekit.training.schedule import planned_epochs, steps_per_epoch

PIXEL_BUDGET = 1.5e8  # image-pixels a run sees: steps x batch x height x width
MAX_EPOCHS = 100  # a small set: at most this many passes (the validation split stops it earlier)
MIN_STEPS = 300
VAL_FRACTION = 0.1
AUGMENT_EPOCHS = 30  # colour images are flipped and shifted when the budget passes over them this many times
# ... and the model starts from their PCA (resconv's linear path) when it passes over them this many times: on the
# small folders it took the auto plan from 1.07x and 1.56x PCA-64's error to 0.72x and 0.92x; on CIFAR-10's four
# epochs it cost (0.97x PCA-16 against 0.93x), the network from scratch learning faster there (docs/benchmarks.md)
LINEAR_PATH_EPOCHS = 30
# A small set (passed over LINEAR_PATH_EPOCHS times or more within PIXEL_BUDGET) gets SMALL_SET_BUDGET times the
# steps, up to SMALL_SET_MAX_EPOCHS passes (the validation split stops it earlier), and its codes take
# SMALL_SET_INFERENCE_STEPS inference steps (aekit.models.inference): on the Debian nebulae at 16-D the longer run
# alone went from 0.93x to 0.91x PCA-16's test MSE, and with the steps to 0.84x; the stamps from 0.84x to 0.73x
# (docs/benchmarks.md)
SMALL_SET_BUDGET, SMALL_SET_MAX_EPOCHS, SMALL_SET_INFERENCE_STEPS = 4, 300, 20
PHOTO_CHANNELS = 3
HOLD_OUT_BYTES = 2e9  # a larger training set gets no validation split from auto (hold_out copies the images)
# A large set of small colour photos trains pcamlp (an MLP on the images' principal components) instead: on
# CIFAR-10 at 16-D it reached 0.84x PCA-16's error (0.865x without its inference steps) in about 14 minutes in all,
# where resconv's plan reached 0.93x (and 0.885x given 13 minutes: docs/benchmarks.md)
PCAMLP_MIN_IMAGES = 20_000
PCAMLP_MAX_PIXELS = 48 * 48  # height x width: beyond this 256 principal axes hold too little of the image
PCAMLP_IMAGES = 12.5e6  # images a pcamlp run sees (steps x batch): about 12 minutes on a 2-core CPU, bf16, compiled
PCAMLP_SHIFT_SHARE = 10
PCAMLP_BATCH, PCAMLP_LR, PCAMLP_WEIGHT_DECAY = 2048, 0.006, 0.05  # large batches use the CPU's bf16 best; lr at 16-D
PCAMLP_VAL_IMAGES = 2000  # its validation split: enough to choose weights by; the rest trains
RESCONV_FIELDS = ("width", "max_width", "blocks", "stages", "linear_path", "activation")  # one given keeps resconv


def held_out_count(n: int, fraction: float) -> int:
    """Training images held out for validation: ``round(n * fraction)``, at least one when asked for,
    always leaving one to train on.
    """
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


def plan(cfg: RunConfig, image_shape: tuple[int, int, int], n_train: int, given: set[str]) -> str:
    """Fill the ``auto`` preset's fields from the data (not those in ``given``); the one-line why.

    ``image_shape`` is ``(C, H, W)``; ``n_train`` the training images before the validation
    split. Changes ``cfg`` in place.
    """
    c, h, w = image_shape
    train, model = cfg.train, cfg.model
    photo = c >= PHOTO_CHANNELS

    def choose(section, name, value):
        if name not in given:
            setattr(section, name, value)

    # the split copies the training images into memory: not for a set that streams from disk
    fits = n_train * c * h * w <= HOLD_OUT_BYTES
    mlp = photo and n_train >= PCAMLP_MIN_IMAGES and h * w <= PCAMLP_MAX_PIXELS and model.model == "resconv" \
        and not given & set(RESCONV_FIELDS)
    if mlp:
        model = cfg.model = pcamlp_config(model)
        # a larger code needs a gentler rate: at 64-D lr 0.006 left the MLPs at PCA's error after the warm-up,
        # 0.002 trained (docs/models.md#an-mlp-on-principal-components-pcamlp)
        choose(train, "lr", round(PCAMLP_LR * min(1.0, 16 / model.latent_dim) ** 0.8, 5))
        choose(train, "compile", True)  # a long run of a few large products: compiling pays (benchmarks/compile.py)
        # the MLP overfits CIFAR-10 more than the conv net (it has no translation built in): shifts of up to 1/10
        # of the side (3 pixels at 32), where the default's 1/16 left it no better after 6,600 steps than 4,600
        choose(train, "shift", max(1, round(min(h, w) / PCAMLP_SHIFT_SHARE)))
    choose(train, "batch_size", PCAMLP_BATCH if mlp else 64 if h * w <= 48 * 48 else 32)
    val_fraction = min(VAL_FRACTION, PCAMLP_VAL_IMAGES / n_train) if mlp else VAL_FRACTION
    choose(train, "val_fraction", round(val_fraction, 4) if n_train >= 20 and fits else 0.0)
    n_fit = n_train - held_out_count(n_train, train.val_fraction)
    per_epoch = steps_per_epoch(n_fit, train.batch_size)
    by_compute = int(PCAMLP_IMAGES / train.batch_size) if mlp else int(PIXEL_BUDGET / (train.batch_size * h * w))
    if "epochs" in given and "steps" not in given:
        train.steps = 0  # the epochs given are the budget
    else:
        steps = by_compute if mlp else min(by_compute, MAX_EPOCHS * per_epoch)
        small = not mlp and steps >= LINEAR_PATH_EPOCHS * per_epoch
        if small:
            steps = min(SMALL_SET_BUDGET * by_compute, SMALL_SET_MAX_EPOCHS * per_epoch)
        choose(train, "steps", max(MIN_STEPS, steps))
    epochs = planned_epochs(train, n_fit)
    train.epochs = epochs  # a steps budget decides them (schedule.planned_epochs); recorded for resume
    total = train.steps or epochs * per_epoch
    # pcamlp warms up over 200 steps however short the run: at lr 0.006 a quicker warm-up can leave its MLPs dead
    choose(train, "warmup_steps", min(200, max(1, total // 2 if mlp else total // 20)))
    choose(train, "lr_schedule", "cosine")
    choose(train, "optimizer", "adamw")
    choose(train, "weight_decay", PCAMLP_WEIGHT_DECAY if mlp else 0.01)
    # augmentation pays where the model sees each image many times; on a large set, at a few epochs, the
    # model underfits and augmenting only slows it (CIFAR-10, docs/benchmarks.md#your-own-images)
    choose(train, "augment", "flips+shifts" if photo and epochs >= AUGMENT_EPOCHS else "none")
    choose(train, "patience", max(3, epochs // 5) if train.val_fraction > 0 else 0)
    if hasattr(model, "linear_path"):  # pcamlp: always (it is what makes it start at PCA)
        choose(model, "linear_path", (mlp or epochs >= LINEAR_PATH_EPOCHS) and model.latent_activation == "linear")
    if not mlp and hasattr(model, "inference_steps"):  # resconv on a small set; pcamlp keeps its own 3
        # not for a bounded code (--latent-activation tanh): the steps would take codes out of its range
        choose(model, "inference_steps", SMALL_SET_INFERENCE_STEPS
               if epochs >= LINEAR_PATH_EPOCHS and model.latent_activation == "linear" else 0)
    stages = max(0, round(math.log2(min(h, w) / 4)))
    kind = f"{'RGBA' if c == 4 else 'RGB'} photos" if photo else "grey images"
    shape = f"{min(model.components, c * h * w)} principal axes, {model.depth} hidden layer" \
        f"{'s' if model.depth != 1 else ''} of {model.width}" if mlp else f"{stages} stages"
    if inference := getattr(model, "inference_steps", 0):
        shape += f", {inference} inference step{'s' if inference != 1 else ''} per code"
    shift = f" (up to {train.shift} px)" if train.shift and "shifts" in train.augment else ""
    why_aug = "" if train.augment != "none" or "augment" in given else \
        f" (each image seen under {AUGMENT_EPOCHS} times)" if photo else " (grey: a mirrored digit is another)"
    held = held_out_count(n_train, train.val_fraction)
    val = f"validation {train.val_fraction:.0%} ({held:,} images), early stop after {train.patience} epochs without " \
        "progress" if train.val_fraction > 0 else \
        f"no validation split ({'too few images' if fits else 'too many to copy'})"
    start = " started at PCA (a linear path beside it)" if getattr(model, "linear_path", False) else ""
    return (f"auto: {model.model}{start} with a {model.latent_dim}-D code and {shape} for {w}x{h} {kind} "
            f"({n_train:,} images): {total:,} steps of {train.batch_size} (~{epochs} epochs), warm-up "
            f"{train.warmup_steps}, {train.lr_schedule} decay from lr {train.lr:g}, {train.optimizer} weight decay "
            f"{train.weight_decay:g}, augment {train.augment}{shift}{why_aug}, {val}"
            f"{', compiled' if train.compile else ''}; every choice is a flag "
            f"(--steps, --augment, --val-fraction, ...)")


def pcamlp_config(model):
    """A :mod:`aekit.models.pcamlp` config with the fields every model shares taken from ``model``'s."""
    import dataclasses

    from aekit.config import ModelConfig, build_section
    from aekit.models.configs import get_config_class

    shared = {f.name: getattr(model, f.name) for f in dataclasses.fields(ModelConfig)
              if f.name not in ("model", "hidden", "activation")}
    return build_section(get_config_class("pcamlp"), {**shared, "model": "pcamlp",
                                                      "linear_path": model.latent_activation == "linear"}, "model")


def settle(cfg: RunConfig, image_shape: tuple[int, int, int], n_train: int, given: set[str] | None) -> str | None:
    """Before a run trains: :func:`plan` an ``auto`` run from its preset (``given``: the fields set by flags;
    ``None`` for a resumed run or one from a config file, whose fields are all its own), its line returned;
    and turn a ``steps`` budget into the epochs that reach it, so ``config.json`` holds them.
    """
    from aekit.presets import AUTO_PRESET

    line = plan(cfg, image_shape, n_train, given) if given is not None and cfg.preset == AUTO_PRESET else None
    if cfg.train.steps:
        cfg.train.epochs = planned_epochs(cfg.train, n_train - held_out_count(n_train, cfg.train.val_fraction))
    return line


def hold_out(x_train, fraction: float, seed: int):
    """``(x_fit, x_val)``: the training images split, seeded by the run's seed, into those trained on and
    the validation images (``None`` when ``fraction`` is 0); both in their stored order.
    """
    import numpy as np

    n_val = held_out_count(len(x_train), fraction)
    if n_val == 0:
        return x_train, None
    val = np.zeros(len(x_train), bool)
    val[np.random.default_rng([seed, 0x5EED]).permutation(len(x_train))[:n_val]] = True
    return x_train[~val], x_train[val]  # copies, read in order (a memory map is read once, front to back)
