"""Random changes to training images: flips, the square's eight symmetries, small shifts, from the run's own generator.

The draws come from a CPU ``torch.Generator`` that belongs to the trainer and is saved in
its checkpoint, so a resumed run draws what a run never stopped would have drawn. They
work on the stored uint8 batch on its device, before scaling, and make no per-image
Python objects.
"""

from __future__ import annotations

import torch

SHIFT_SHARE = 16  # the largest shift is 1/16 of a side (2 px at 32, 4 px at 64): the subject stays in view


def max_shift(size: int) -> int:
    return max(1, size // SHIFT_SHARE)


def augment(x: torch.Tensor, mode: str, gen: torch.Generator, most: int | None = None) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` with each image flipped left-right (probability 1/2), or turned by one of the square's
    symmetries, and/or shifted.

    ``mode`` is ``none``, ``flips``, ``shifts``, ``flips+shifts``, ``dihedral`` or ``dihedral+shifts``.
    ``dihedral`` is for images with no up or down (the sky, cells under a microscope, textures, the
    ground from above): each image is flipped left-right, flipped upside down and transposed, each
    with probability 1/2, which gives each of the 8 rotations and reflections of a square with
    probability 1/8; a non-square image is not transposed (its 4 symmetries). A shift moves the image
    by up to ``most`` pixels (unset: :func:`max_shift`) each way, independently per axis; the edge rows and
    columns are repeated into the space it leaves. Draws are made for each change in
    ``mode`` whatever the outcome, so their number depends only on the batch size.
    """
    if mode == "none" or len(x) == 0:
        return x
    b, _, h, w = x.shape
    if "flips" in mode:
        flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)  # (B,)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if "dihedral" in mode:
        turn = (torch.rand(b, 3, generator=gen) < 0.5).to(x.device)[:, :, None, None, None]  # (B, 3, 1, 1, 1)
        x = torch.where(turn[:, 0], x.flip(-1), x)
        x = torch.where(turn[:, 1], x.flip(-2), x)
        if h == w:
            x = torch.where(turn[:, 2], x.transpose(-1, -2), x)
    if "shifts" in mode:
        sy, sx = (max_shift(h), max_shift(w)) if most is None else (min(most, h - 1), min(most, w - 1))
        dy = torch.randint(-sy, sy + 1, (b,), generator=gen)  # (B,)
        dx = torch.randint(-sx, sx + 1, (b,), generator=gen)
        x = shift(x, dy, dx, sy, sx)
    return x


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, sy: int, sx: int) -> torch.Tensor:
    """Image ``i`` of ``x`` ``(B, C, H, W)`` moved down by ``dy[i]`` and right by ``dx[i]`` pixels (at most ``sy``,
    ``sx``), its edge rows and columns repeated into the space left: ``out[i, :, r, c] = x[i, :, clamp(r - dy[i]),
    clamp(c - dx[i])]``.

    The images are padded once by repeating their edges, and each of the ``(2 sy + 1)(2 sx + 1)`` shifts is one
    slice of the padded batch for the images drawn with it: copies of whole rows, where indexing every pixel
    costs several times as much at the auto plan's batches of 2,048.
    """
    b, c, h, w = x.shape
    padded = x.new_empty(b, c, h + 2 * sy, w + 2 * sx)  # edges repeated: slice copies (index_select is slow here)
    padded[:, :, sy:sy + h, sx:sx + w] = x
    padded[:, :, :sy, sx:sx + w] = x[:, :, :1]
    padded[:, :, sy + h:, sx:sx + w] = x[:, :, -1:]
    padded[:, :, :, :sx] = padded[:, :, :, sx:sx + 1]
    padded[:, :, :, sx + w:] = padded[:, :, :, sx + w - 1:sx + w]
    out = torch.empty_like(x)
    key = (dy + sy) * (2 * sx + 1) + (dx + sx)  # (B,): which shift
    order = torch.argsort(key, stable=True).to(x.device)
    counts = torch.bincount(key, minlength=(2 * sy + 1) * (2 * sx + 1)).tolist()
    start = 0
    for k, count in enumerate(counts):
        if count:
            idx = order[start:start + count]
            top, left = sy - (k // (2 * sx + 1) - sy), sx - (k % (2 * sx + 1) - sx)
            out[idx] = padded.index_select(0, idx)[:, :, top:top + h, left:left + w]
            start += count
    return out
