"""Checkpoints: weights in safetensors, everything else in JSON; written atomically.

``<stem>.safetensors`` holds the model's state dict, ``<stem>.json`` the model name,
input shape, resolved run config and training state. Loading never unpickles.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aekit.errors import RunError

FORMAT = "aekit-checkpoint/1"


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_checkpoint(stem: str | Path, model, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    stem = Path(stem)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "model": model.name, "input_shape": list(model.input_shape), **state}
    atomic_write(stem.with_suffix(".safetensors"), lambda tmp: save_file(tensors, tmp))
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")


def read_checkpoint_meta(stem: str | Path) -> dict[str, Any]:
    path = Path(stem).with_suffix(".json")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: no checkpoint here (was the run trained to the end of an epoch?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: unreadable checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise RunError(f"{path}: not an aekit checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def load_weights(stem: str | Path, model, device="cpu") -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(stem).with_suffix(".safetensors")
    try:
        tensors = load_file(str(path), device=str(device))
    except FileNotFoundError:
        raise RunError(f"{path}: checkpoint weights missing") from None
    except SafetensorError as exc:
        raise RunError(f"{path}: corrupt checkpoint weights ({exc})") from None
    expected = model.state_dict()
    wrong = sorted(set(expected) ^ set(tensors)) + sorted(
        k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if wrong:
        raise RunError(f"{path}: weights do not fit the model (differing tensors: {', '.join(wrong[:5])})")
    model.load_state_dict(tensors)
