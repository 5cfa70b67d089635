"""Run configuration: dataclasses, one source of truth, validation declared as data.

A run is described by three sections plus a preset name::

    RunConfig(preset="classic-3d-tanh",
              data=DataConfig(...), model=<the model's config>, train=TrainConfig(...))

Every field carries its rule in ``metadata`` (``rule(min=1)``, ``rule(choices=...)``),
and :func:`validate` checks them all, raising :class:`ConfigError` with the dotted
field name and what is allowed. Model configs subclass :class:`ModelConfig`; every
model's own config is in :mod:`aekit.models.configs`. This module knows dataclasses and
rules only: resolving presets, config files and flags into a :class:`RunConfig` happens
in :mod:`aekit.resolve`, above both this module and the models. It imports no torch.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from aekit import limits
from aekit.errors import ConfigError
from aekit.pixels import SCALES

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "leaky_relu", "elu", "gelu", "silu")
LOSSES = ("mse", "bce", "l1", "ssim")
ALPHA_LOSSES = ("channel", "mask")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ON_NAN = ("stop", "skip")
RESIZE_MODES = ("crop", "stretch", "pad")
COLOR_MODES = ("auto", "grayscale", "rgb", "rgba")
ALPHA_BACKGROUNDS = ("white", "black")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "cosine")
AUGMENTS = ("none", "flips", "shifts", "flips+shifts", "dihedral", "dihedral+shifts")
_BYTE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
               "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def rule(default: Any = dataclasses.MISSING, *, help: str = "", choices=None, min=None, max=None,
         min_exclusive: bool = False, max_exclusive: bool = False, item_min=None, item_max=None, convert=None,
         default_factory: Any = dataclasses.MISSING):
    """A dataclass field with its validation rule and help text attached as metadata.

    ``convert(path, value)``, when given, brings a value written in several ways (``64``,
    ``"64x48"``, ``[64, 48]``) to the field's one stored form, or raises a
    :class:`ConfigError` naming ``path``; it runs before the type check.
    """
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive,
            "max_exclusive": max_exclusive, "item_min": item_min, "item_max": item_max, "convert": convert}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def parse_image_size(value: int | str | tuple[int, int] | None, name: str = "image_size") -> tuple[int, int] | None:
    """``64`` or ``"64"`` -> ``(64, 64)``; ``"64x48"`` -> ``(64, 48)``, WIDTHxHEIGHT; ``None`` stays ``None``.

    A list or tuple ``[width, height]`` (as a JSON config holds it) is taken as it is.
    A value that is none of these raises a :class:`ConfigError` naming ``name``.
    """
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        size = tuple(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        size = (value, value)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(value))
        size = (int(match.group(1)), int(match.group(2) or match.group(1))) if match else ()
    if not (len(size) == 2 and all(type(s) is int and 1 <= s <= 65535 for s in size)):
        raise ConfigError(f"{name}: {value!r} is not a size; give N or WIDTHxHEIGHT in whole pixels, "
                          "e.g. 64 or 64x48")
    too_many = limits.IMAGE_PIXELS.exceeded(size[0] * size[1])
    if too_many:
        raise ConfigError(f"{name}: {size[0]}x{size[1]} is {too_many}")
    return size


def parse_bytes(value: int | str, name: str = "max_memory") -> int | None:
    """A memory size as bytes: ``"2GB"``, ``"500MB"``, ``"1.5GiB"``, ``"0"`` or a number of bytes;
    ``"auto"`` -> ``None``. KB, MB, GB and TB are powers of 1000; KiB, MiB, GiB and TiB of 1024.
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", text) if isinstance(text, str) else None
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _BYTE_UNITS:
        raise ConfigError(f"{name}: {value!r} is not a memory size; give auto, 0 (always stream) or an amount "
                          "such as 2GB, 500MB or 1.5GiB")
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


def _image_size_text(path: str, value):
    size = parse_image_size(value, path)
    return None if size is None else f"{size[0]}x{size[1]}"


def _memory_text(path: str, value):
    parse_bytes(value, path)
    return str(value).strip() if isinstance(value, (str, int)) else value


