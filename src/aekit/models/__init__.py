"""Autoencoder models, registered by name.

>>> from aekit.models import create_model, list_models
>>> "mlp" in list_models()
True
"""

from aekit.models.base import AutoEncoder, ModelOutput, PretrainingStage
from aekit.models.registry import create_model, get_config_class, get_model_class, list_models, register_model

# Importing a variant's module registers it. One line per model file.
from aekit.models import mlp  # noqa: E402,F401
from aekit.models import linear  # noqa: E402,F401
from aekit.models import conv  # noqa: E402,F401
from aekit.models import denoising  # noqa: E402,F401
from aekit.models import sparse  # noqa: E402,F401
from aekit.models import contractive  # noqa: E402,F401
from aekit.models import vae  # noqa: E402,F401
from aekit.models import stacked  # noqa: E402,F401

__all__ = ["AutoEncoder", "ModelOutput", "PretrainingStage", "create_model", "get_config_class", "get_model_class",
           "list_models", "register_model"]
