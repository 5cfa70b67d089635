"""Pixels: the one place that scales images to the model's range and back.

Images stay ``uint8`` in ``[0, 255]`` from the file to the training device (a quarter
of the bytes of float32) and are scaled there by :func:`to_model`. What a model puts
out goes back to ``[0, 1]`` for metrics (:func:`to_unit`) and to ``uint8`` for
pictures (:func:`to_uint8`). Two scales exist:

- ``unit``: ``x / 255`` in ``[0, 1]``;
- ``centered``: ``x / 255 - 0.5`` in ``[-0.5, 0.5]`` (the range of the Keras seed).

torch is imported only when a function gets a tensor (or must make one), so
importing this module costs nothing.
"""

from __future__ import annotations

from aekit.errors import ConfigError

SCALES = ("unit", "centered")
_OFFSET = {"unit": 0.0, "centered": 0.5}  # model value + offset = value in [0, 1]


def check_scale(scale: str) -> str:
    if scale not in _OFFSET:
        raise ConfigError(f"data.scale: unknown value {scale!r}; allowed: {', '.join(SCALES)}")
    return scale


def to_model(x, scale: str = "unit"):
    """uint8 pixels (tensor or ndarray, any shape) as a float32 tensor in the model's range.

    Floating-point input is taken as already in the model's range and only cast to
    float32 (real-valued features, or images scaled by the caller). The result is on the
    tensor's device (a numpy array becomes a CPU tensor).
    """
    import torch

    check_scale(scale)
    x = torch.as_tensor(x)
    if x.is_floating_point():
        return x.to(torch.float32)
    if x.dtype != torch.uint8:
        raise TypeError(f"to_model expects uint8 pixels or floats in the model's range, got {x.dtype}")
    x = x.to(torch.float32).div_(255.0)
    if _OFFSET[scale]:
        x = x.sub_(_OFFSET[scale])
    return x


def to_unit(x, scale: str = "unit"):
    """Model-range values (tensor or ndarray) as a float32 ndarray in ``[0, 1]``, clipped.

    Clipping only moves a value towards the image range, so it never makes an error larger.
    """
    import numpy as np

    check_scale(scale)
    arr = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    arr = arr.astype(np.float32, copy=False)
    if _OFFSET[scale]:
        arr = arr + np.float32(_OFFSET[scale])
    return np.clip(arr, 0.0, 1.0)


def to_uint8(x, scale: str = "unit"):
    """Model-range values (tensor or ndarray) as displayable uint8; uint8 input is returned as is."""
    import numpy as np

    if getattr(x, "dtype", None) is not None and str(x.dtype) in ("uint8", "torch.uint8"):
        return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)
    return (to_unit(x, scale) * 255.0 + 0.5).astype(np.uint8)
