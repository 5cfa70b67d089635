"""A faster way into Pillow for the plainest PNG files.

``Image.open`` parses a PNG's chunks in Python before its C decoder runs; on
small images that parsing costs as much as the decoding itself. For the
common case, a non-interlaced 8-bit grey, grey+alpha, RGB or RGBA file with
no palette and no transparent colour, the chunks are walked here with
``struct`` and the image data handed straight to Pillow's own PNG ("zip")
decoder, which yields the same pixels. Anything else, and any file this walk
finds odd, returns ``None`` so the caller takes the ordinary path (which
also gives Pillow's own error for a broken file).
"""

from __future__ import annotations

import struct

from PIL import Image

from aekit import limits

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # PNG colour type -> Pillow mode (and raw mode), at 8 bits
_SPECIAL = {b"PLTE", b"tRNS"}  # chunks that change what the pixels mean: leave those files to Pillow


def open_plain(path: str) -> Image.Image | None:
    """The image at ``path`` decoded, when it is a plain PNG (see the module docstring), else ``None``."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(SIGNATURE) or len(data) < 33:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if data[12:16] != b"IHDR" or depth != 8 or interlace or colour not in _MODES:
        return None
    if not 0 < width * height <= min(Image.MAX_IMAGE_PIXELS or width * height, limits.IMAGE_PIXELS.value()):
        return None  # the ordinary path refuses too many pixels, by name
    idat = _image_data(data)
    if idat is None:
        return None
    mode = _MODES[colour]
    try:
        return Image.frombytes(mode, (width, height), idat, "zip", mode)
    except (ValueError, OSError):  # short or corrupt data: the ordinary path names the problem
        return None


def _image_data(data: bytes) -> bytes | None:
    """The IDAT chunks joined, or ``None`` when a special chunk is present or the file ends early."""
    pos, parts = 8, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind in _SPECIAL:
            return None
        if kind == b"IDAT":
            parts.append(data[pos + 8:pos + 8 + length])
        elif kind == b"IEND":
            return b"".join(parts)
        pos += 12 + length  # length, type, data, CRC
    return None
