"""Autoencoder models, registered by name.

>>> from aekit.models import create_model, list_models
>>> "mlp" in list_models()
True
"""

from aekit.models.base import AutoEncoder, ModelOutput
from aekit.models.registry import create_model, get_config_class, get_model_class, list_models, register_model

# Importing a variant's module registers it. One line per model file.
from aekit.models import mlp  # noqa: E402,F401

__all__ = ["AutoEncoder", "ModelOutput", "create_model", "get_config_class", "get_model_class",
           "list_models", "register_model"]
