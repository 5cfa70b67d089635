"""``recon.gif``: the reconstruction snapshots of a run as one labelled animation (Pillow only)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from aekit.errors import RunError
from aekit.io import atomic_write, read_json
from aekit.visualization.images import with_caption
from aekit.visualization.snapshots import FRAMES_INDEX


def read_frames(recon_dir: str | Path) -> list[dict]:
    """The snapshot frames in training order: ``{"file", "epoch", "step"}`` each.

    Reads ``recon/frames.json``; a folder without one (written by an older aekit)
    gives its ``epoch_NNN.png`` files in order, with no step.
    """
    recon_dir = Path(recon_dir)
    index = recon_dir / FRAMES_INDEX
    if index.exists():
        frames = read_json(index, "snapshot index")
    else:
        frames = [{"file": p.name, "epoch": int(m.group(1)), "step": None}
                  for p in sorted(recon_dir.glob("epoch_*.png")) if (m := re.fullmatch(r"epoch_(\d+)\.png", p.name))]
    if not frames:
        raise RunError(f"{recon_dir}: no reconstruction snapshots (was the run trained with --no-plots?)")
    return frames


def frame_label(epoch: float, step: int | None) -> str:
    """``epoch 0.25 (step 16)``; whole epochs without decimals."""
    text = f"epoch {epoch:g}" if float(epoch).is_integer() else f"epoch {epoch:.2f}"
    return text if step is None else f"{text} (step {step})"


def write_recon_gif(recon_dir: str | Path, path: str | Path, frame_ms: int = 400, last_ms: int = 2500) -> Path:
    """Write the frames of ``recon_dir`` as a looping GIF with the epoch and step on each.

    Returns ``path``. Pillow stores only the part of each frame that changed, and the
    originals on top never change, so the GIF stays small (``benchmarks/plots.py`` measures it).
    Colour snapshots stay in colour (each frame gets its own 256-colour palette).
    """
    from PIL import Image

    recon_dir = Path(recon_dir)
    frames = read_frames(recon_dir)
    images = []
    for frame in frames:
        try:
            with Image.open(recon_dir / frame["file"]) as image:  # grey stays grey: a smaller GIF
                array = np.asarray(image.convert("L" if image.mode in ("L", "LA", "1") else "RGB"))
        except OSError as exc:
            raise RunError(f"{recon_dir / frame['file']}: cannot read snapshot ({exc})") from None
        images.append(Image.fromarray(with_caption(array, frame_label(frame["epoch"], frame.get("step")))))
    durations = [frame_ms] * (len(images) - 1) + [last_ms]
    atomic_write(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                  duration=durations, loop=0, optimize=True))
    return Path(path)
