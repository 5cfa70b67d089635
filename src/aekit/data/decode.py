"""Decode one image file into uint8 ``(C, H, W)`` pixels of a set's size and channel count.

Pillow does the reading; this module decides what a pixel means whatever the
file's mode:

- transparency (``RGBA``, ``LA``, ``PA``, palette or grey with a transparent
  colour) is composited onto a plain background, white or black, so a
  transparent pixel does not become whatever colour the file stored under it;
  with 4 channels (``color_mode="rgba"``) the composited RGB is kept and the
  alpha follows as a fourth channel (255 for an image without transparency);
- 16-bit, 32-bit and float greys (``I;16``, ``I``, ``F``) are scaled to
  0..255, not clipped as Pillow's own conversion does: 16-bit and ``I`` values
  in 0..65535 by 255/65535, ``F`` values in [0, 1] by 255, anything else by its
  own minimum and maximum;
- palette, ``1``, ``CMYK``, ``YCbCr`` and the rest go through Pillow's
  conversion to ``L`` or ``RGB`` (ITU-R 601-2 luma for grey);
- JPEG, TIFF and WebP photos are turned upright by their EXIF orientation.

Before any pixel is decoded the header's width times height is checked against
:data:`aekit.limits.IMAGE_PIXELS`: a file of a hundred bytes can declare
13000x13000 pixels. Deep greys are scaled a block of rows at a time, so no
float64 copy of a whole large image is ever made.

Geometry (``resize``): ``"crop"`` scales so the image covers the target and
cuts the centre; ``"stretch"`` scales each axis on its own; ``"pad"`` fits the
image inside and fills the rest with the background. All resampling is
Pillow's antialiased bicubic.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from aekit import limits
from aekit.config import RESIZE_MODES  # noqa: F401 - the names the config allows; re-exported
from aekit.data import png
from aekit.errors import AekitError, DataError

BACKGROUNDS = {"white": 255, "black": 0}
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "RGBA", "RGBa", "PA"})
_ORIENTATION = 0x0112  # the EXIF tag
_EXIF_FORMATS = frozenset({"JPEG", "MPO", "TIFF", "WEBP"})  # where EXIF sits in the header, cheap to read
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # orientations that rotate by 90 degrees
_BLOCK_PIXELS = 1 << 20  # deep greys are scaled this many pixels (8 MB of float64) at a time


@dataclass(frozen=True)
class Decoding:
    """How every image of one set is decoded.

    Parameters
    ----------
    size : (width, height)
    channels : 1, 3 or 4 (RGB composited onto the background, then alpha)
    resize : one of :data:`RESIZE_MODES`
    background : 0..255, the grey level transparency and padding become
    """

    size: tuple[int, int]
    channels: int
    resize: str = "crop"
    background: int = 255


Header = tuple[int, int, bool]  # (width, height, is_colour), width and height upright


def probe(path: str) -> Header:
    """Read only the header; too many pixels (see :func:`check_pixels`) is a :class:`DataError`."""
    with _open(path) as im:
        check_pixels(*im.size)
        return _header(im, _orientation(im))


def check_pixels(width: int, height: int) -> None:
    """Refuse an image whose header declares more pixels than :data:`aekit.limits.IMAGE_PIXELS`."""
    too_many = limits.IMAGE_PIXELS.exceeded(width * height)
    if too_many:
        raise DataError(f"{width}x{height} is {too_many}")


def decode(path: str, decoding: Decoding) -> tuple[np.ndarray, Header]:
    """Decode ``path`` into ``(C, H, W)`` uint8, ``(C, H, W) = (channels, *reversed(size))``; and its header."""
    plain = png.open_plain(path) if path[-4:].lower() == ".png" else None
    with plain or _open(path) as im:
        check_pixels(*im.size)
        orientation = _orientation(im)
        header = _header(im, orientation)
        if im.format == "JPEG":
            _draft(im, header, orientation, decoding)
        if orientation != 1:
            im = ImageOps.exif_transpose(im)
        im = _to_channels(im, decoding.channels, decoding.background)
        im = _fit(im, decoding)
        a = np.asarray(im)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), header  # (H, W) or (H, W, C) -> (C, H, W)


def failure_reason(path: str, e: BaseException) -> str:
    """A few words on why ``path`` could not be decoded, for the skipped-files list."""
    if isinstance(e, AekitError):  # aekit's own words: too many pixels, or a limit set wrongly
        return str(e)
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "file disappeared"
    if isinstance(e, UnidentifiedImageError):
        try:
            empty = os.path.getsize(path) == 0
        except OSError:
            empty = False
        return "empty file" if empty else "not an image Pillow can read"
    if isinstance(e, Image.DecompressionBombError):
        return "too many pixels (Pillow's decompression-bomb limit)"
    if "truncated" in str(e).lower():
        return "truncated file"
    return f"{type(e).__name__}: {e}"


def _open(path: str) -> Image.Image:
    """``Image.open`` without Pillow's warning above 89 megapixels: :func:`check_pixels` decides.

    Pillow's own error, at twice that, still stands above a raised limit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _header(im: Image.Image, orientation: int) -> Header:
    w, h = im.size
    if orientation in _SWAPS_AXES:
        w, h = h, w
    return w, h, im.mode not in GREY_MODES