@dataclass
class DataConfig:
    dataset: str = rule("mnist", help="named source (mnist, mnist-sample, fashion-mnist, cifar10) or a path: an "
                        "image folder, an .npz/.npy, IDX or CSV files")
    data_dir: str | None = rule(None, help="directory searched first for the dataset's files")
    scale: str = rule("unit", choices=SCALES, help="pixel scaling: unit [0,1] or centered [-0.5,0.5]")
    image_size: str | None = rule(None, convert=_image_size_text, help="image folders: the size every image is "
                                  "brought to, N or WIDTHxHEIGHT (e.g. 64 or 64x48); unset: the folder's most "
                                  "common size")
    resize: str = rule("crop", choices=RESIZE_MODES, help="image folders: how an image of another shape is "
                       "fitted: shorter side to size then centre crop, stretch each side, or pad the whole "
                       "image with alpha_background")
    color_mode: str = rule("auto", choices=COLOR_MODES, help="image folders: 1 channel, 3, or 4 (rgba: "
                           "rgb composited onto alpha_background plus the alpha, 255 where an image has none); "
                           "auto is rgb when any image is stored in colour")
    alpha_background: str = rule("white", choices=ALPHA_BACKGROUNDS, help="image folders: what transparent "
                                 "pixels (and padding) become; with color_mode rgba the colour under alpha 0")
    test_fraction: float | None = rule(None, min=0.0, max=1.0, max_exclusive=True, help="test share, seeded and "
                                       "stratified, for data without a split of its own; unset: 0.1 (a single "
                                       "CSV: 1/6)")
    strict: bool = rule(False, help="image folders: stop at the first unreadable file instead of skipping it")
    max_memory: str = rule("auto", convert=_memory_text, help="memory budget for holding the images on the "
                           "training device; a larger set streams from its memory-mapped file: auto (half the "
                           "RAM; on CUDA also at most half the GPU's memory), an amount such as 2GB or 500MB, "
                           "or 0 to always stream")

    def loader_settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`aekit.data.load_dataset` this section sets (the image settings)."""
        return {"image_size": self.image_size, "resize": self.resize, "color_mode": self.color_mode,
                "alpha_background": self.alpha_background, "test_fraction": self.test_fraction,
                "strict": self.strict}


@dataclass
class ModelConfig:
    """Fields every model understands; a model's own config subclasses this."""

    model: str = rule("mlp", help="registered model name (aekit models)")
    latent_dim: int = rule(3, min=1, max=limits.MAX_WIDTH, help="size of the code z")
    hidden: tuple[int, ...] = rule((128, 64, 12), item_min=1, item_max=limits.MAX_WIDTH, help="hidden layer "
                                   "widths of the encoder, input side first; the decoder mirrors them")
    activation: str = rule("tanh", choices=ACTIVATIONS, help="activation between hidden layers")
    latent_activation: str = rule("linear", choices=ACTIVATIONS, help="activation on the code")
    output_activation: str = rule("sigmoid", choices=ACTIVATIONS, help="activation on the reconstruction")
    loss: str = rule("mse", choices=LOSSES, help="reconstruction loss, mean per pixel: mse, bce, l1 (mean "
                     "absolute error), or ssim (0.84 x (1 - SSIM) + 0.16 x L1, Zhao et al. 2017)")
    loss_scale: float = rule(1.0, min=0.0, min_exclusive=True, help="factor on the reconstruction loss")
    alpha_loss: str = rule("channel", choices=ALPHA_LOSSES, help="4-channel (rgba) images: channel reconstructs "
                           "the alpha like any channel; mask weights each pixel's colour error by its true alpha "
                           "(transparent pixels do not count) and adds the alpha's own error")


@dataclass
class TrainConfig:
    epochs: int = rule(10, min=1, max=limits.MAX_EPOCHS, help="passes over the training set")
    batch_size: int = rule(64, min=1, max=limits.MAX_BATCH_SIZE, help="images per optimisation step")
    lr: float = rule(0.005, min=0.0, min_exclusive=True, help="learning rate (a schedule's peak)")
    weight_decay: float = rule(0.0, min=0.0, help="weight decay: with adam an L2 term in the gradient, with "
                               "adamw decoupled from it (Loshchilov & Hutter 2019)")
    seed: int = rule(0, min=0, max=limits.MAX_SEED, help="seed for initialisation and shuffling")
    device: str = rule("auto", choices=DEVICES, help="where to train; auto picks cuda, then mps, then cpu")
    snapshot_images: int = rule(10, min=1, max=64, help="test images shown in recon/epoch_NNN.png")
    precision: str = rule("auto", choices=PRECISIONS, help="arithmetic of the forward pass: fp32, or bf16/fp16 "
                          "autocast (fp16 with a gradient scaler); auto picks what aekit.training.precision "
                          "says holds the quality on the device")
    checkpoint_every: float = rule(5.0, min=0.0, min_exclusive=True, help="minutes between checkpoints "
                                   "(within an epoch too); a kill loses at most this much work")
    on_nan: str = rule("stop", choices=ON_NAN, help="a non-finite loss or gradient: stop the run (exit 3, "
                       "the last good checkpoint kept) or skip that step's update")
    steps: int = rule(0, min=0, max=limits.MAX_EPOCHS * 1000, help="a budget of optimiser steps: the run "
                      "trains as many epochs as reach it (the last one whole); 0: --epochs decides")
    optimizer: str = rule("adam", choices=OPTIMIZERS, help="adam, or adamw (weight decay decoupled from the "
                          "gradient)")
    lr_schedule: str = rule("constant", choices=LR_SCHEDULES, help="learning rate over the run, per step: "
                            "constant, or cosine decay to zero after the warm-up")
    warmup_steps: int = rule(0, min=0, help="steps of linear learning-rate warm-up from zero at the start")
    augment: str = rule("none", choices=AUGMENTS, help="random changes to each training image, seeded: "
                        "horizontal flips, shifts of up to 1/16 of the size (edges repeated), or dihedral: "
                        "the 8 rotations and reflections of a square, for images with no up or down (sky, "
                        "microscopy, textures); none for digits and text, where a mirror image is another "
                        "symbol")
    shift: int | None = rule(None, min=1, max=4096, help="the largest shift, in pixels each way, of an augment "
                             "with shifts; unset: 1/16 of the side (2 at 32, 4 at 64)")
    val_fraction: float = rule(0.0, min=0.0, max=0.5, help="share of the training images held out, seeded, to "
                               "choose the best weights (best.safetensors) and stop early; 0: none (the best "
                               "weights are then chosen by test loss)")
    patience: int = rule(0, min=0, help="stop when the validation loss has not improved for this many epochs; "
                         "0: never stop early")
    compile: bool = rule(False, help="compile the training step with torch.compile (one process): faster steps "
                         "after a compile of about half a minute, worth it for long runs (the auto plan turns it on "
                         "for pcamlp); on a CPU it needs a C++ compiler, and without one training goes on uncompiled")


