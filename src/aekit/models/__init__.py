"""Autoencoder models, registered by name.

Model configs and names (:mod:`aekit.models.configs`) load without torch; the model
classes load on first use.

>>> from aekit.models import create_model, list_models
>>> "mlp" in list_models()
True
"""

from aekit.models.configs import MODEL_CONFIGS, get_config_class, list_models

_LAZY = {"AutoEncoder": "base", "ModelOutput": "base", "PretrainingStage": "base",
         "create_model": "registry", "get_model_class": "registry", "register_model": "registry"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"aekit.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'aekit.models' has no attribute {name!r}")


__all__ = ["MODEL_CONFIGS", "AutoEncoder", "ModelOutput", "PretrainingStage", "create_model", "get_config_class",
           "get_model_class", "list_models", "register_model"]