def _orientation(im: Image.Image) -> int:
    if im.format not in _EXIF_FORMATS:
        return 1
    return int(im.getexif().get(_ORIENTATION, 1))


def _draft(im: Image.Image, header: Header, orientation: int, decoding: Decoding) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale (and grey) when that still covers the target."""
    need = _covering_size(header[:2], decoding)
    if orientation in _SWAPS_AXES:
        need = need[::-1]
    grey = decoding.channels == 1 and im.mode != "L"
    if grey or (2 * need[0] <= im.size[0] and 2 * need[1] <= im.size[1]):  # else draft changes nothing
        im.draft("L" if grey else None, need)


def _covering_size(size: tuple[int, int], decoding: Decoding) -> tuple[int, int]:
    """The size the image is scaled to before the crop or pad."""
    (w, h), (tw, th) = size, decoding.size
    if decoding.resize == "stretch":
        return tw, th
    s = max(tw / w, th / h) if decoding.resize == "crop" else min(tw / w, th / h)
    return max(1, math.ceil(w * s)), max(1, math.ceil(h * s))


def _to_channels(im: Image.Image, channels: int, background: int) -> Image.Image:
    mode = im.mode  # read once: a property, and this runs for every image
    alpha = None
    if mode in ("I", "F") or mode.startswith("I;16"):
        im = _deep_to_grey(im)
    elif mode in _ALPHA_MODES or "transparency" in im.info:
        if channels == 4:
            alpha = im.convert("RGBA").getchannel("A")
        im = _flatten(im, background)
    if channels == 4:
        # RGB is the composited image, so a transparent pixel's colour is the background, not whatever
        # the file stored under it; the mask rides along as a fourth channel (opaque when there is none)
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        rgb.putalpha(alpha if alpha is not None else 255)
        return rgb
    target = "L" if channels == 1 else "RGB"
    return im if im.mode == target else im.convert(target)


def _deep_to_grey(im: Image.Image) -> Image.Image:
    """16/32-bit or float grey -> ``L``, scaled (see the module docstring), never clipped.

    Done a block of rows at a time: float64 keeps the arithmetic exact for 32-bit
    values, and a block bounds what it costs.
    """
    a = np.asarray(im)  # (H, W) uint16, int32 or float32
    rows = max(1, _BLOCK_PIXELS // max(a.shape[1], 1))
    blocks = [slice(i, i + rows) for i in range(0, a.shape[0], rows)]
    lo, hi = 0.0, 0.0
    if a.size:
        ranges = [(float(b.min()), float(b.max())) for b in (np.nan_to_num(a[s].astype(np.float64)) for s in blocks)]
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if im.mode == "F" and lo >= 0 and hi <= 1:
        lo, hi = 0.0, 1.0
    elif im.mode != "F" and lo >= 0 and hi <= 65535:
        lo, hi = 0.0, 65535.0
    out = np.empty(a.shape, np.uint8)
    for s in blocks:
        scaled = np.rint((np.nan_to_num(a[s].astype(np.float64)) - lo) * (255 / max(hi - lo, 1e-12)))
        out[s] = scaled.clip(0, 255)
    return Image.fromarray(out)


def _flatten(im: Image.Image, background: int) -> Image.Image:
    """Composite onto an opaque background of grey level ``background``."""
    grey = im.mode in GREY_MODES
    with_alpha = im.convert("LA" if grey else "RGBA")
    base = Image.new("L" if grey else "RGB", im.size, background if grey else (background,) * 3)
    base.paste(with_alpha.convert(base.mode), mask=with_alpha.getchannel("A"))
    return base


def _fit(im: Image.Image, decoding: Decoding) -> Image.Image:
    if im.size == decoding.size:
        return im
    if decoding.resize == "stretch":
        return im.resize(decoding.size, Image.Resampling.BICUBIC)
    if decoding.resize == "crop":
        return ImageOps.fit(im, decoding.size, Image.Resampling.BICUBIC)
    fill = decoding.background if decoding.channels == 1 else (decoding.background,) * 3
    if decoding.channels == 4:
        fill = (*fill, 0)  # padding is transparent
    return ImageOps.pad(im, decoding.size, Image.Resampling.BICUBIC, color=fill)
