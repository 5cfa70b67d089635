"""Image grids as arrays and PNG files (Pillow only, no matplotlib: cheap enough for training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aekit.io import atomic_write
from aekit.pixels import to_uint8

CHECKER = (255, 214)  # the light and dark grey of the checkerboard that transparency is shown over
CHECKER_SQUARE = 4  # its squares' side in displayed pixels


def composited(images: np.ndarray, square: int = CHECKER_SQUARE) -> np.ndarray:
    """uint8 ``(N, 4, H, W)`` RGBA as ``(N, 3, H, W)`` RGB over a light checkerboard; other channel counts as given.

    The checkerboard shows what alpha a model gives back: a mask learnt wrong reads
    as a chequered hole or a solid fringe, where compositing onto one grey would hide it.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 4:
        return images
    h, w = images.shape[2:]
    squares = (np.arange(h)[:, None] // square + np.arange(w)[None, :] // square) % 2  # (H, W)
    checker = np.where(squares == 0, CHECKER[0], CHECKER[1]).astype(np.float32)
    alpha = images[:, 3:].astype(np.float32) / 255.0  # (N, 1, H, W)
    rgb = images[:, :3].astype(np.float32) * alpha + checker * (1.0 - alpha)  # (N, 3, H, W)
    return (rgb + 0.5).astype(np.uint8)


def image_grid(images: np.ndarray, rows: int, cols: int, pad: int = 2, upscale: int = 1,
               background: int = 255) -> np.ndarray:
    """Tile the first ``rows*cols`` uint8 images ``(N, C, H, W)`` row by row.

    Returns ``(rows*(H+pad)+pad, cols*(W+pad)+pad)`` for one channel, with a
    trailing channel axis of 3 for colour. Missing images leave blank cells.
    Four channels are RGBA, shown over a checkerboard (:func:`composited`).
    """
    images = np.asarray(images)
    if images.ndim == 3:  # (N, H, W)
        images = images[:, None]
    n, c, h, w = images.shape
    if upscale > 1:
        images = images.repeat(upscale, axis=2).repeat(upscale, axis=3)
        h, w = h * upscale, w * upscale
    images = composited(images)  # after the upscale: the squares keep their size on screen
    c = images.shape[1]
    out = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), background, dtype=np.uint8)
    for k in range(min(n, rows * cols)):
        r, q = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[:, y:y + h, x:x + w] = images[k]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def pair_grid(originals, reconstructions, scale: str = "unit", pad: int = 2, upscale: int = 1) -> np.ndarray:
    """Originals on the top row over their reconstructions on the bottom row, as one uint8 mosaic.

    Both are ``(N, C, H, W)``, uint8 or floats in the model's range ``scale``.
    """
    pair = np.concatenate([to_uint8(originals, scale), to_uint8(reconstructions, scale)])
    return image_grid(pair, rows=2, cols=len(originals), pad=pad, upscale=upscale)


def captioned_pairs(originals, reconstructions, captions: list[str], scale: str = "unit", pad: int = 2,
                    upscale: int = 1, size: int = 13) -> np.ndarray:
    """One row per image: the original, its reconstruction, then its caption (lines of text) on the right.

    ``originals`` and ``reconstructions`` are ``(N, C, H, W)``, uint8 or floats in the model's range
    ``scale``; ``captions`` N strings. Returns a uint8 ``(H', W')`` or ``(H', W', 3)`` mosaic whose image
    cells are placed as :func:`image_grid` places them.
    """
    from PIL import Image, ImageDraw, ImageFont

    n, h = len(originals), originals.shape[2] * upscale
    pairs = np.stack([to_uint8(originals, scale), to_uint8(reconstructions, scale)], axis=1)  # (N, 2, C, H, W)
    grid = image_grid(pairs.reshape(2 * n, *pairs.shape[2:]), rows=n, cols=2, pad=pad, upscale=upscale)
    font = ImageFont.load_default(size=size)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    text_width = max(measure.multiline_textbbox((0, 0), c, font=font)[2] for c in captions) if n else 0
    canvas = Image.new("RGB" if grid.ndim == 3 else "L", (grid.shape[1] + text_width + 3 * pad + 4, grid.shape[0]),
                       "white")
    canvas.paste(Image.fromarray(grid), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, caption in enumerate(captions):
        draw.multiline_text((grid.shape[1] + pad + 4, pad + k * (h + pad) + h // 2), caption, fill="black",
                            font=font, anchor="lm")
    return np.asarray(canvas)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` array as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    img = Image.fromarray(np.ascontiguousarray(array))
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
    return path


def with_caption(array: np.ndarray, text: str, height: int = 22, size: int = 14) -> np.ndarray:
    """Put ``text`` in a white strip above a uint8 ``(H, W)`` grey or ``(H, W, 3)`` colour image
    (Pillow's default font).
    """
    from PIL import Image, ImageDraw, ImageFont

    array = np.asarray(array)
    strip = Image.new("RGB" if array.ndim == 3 else "L", (array.shape[1], height), "white")
    font = ImageFont.load_default(size=size)  # a scalable font since Pillow 10.1
    ImageDraw.Draw(strip).text((4, height // 2), text, fill="black", font=font, anchor="lm")
    return np.concatenate([np.asarray(strip), array])


def save_image_grid(images, path: str | Path, scale: str = "unit", cols: int | None = None,
                    upscale: int = 2) -> Path:
    """Tile model-space (or uint8) images ``(N, C, H, W)`` in rows of ``cols`` (square by
    default) and write them as a PNG.
    """
    import math

    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    return save_png(image_grid(to_uint8(images, scale), rows, cols, upscale=upscale), path)
