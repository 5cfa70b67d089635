"""uint8 pixels to the float range a model trains on.

Kept apart from loading so images travel to the device as uint8 (a quarter of
the bytes of float32) and are scaled there.
"""

from __future__ import annotations

from aekit.errors import ConfigError

SCALES = ("unit", "centered")  # [0, 1] and [-0.5, 0.5]


def scale_images(x_uint8, scale: str):
    """Scale uint8 pixels to float32.

    Parameters
    ----------
    x_uint8 : torch.Tensor (or ndarray) of dtype uint8, any shape
    scale : {"unit", "centered"}
        ``"unit"``: ``x / 255`` in ``[0, 1]``; ``"centered"``: ``x / 255 - 0.5``
        in ``[-0.5, 0.5]`` (the range of the Keras seed).

    Returns
    -------
    torch.Tensor, float32, same shape and device.
    """
    import torch  # here, not at the top: importing aekit.data must stay cheap

    if scale not in SCALES:
        raise ConfigError(f"data.scale: unknown value {scale!r}; allowed: {', '.join(SCALES)}")
    x = torch.as_tensor(x_uint8)
    if x.dtype != torch.uint8:
        raise TypeError(f"scale_images expects uint8 pixels, got {x.dtype}")
    x = x.to(torch.float32).div_(255.0)
    if scale == "centered":
        x = x.sub_(0.5)
    return x
