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


def augment(x: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` with each image flipped left-right (probability 1/2), or turned by one of the square's
    symmetries, and/or shifted.

    ``mode`` is ``none``, ``flips``, ``shifts``, ``flips+shifts``, ``dihedral`` or ``dihedral+shifts``.
    ``dihedral`` is for images with no up or down (the sky, cells under a microscope, textures, the
    ground from above): each image is flipped left-right, flipped upside down and transposed, each
    with probability 1/2, which gives each of the 8 rotations and reflections of a square with
    probability 1/8; a non-square image is not transposed (its 4 symmetries). A shift moves the image
    by up to :func:`max_shift` pixels each way, independently per axis; the edge rows and
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
        sy, sx = max_shift(h), max_shift(w)
        dy = torch.randint(-sy, sy + 1, (b,), generator=gen).to(x.device)  # (B,)
        dx = torch.randint(-sx, sx + 1, (b,), generator=gen).to(x.device)
        rows = (torch.arange(h, device=x.device)[None, :] - dy[:, None]).clamp_(0, h - 1)  # (B, H)
        cols = (torch.arange(w, device=x.device)[None, :] - dx[:, None]).clamp_(0, w - 1)  # (B, W)
        batch = torch.arange(b, device=x.device)[:, None, None]
        x = x[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()  # (B,H,W,C)->(B,C,H,W)
    return x
