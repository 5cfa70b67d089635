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

from aekit.errors import ConfigError, InputError

SCALES = ("unit", "centered")
_OFFSET = {"unit": 0.0, "centered": 0.5}  # model value + offset = value in [0, 1]
_TOLERANCE = 1e-6  # float pixels may stray this far outside their range (rounding)


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
    return (np.nan_to_num(to_unit(x, scale)) * 255.0 + 0.5).astype(np.uint8)  # a NaN pixel shows black


def model_input(images, input_shape: tuple[int, int, int], scale: str = "unit"):
    """Check images handed to the API and return them as ``(N, C, H, W)``: uint8, or float32 in ``scale``.

    Accepted: uint8 (or integers in 0..255) and floats in the model's range (``[0, 1]``
    for ``unit``, ``[-0.5, 0.5]`` for ``centered``), shaped ``(N, C, H, W)``,
    ``(N, H, W, C)``, ``(N, H, W)`` (one channel) or flat ``(N, C*H*W)``; numpy arrays,
    tensors or nested lists. Anything else is an :class:`~aekit.errors.InputError`
    that says what was expected.
    """
    import numpy as np

    check_scale(scale)
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    c, h, w = input_shape
    expected = f"(N, {c}, {h}, {w}), (N, {h}, {w}, {c})" + (f", (N, {h}, {w})" if c == 1 else "") + \
        f" or (N, {c * h * w})"
    if x.dtype == object or x.dtype.kind not in "uif":
        raise InputError(f"images: expected uint8 pixels or floats, got dtype {x.dtype}")
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"images: no images given (shape {x.shape}); expected {expected}")
    if x.ndim == 2 and x.shape[1] == c * h * w:
        x = x.reshape(len(x), c, h, w)
    elif x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1:] == (c, h, w):
        pass
    elif x.ndim == 4 and x.shape[1:] == (h, w, c):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise InputError(f"images: shape {x.shape} does not fit the model, which takes {c}x{h}x{w} images; "
                         f"expected {expected}")
    if x.dtype.kind in "ui":
        if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255):
            raise InputError(f"images: integer pixels must be in 0..255, got {x.min()}..{x.max()}")
        return np.ascontiguousarray(x, dtype=np.uint8)
    lo, hi = 0.0 - _OFFSET[scale], 1.0 - _OFFSET[scale]
    if not np.isfinite(x).all():
        raise InputError("images: the pixels include NaN or infinity")
    if x.min() < lo - _TOLERANCE or x.max() > hi + _TOLERANCE:
        hint = "; pixels in 0..255: pass them as uint8" if x.max() > 1.5 else ""
        raise InputError(f"images: float pixels must be in the run's range [{lo:g}, {hi:g}] ({scale}), "
                         f"got {x.min():.4g}..{x.max():.4g}{hint}")
    return np.ascontiguousarray(x, dtype=np.float32)
