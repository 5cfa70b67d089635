"""The model registry: ``@register_model`` + ``create_model(name)`` + ``list_models()``.

A model variant is one file that defines a config subclass and a model class and
registers the class by name; nothing else in aekit learns the name.
"""

from __future__ import annotations

from aekit.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register_model(name: str):
    """Class decorator: make ``cls`` available as ``create_model(name)``."""

    def deco(cls):
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_model_class(name: str):
    if name not in _REGISTRY:
        raise ConfigError(f"model.model: unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name]


def get_config_class(name: str):
    return get_model_class(name).config_class


def create_model(name: str, input_shape=(1, 28, 28), **config):
    """Build model ``name`` for images of ``input_shape`` (C, H, W) from config fields.

    >>> model = create_model("mlp", latent_dim=2, hidden=(64,))
    >>> model.latent_dim
    2
    """
    from aekit.config import build_section

    cls = get_model_class(name)
    cfg = build_section(cls.config_class, {"model": name, **config}, "model")
    return cls(cfg, tuple(input_shape))
