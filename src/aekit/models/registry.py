"""The model registry: ``@register_model`` + ``create_model(config)`` + ``list_models()``.

A model variant is one file, ``aekit/models/<name>.py``, whose class registers itself
by name and names its config from :mod:`aekit.models.configs`; nothing else in aekit
learns the name. The file is imported the first time its model is asked for, so
listing models and validating configs never imports torch.

A model of your own is one file anywhere, with its config class beside it: it registers
when that file is imported (as timm's models do), and from then on trains, resumes and
loads like a built-in one. A run of it loads only after the import; until then its name
is unknown, and the error says so (docs/adding-a-model.md).
"""

from __future__ import annotations

import importlib

from aekit import limits
from aekit.config import ModelConfig, build_section
from aekit.errors import ConfigError
from aekit.models.configs import MODEL_CONFIGS, get_config_class, list_models, model_files

_REGISTRY: dict[str, type] = {}


def register_model(name: str):
    """Class decorator: make ``cls`` available as ``create_model(name)``.

    A built-in name must come with the config :data:`~aekit.models.configs.MODEL_CONFIGS`
    declares for it; a new name registers ``cls.config_class`` there.
    """

    def deco(cls):
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        declared = MODEL_CONFIGS.setdefault(name, cls.config_class)
        if cls.config_class is not declared:
            raise RuntimeError(f"model {name!r}: config_class {cls.config_class.__name__} is not the "
                               f"{declared.__name__} that aekit.models.configs declares for it")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_model_class(name: str):
    """The model class registered as ``name`` (importing the module that registers it if need be)."""
    get_config_class(name)  # an unknown name is a ConfigError listing the models
    if name not in _REGISTRY:
        importlib.import_module(model_files().get(name, f"aekit.models.{name}"))
    return _REGISTRY[name]


def create_model(config: ModelConfig | str, input_shape=(1, 28, 28), **fields):
    """Build a model for images of ``input_shape`` ``(C, H, W)``.

    ``config`` is a validated model config (from :func:`aekit.resolve.build_config`),
    used as it is; or a model name, whose config is then built from ``fields`` and
    validated.

    >>> model = create_model("mlp", latent_dim=2, hidden=(64,))
    >>> model.latent_dim
    2
    """
    if isinstance(config, str):
        config = build_section(get_config_class(config), {"model": config, **fields}, "model")
    elif fields:
        raise TypeError("create_model: pass fields only with a model name, not with a config object")
    cls, input_shape = get_model_class(config.model), tuple(input_shape)
    _check_size(cls, config, input_shape)
    return cls(config, input_shape)


def _check_size(cls, config: ModelConfig, input_shape: tuple[int, int, int]) -> None:
    """Refuse a model over :data:`aekit.limits.PARAMETERS`, counted on torch's meta device.

    A model built there has shapes but no storage, so a crafted config or checkpoint
    (1x20000x20000 images into a dense layer) is refused before anything is allocated.
    """
    import torch

    with torch.device("meta"):
        model = cls(config, input_shape)
    n = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    too_many = limits.PARAMETERS.exceeded(n)
    if too_many:
        raise ConfigError(f"model: {config.model} for {'x'.join(map(str, input_shape))} images would have "
                          f"{too_many}; or lower model.latent_dim, model.hidden, model.channels or the image size")


__all__ = ["create_model", "get_config_class", "get_model_class", "list_models", "register_model"]
