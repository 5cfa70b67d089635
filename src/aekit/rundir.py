"""The run directory: one object owns every file ``aekit train`` writes and the other commands read.

::

    runs/<name>/
      config.json              the resolved config (``aekit train --config`` re-runs it)
      metrics.jsonl            one JSON line per epoch
      checkpoint.safetensors   weights after the last epoch (+ checkpoint.json: config and state)
      best.safetensors         weights of the epoch with the lowest test loss (+ best.json)
      recon/, *.png, *.html    pictures (:mod:`aekit.visualization`)
      eval.json                from ``aekit eval``

:class:`RunDir` knows the paths and reads and writes these files: the API, the
evaluation, the report and the CLI all go through it. Reading JSON needs no torch;
only saving and loading weights imports it (through safetensors).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aekit import io
from aekit.errors import ConfigError, RunError

CHECKPOINT_FORMAT = "aekit-checkpoint/1"
WHICH = ("checkpoint", "best")  # the saved weights a command can pick


class RunDir:
    """A run directory at ``path``. Making the object touches no file.

    >>> rd = RunDir.open("runs/demo")  # doctest: +SKIP
    >>> rd.read_metrics()[-1]["test_loss"]  # doctest: +SKIP
    """

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    EVAL = "eval.json"
    REPORT = "report.html"
    RECON = "recon"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run directory; a missing one is a :class:`RunError`."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path}: no such run directory")
        return cls(path)

    @classmethod
    def create(cls, out: str | Path | None, name: str) -> "RunDir":
        """A new run directory: ``out``, or ``runs/<name>-<time>`` when ``out`` is ``None``.

        ``out`` may exist as an empty or non-run directory; one that holds a run is refused.
        """
        if out is None:
            stem = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
            path, k = stem, 1
            while path.exists():
                k += 1
                path = stem.with_name(f"{stem.name}-{k}")
        else:
            path = Path(out)
            if path.exists() and not path.is_dir():
                raise ConfigError(f"--out {path}: exists and is not a directory")
            if (path / cls.CONFIG).exists():
                raise ConfigError(f"--out {path}: already holds a run; choose another directory or remove it")
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def file(self, name: str) -> Path | None:
        """``path / name`` if that file exists, else ``None``."""
        path = self.path / name
        return path if path.is_file() else None

    # ----------------------------------------------------------------- config

    def write_config(self, config) -> Path:
        """Write a :class:`~aekit.config.RunConfig` as ``config.json``."""
        return io.atomic_write_text(self.path / self.CONFIG, config.to_json())

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict (the shape of ``RunConfig.to_dict()``, not validated)."""
        if not (self.path / self.CONFIG).exists():
            raise RunError(f"{self.path}: not a run directory (no {self.CONFIG})")
        return io.read_json_object(self.path / self.CONFIG, "run config")

    # ----------------------------------------------------------------- metrics

    def reset_metrics(self) -> None:
        (self.path / self.METRICS).write_text("")

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics as a JSON line (flushed on close, so a crash keeps it)."""
        with (self.path / self.METRICS).open("a") as f:
            f.write(json.dumps(row) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every epoch's metrics, in order; ``[]`` when there are none yet."""
        path = self.path / self.METRICS
        if not path.exists():
            return []
        try:
            text = path.read_text()
        except OSError as exc:
            raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RunError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
        return rows

    # ----------------------------------------------------------------- checkpoints

    def checkpoint(self, which: str = "checkpoint") -> Path:
        """The stem of the saved weights ``which`` (``checkpoint`` or ``best``): ``<stem>.safetensors``/``.json``."""
        if which not in WHICH:
            raise ConfigError(f"which: {which!r} is not allowed; choose {' or '.join(WHICH)}")
        return self.path / which

    def save_checkpoint(self, which: str, model, state: dict[str, Any]) -> None:
        """The model's weights (safetensors) and ``state`` with the model name and input shape (JSON)."""
        from safetensors.torch import save_file

        stem = self.checkpoint(which)
        tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        meta = {"format": CHECKPOINT_FORMAT, "model": model.name, "input_shape": list(model.input_shape), **state}
        io.atomic_write(stem.with_suffix(".safetensors"), lambda tmp: save_file(tensors, tmp))
        io.atomic_write_json(stem.with_suffix(".json"), meta)

    def read_checkpoint_meta(self, which: str = "checkpoint") -> dict[str, Any]:
        """What a checkpoint says of itself: format, model, input shape, config, epoch, metrics."""
        path = self.checkpoint(which).with_suffix(".json")
        if not path.exists():
            raise RunError(f"{path}: no checkpoint here (was the run trained to the end of an epoch?)")
        meta = io.read_json(path, "checkpoint")
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise RunError(f"{path}: not an aekit checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
        return meta

    def load_weights(self, which: str, model, device="cpu") -> None:
        """Load checkpoint ``which``'s weights into ``model``; they must fit it exactly."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.checkpoint(which).with_suffix(".safetensors")
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

    # ----------------------------------------------------------------- evaluation

    def write_eval(self, summary: dict, path: str | Path | None = None) -> Path:
        """Write an evaluation summary as ``eval.json`` (or to ``path``)."""
        from aekit.evaluation.suite import to_json

        return io.atomic_write_text(path or self.path / self.EVAL, to_json(summary))

    def read_eval(self) -> dict | None:
        """``eval.json`` as a summary dict, or ``None`` when the run has none."""
        from aekit.evaluation.suite import from_json

        path = self.path / self.EVAL
        if not path.exists():
            return None
        try:
            return from_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise RunError(f"{path}: unreadable evaluation ({exc})") from None

    # ----------------------------------------------------------------- summaries

    def summary(self) -> dict[str, Any]:
        """What ``aekit compare`` shows of a run: config, the last epoch's metrics, ``eval.json``."""
        config = self.read_config()
        metrics = self.read_metrics()
        last = metrics[-1] if metrics else {}
        model, data = config.get("model", {}), config.get("data", {})
        return {"run": str(self.path), "preset": config.get("preset"), "model": model.get("model"),
                "latent_dim": model.get("latent_dim"), "epochs": last.get("epoch"), "dataset": data.get("dataset"),
                "train_test_mse": last.get("test_mse"), "eval": self.read_eval()}
