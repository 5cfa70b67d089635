"""Every model's config: the fields it adds to :class:`~aekit.config.ModelConfig` and their rules.

The configs live here, apart from the models (as pythae keeps ``*_config.py`` beside
``*_model.py``), because this module imports no torch: ``aekit train --help`` lists
every model's flags, and resolving a config validates them, without loading torch.
A model file imports its config from here and names it as ``config_class``;
:func:`~aekit.models.registry.register_model` checks the two agree.

:data:`MODEL_CONFIGS` maps each built-in model name to its config class; the model
class for name ``X`` is in the module ``aekit.models.X``, imported on first use. A
model registered from outside aekit adds its own entry when it registers.

A new model can also be one file with its config inside it: a file in ``aekit/models/``
whose class carries ``@register_model("name")`` is found by reading the files (not
importing them) and imported when its name is first asked for, or when every model's
flags are listed (``aekit train --help``, which then imports torch). Models of one's
own outside aekit are named in the environment variable ``AEKIT_MODELS`` (modules or
``.py`` files, comma-separated) and imported the same way, so the CLI trains, resumes
and loads them too.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from aekit import limits
from aekit.config import ACTIVATIONS, ModelConfig, rule
from aekit.errors import ConfigError

ARCHS = ("mlp", "conv")
CONV_DECODERS = ("subpixel", "refine")
NOISES = ("gaussian", "mask", "salt_pepper")
PENALTIES = ("l1", "kl")
SPARSITY_WEIGHTS = {"l1": 0.1, "kl": 3.0}  # the default weight of each sparsity penalty


def channels_rule():
    return rule((32, 64), item_min=1, item_max=limits.MAX_WIDTH, help="conv: channels of each stride-2 "
                "convolution, input side first (each halves height and width); the decoder mirrors them")


def conv_decoder_rule():
    return rule("subpixel", choices=CONV_DECODERS, help="conv: the decoder's last step: subpixel (a 3x3 "
                "convolution at half size whose channels become 2x2 pixels; the decoder costs what the "
                "encoder does) or refine (the earlier head: the first width kept at full size with a group "
                "norm, then a 3x3 convolution; about 3x the training time; runs trained before this "
                "option have it)")


@dataclass
class LinearConfig(ModelConfig):
    def check(self) -> None:
        if self.loss != "mse":
            raise ConfigError("model.loss: the linear autoencoder is PCA's model only under 'mse' "
                              f"(its outputs are unbounded), got {self.loss!r}")


@dataclass
class ConvConfig(ModelConfig):
    channels: tuple[int, ...] = channels_rule()
    conv_decoder: str = conv_decoder_rule()


@dataclass
class ArchConfig(ModelConfig):
    """Fields of a variant that can sit on either body (see :mod:`aekit.models.bodies`)."""

    arch: str = rule("mlp", choices=ARCHS, help="network: mlp (uses hidden) or conv (uses channels)")
    channels: tuple[int, ...] = channels_rule()
    conv_decoder: str = conv_decoder_rule()


@dataclass
class DenoisingConfig(ArchConfig):
    noise: str = rule("gaussian", choices=NOISES, help="corruption of the training inputs")
    noise_level: float = rule(0.3, min=0.0, max=1.0, help="sigma for gaussian, fraction of pixels "
                              "for mask and salt_pepper")


@dataclass
class SparseConfig(ArchConfig):
    sparsity: str = rule("l1", choices=PENALTIES, help="penalty on the code; kl needs "
                         "--latent-activation sigmoid")
    sparsity_weight: float | None = rule(None, min=0.0, help="weight of the penalty, per pixel like "
                                         "the reconstruction loss; unset: 0.1 for l1, 3 for kl (Ng's beta)")
    sparsity_target: float = rule(0.05, min=0.0, max=1.0, min_exclusive=True,
                                  help="target mean activation rho of each unit, for kl")

    def check(self) -> None:
        if self.sparsity == "kl" and self.latent_activation != "sigmoid":
            raise ConfigError("model.latent_activation: the kl sparsity penalty needs sigmoid code units "
                              f"(activations in (0,1)); set it to 'sigmoid', got {self.latent_activation!r}")
        if self.sparsity == "kl" and self.sparsity_target >= 1:
            raise ConfigError(f"model.sparsity_target: must be < 1, got {self.sparsity_target}")


@dataclass
class ContractiveConfig(ArchConfig):
    contraction_weight: float = rule(0.1, min=0.0, help="weight lambda on the squared Frobenius "
                                     "norm of the encoder's Jacobian, per pixel like the reconstruction loss")


@dataclass
class VAEConfig(ArchConfig):
    beta: float = rule(1.0, min=0.0, help="weight of the KL term (1: the VAE, >1: a beta-VAE)")
    kl_warmup_epochs: float = rule(0.0, min=0.0, help="epochs over which the KL weight rises "
                                   "linearly from 0 to beta (0: no warm-up)")

    def check(self) -> None:
        if self.latent_activation != "linear":
            raise ConfigError("model.latent_activation: a VAE's code is Gaussian (mean and log-variance "
                              f"are unbounded); set it to 'linear', got {self.latent_activation!r}")


INFERENCE_STEPS_HELP = ("{model}: steps of Adam that move each code towards the one the decoder reconstructs its "
                        "image best from, when encoding outside training (0: the encoder's code as it is; "
                        "aekit.models.inference); default {default}")
INFERENCE_LR_HELP = ("{model}: the inference steps' learning rate (Adam's: about the first step in each code unit); "
                     "unset: 0.4 / sqrt(latent_dim), 0.1 for a 16-D code")


@dataclass
class ResConvConfig(ModelConfig):
    """The residual conv family: its depth follows the image size (see :mod:`aekit.models.resconv`)."""

    activation: str = rule("silu", choices=ACTIVATIONS, help="activation between hidden layers")
    width: int = rule(16, min=1, max=limits.MAX_WIDTH, help="resconv: channels of the first stage (at half the "
                      "image size); each stage down doubles them, up to max_width")
    max_width: int = rule(256, min=1, max=limits.MAX_WIDTH, help="resconv: the most channels a stage has")
    blocks: int = rule(1, min=0, max=16, help="resconv: residual blocks at each size, in the encoder and "
                       "the decoder alike")
    stages: int | None = rule(None, min=0, max=16, help="resconv: stride-2 stages down (and up again); unset: "
                              "from the image size, round(log2(shorter side / 4)), so the last map is about 4x4")
    linear_path: bool = rule(False, help="resconv: a linear path beside the network, started at the training "
                             "images' PCA: training starts from PCA's reconstructions and the network learns "
                             "what PCA misses (the auto preset turns it on)")

    inference_steps: int = rule(0, min=0, max=1000, help=INFERENCE_STEPS_HELP.format(model="resconv", default=0))
    inference_lr: float | None = rule(None, min=0.0, max=100.0, help=INFERENCE_LR_HELP.format(model="resconv"))

    def check(self) -> None:
        if self.max_width < self.width:
            raise ConfigError(f"model.max_width: must be >= model.width ({self.width}), got {self.max_width}")
        if self.linear_path and self.latent_activation != "linear":
            raise ConfigError("model.latent_activation: the linear path starts the code at PCA's coordinates, "
                              f"which are unbounded; set it to 'linear' or turn linear_path off, got "
                              f"{self.latent_activation!r}")


@dataclass
class PCAMLPConfig(ModelConfig):
    """The fields of :mod:`aekit.models.pcamlp`."""

    components: int = rule(256, min=1, max=limits.MAX_WIDTH, help="pcamlp: principal axes the images are written "
                           "in (at most the pixels, and the training sample's size); the encoder reads their "
                           "coordinates and the decoder writes them")
    width: int = rule(1024, min=1, max=limits.MAX_WIDTH, help="pcamlp: units of each hidden layer")
    depth: int = rule(3, min=1, max=16, help="pcamlp: hidden layers (linear, layer norm, activation) in the "
                      "encoder and the decoder alike")
    encoder_width: int | None = rule(None, min=1, max=limits.MAX_WIDTH, help="pcamlp: units of the encoder's "
                                     "hidden layers; unset: width")
    encoder_depth: int | None = rule(None, min=1, max=16, help="pcamlp: the encoder's hidden layers; unset: depth")
    activation: str = rule("silu", choices=ACTIVATIONS, help="activation between hidden layers")
    linear_path: bool = rule(True, help="pcamlp: a linear layer beside each MLP, started at PCA (the code starts "
                             "as the top principal coordinates, the reconstruction as PCA's)")
    inference_steps: int = rule(3, min=0, max=1000, help=INFERENCE_STEPS_HELP.format(model="pcamlp", default=3))
    inference_lr: float | None = rule(None, min=0.0, max=100.0, help=INFERENCE_LR_HELP.format(model="pcamlp"))

    def check(self) -> None:
        if self.linear_path and self.latent_activation != "linear":
            raise ConfigError("model.latent_activation: the linear path starts the code at PCA's coordinates, "
                              f"which are unbounded; set it to 'linear' or turn linear_path off, got "
                              f"{self.latent_activation!r}")


@dataclass
class StackedConfig(ModelConfig):
    pretrain_epochs: int = rule(1, min=0, max=limits.MAX_EPOCHS, help="epochs of greedy pre-training per layer before "
                                "fine-tuning the whole stack (0: none)")


MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "mlp": ModelConfig,
    "linear": LinearConfig,
    "conv": ConvConfig,
    "denoising": DenoisingConfig,
    "sparse": SparseConfig,
    "contractive": ContractiveConfig,
    "vae": VAEConfig,
    "stacked": StackedConfig,
    "resconv": ResConvConfig,
    "pcamlp": PCAMLPConfig,
}


MODELS_ENV = "AEKIT_MODELS"  # modules or .py files, comma-separated, whose models register when imported
_REGISTERS = re.compile(r"""@register_model\(\s*["']([^"']+)["']\s*\)""")


@functools.lru_cache(maxsize=None)
def model_files(directory: Path = Path(__file__).parent, package: str = "aekit.models") -> dict[str, str]:
    """Model name -> the module registering it, for the ``.py`` files in ``directory`` (read, not imported)."""
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for name in _REGISTERS.findall(text):
            found.setdefault(name, f"{package}.{path.stem}")
    return found


def load_model_modules() -> None:
    """Import the modules of models not in :data:`MODEL_CONFIGS` yet: files in ``aekit/models/`` that keep
    their config in the file, then ``AEKIT_MODELS``'s modules. Nothing is imported when there are none.
    """
    for name, module in model_files().items():
        if name not in MODEL_CONFIGS:
            importlib.import_module(module)
    for entry in filter(None, (e.strip() for e in os.environ.get(MODELS_ENV, "").split(","))):
        _import_user_models(entry)


def _import_user_models(entry: str) -> None:
    """Import one ``AEKIT_MODELS`` entry (a module name, or a ``.py`` file's path), once per process."""
    try:
        if entry.endswith(".py"):
            path = Path(entry).expanduser().resolve()
            module = f"aekit_user_models.{path.stem}"
            if module in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(module, path)
            if spec is None or not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            found = importlib.util.module_from_spec(spec)
            sys.modules[module] = found
            try:
                spec.loader.exec_module(found)
            except BaseException:
                del sys.modules[module]
                raise
        else:
            importlib.import_module(entry)
    except Exception as exc:  # the user's own code: its error, in one line naming where it came from
        raise ConfigError(f"{MODELS_ENV}: could not import {entry!r}: {type(exc).__name__}: {exc}") from None


def list_models() -> list[str]:
    """The model names, sorted (the model files' and ``AEKIT_MODELS``'s included)."""
    load_model_modules()
    return sorted(MODEL_CONFIGS)


def get_config_class(name: str) -> type[ModelConfig]:
    """The config class of model ``name``; an unknown name is a :class:`ConfigError` listing the models."""
    if not isinstance(name, str):
        raise ConfigError(f"model.model: expected a model name, got {name!r}")
    if name not in MODEL_CONFIGS:
        load_model_modules()
    if name not in MODEL_CONFIGS:
        raise ConfigError(f"model.model: unknown model {name!r}; choose one of: {', '.join(list_models())} "
                          f"(a model of your own registers when its module is imported: import the file with its "
                          f"@register_model({name!r}) first, or name it in {MODELS_ENV})")
    return MODEL_CONFIGS[name]