SECTIONS = ("data", "model", "train")


@dataclass
class RunConfig:
    preset: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"preset": self.preset}
        for name in SECTIONS:
            out[name] = _section_to_dict(getattr(self, name))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _section_to_dict(obj) -> dict[str, Any]:
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj)}


def field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# --------------------------------------------------------------------------- validation

def _coerce(path: str, value: Any, tp) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(path, value, inner)
    if origin is tuple:
        if isinstance(value, str):  # from a flag: "128,64,12"; "" or "none" for no layers
            value = [] if value.strip().lower() in ("", "none") else value.replace(" ", "").split(",")
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise ConfigError(f"{path}: expected comma-separated integers like 128,64,12, got {value!r}") from None
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list of integers, got {value!r}")
        return tuple(_coerce(f"{path}[{i}]", v, args[0]) for i, v in enumerate(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} at {path}")  # a bug in a config class, not user input


def _check_rule(path: str, value: Any, meta) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{path}: {value!r} is not allowed; choose one of: {', '.join(map(str, choices))}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None:
            if meta.get("min_exclusive") and not value > lo:
                raise ConfigError(f"{path}: must be > {lo}, got {value}")
            if not meta.get("min_exclusive") and value < lo:
                raise ConfigError(f"{path}: must be >= {lo}, got {value}")
        if hi is not None:
            if meta.get("max_exclusive") and not value < hi:
                raise ConfigError(f"{path}: must be < {hi}, got {_shown(value)}")
            if not meta.get("max_exclusive") and value > hi:
                allowed = "" if lo is None or meta.get("min_exclusive") else f" (allowed: {lo} to {hi})"
                raise ConfigError(f"{path}: must be <= {hi}{allowed}, got {_shown(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{path}: must be a finite number, got {value}")
    item_min, item_max = meta.get("item_min"), meta.get("item_max")
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            if item_min is not None and v < item_min:
                raise ConfigError(f"{path}[{i}]: must be >= {item_min}, got {v}")
            if item_max is not None and v > item_max:
                raise ConfigError(f"{path}[{i}]: must be <= {item_max} (allowed: {item_min} to {item_max}), "
                                  f"got {_shown(v)}")


def _shown(value) -> str:
    """A number as a message shows it: 10**30 as 1e+30, not thirty-one digits."""
    return f"{value:.3g}" if abs(value) >= 1e15 else str(value)


def build_section(cls, values: dict[str, Any], prefix: str):
    """Make ``cls`` from a dict, rejecting unknown keys and values that break a rule."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a mapping of fields, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{prefix}.{key}: unknown field; allowed: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in known.items():
        if name not in values:
            continue
        path = f"{prefix}.{name}"
        value = values[name]
        if f.metadata.get("convert") is not None:
            value = f.metadata["convert"](path, value)
        value = _coerce(path, value, hints[name])
        _check_rule(path, value, f.metadata)
        kwargs[name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check()  # cross-field rules of a model config
    return obj


def validate(config: RunConfig) -> RunConfig:
    """Re-validate every field of a config built in Python, then the rules across sections."""
    for name in SECTIONS:
        section = getattr(config, name)
        build_section(type(section), _section_to_dict(section), name)
    return check_sections(config)


def check_sections(config: RunConfig) -> RunConfig:
    """The rules that span sections (each section's own fields are already valid)."""
    if config.model.loss == "bce" and config.data.scale != "unit":
        raise ConfigError("model.loss: bce needs pixels in [0,1]; set data.scale to 'unit' or use loss 'mse'")
    if config.model.loss == "bce" and config.model.output_activation != "sigmoid":
        raise ConfigError("model.output_activation: bce needs 'sigmoid' outputs in (0,1), "
                          f"got {config.model.output_activation!r}")
    if config.model.alpha_loss == "mask" and config.data.scale != "unit":
        raise ConfigError("model.alpha_loss: mask reads the alpha as a weight in [0,1]; set data.scale to 'unit'")
    return config
