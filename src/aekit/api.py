"""The Python API: ``aekit.train(...)`` and ``aekit.load_run(path)``.

This is where data, model, trainer and callbacks are wired into a run directory;
the CLI's ``train`` command is a thin layer over :func:`train`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from aekit.config import RunConfig, load_config_file, resolve
from aekit.errors import ConfigError, RunError
from aekit.presets import DEFAULT_PRESET, get_preset


@dataclass
class Run:
    """A trained model with its run directory, config and metrics.

    ``run.model.encode(x)`` / ``run.model.decode(z)`` work on float tensors in the
    model's pixel scale; :meth:`encode` / :meth:`reconstruct` take uint8 images.
    """

    path: Path
    config: RunConfig
    model: Any
    metrics: list[dict] = field(default_factory=list)
    data_origin: str = ""

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _scaled(self, images) -> Any:
        import torch

        from aekit.data import scale_images

        x = torch.as_tensor(np.asarray(images))
        if x.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
            x = x[:, None]
        if x.dtype == torch.uint8:
            return scale_images(x.to(self.device), self.config.data.scale)
        return x.to(self.device, torch.float32)

    def encode(self, images, batch_size: int = 1000) -> np.ndarray:
        """Codes ``(N, latent_dim)`` for uint8 images ``(N, C, H, W)``."""
        return self._map(images, batch_size, lambda x: self.model.encode(x))

    def reconstruct(self, images, batch_size: int = 1000) -> np.ndarray:
        """Reconstructions ``(N, C, H, W)`` in the model's pixel scale."""
        return self._map(images, batch_size, lambda x: self.model(x).recon_x)

    def _map(self, images, batch_size, fn) -> np.ndarray:
        import torch

        self.model.eval()
        outs = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                outs.append(fn(self._scaled(images[i:i + batch_size])).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0,))

    def load_data(self, log: Callable[[str], None] | None = None):
        from aekit.data import load_dataset

        return load_dataset(self.config.data.dataset, self.config.data.data_dir, log=log)


def build_config(preset: str | None = None, config: str | Path | dict | RunConfig | None = None,
                 **overrides) -> RunConfig:
    """Resolve preset < config file < overrides into a validated :class:`RunConfig`."""
    if preset is not None and config is not None:
        raise ConfigError("preset: give a preset or a config file, not both")
    if isinstance(config, RunConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = config
    elif config is not None:
        base = load_config_file(config)
    else:
        base = get_preset(preset or DEFAULT_PRESET)
    return resolve(base, overrides)


def _new_run_dir(out: str | Path | None, config: RunConfig) -> Path:
    if out is None:
        stem = Path("runs") / f"{config.preset or config.model.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, k = stem, 1
        while path.exists():
            k += 1
            path = stem.with_name(f"{stem.name}-{k}")
    else:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path}: exists and is not a directory")
        if path.is_dir() and (path / "config.json").exists():
            raise ConfigError(f"--out {path}: already holds a run; choose another directory or remove it")
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(preset: str | None = None, *, config: str | Path | dict | RunConfig | None = None,
          out: str | Path | None = None, callbacks: Sequence = (), progress: bool | None = None,
          verbose: bool = True, plots: bool = True, log: Callable[[str], None] | None = None,
          **overrides) -> Run:
    """Train a preset (default ``classic-3d-tanh``) with field overrides; returns the :class:`Run`.

    With ``plots`` (the default) the run also gets its pictures: reconstruction snapshots
    during training, then ``recon.gif``, ``latent.png``/``latent.html``, ``manifold.png``
    (2-D codes), ``loss.png`` and ``report.html``. A failure while drawing is one warning
    line: the trained run is already saved.

    >>> run = aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=1, out="runs/demo")  # doctest: +SKIP
    >>> run.model.encode(x).shape  # doctest: +SKIP
    torch.Size([N, 2])
    """
    import torch

    from aekit.data import load_dataset
    from aekit.models import create_model
    from aekit.training import Checkpointer, EpochPrinter, MetricsLogger, ProgressBar, Trainer, resolve_device
    from aekit.training.checkpoint import atomic_write_text
    from aekit.visualization.snapshots import ReconSnapshots, pick_snapshot_indices

    log = log or (lambda msg: print(msg, file=sys.stderr))
    cfg = build_config(preset, config, **overrides)
    device = resolve_device(cfg.train.device)
    data = load_dataset(cfg.data.dataset, cfg.data.data_dir, progress=progress, log=log)
    if cfg.data.dataset == "mnist" and data.name != "mnist":
        cfg.data.dataset = data.name  # the offline fallback: record what was really used, so re-runs match

    run_dir = _new_run_dir(out, cfg)
    atomic_write_text(run_dir / "config.json", cfg.to_json())

    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model.model, data.image_shape, **_model_fields(cfg)).to(device)
    x_train = torch.from_numpy(data.x_train).to(device)  # stays uint8 until a batch is sliced
    x_test = torch.from_numpy(data.x_test).to(device)

    state = {"config": cfg.to_dict(), "data_origin": data.origin}
    cbs = [ProgressBar(progress), MetricsLogger(run_dir / "metrics.jsonl"), Checkpointer(run_dir, state)]
    if plots:
        snap_idx = torch.from_numpy(pick_snapshot_indices(data.y_test, cfg.train.snapshot_images)).to(device)
        cbs.append(ReconSnapshots(x_test[snap_idx], run_dir / "recon", cfg.data.scale))
    if verbose:
        log(f"training {cfg.model.model} ({cfg.preset or 'custom'}) on {data.name} "
            f"[{len(data.x_train)} train / {len(data.x_test)} test] on {device} -> {run_dir}")
        cbs.insert(1, EpochPrinter(print))
    trainer = Trainer(model, cfg.train, cfg.data.scale, [*cbs, *callbacks])
    history = trainer.fit(x_train, x_test)
    run = Run(path=run_dir, config=cfg, model=model.eval(), metrics=history, data_origin=data.origin)
    if plots and history:
        _draw_end_of_training(run, data, log)
    return run


def _draw_end_of_training(run: Run, data, log: Callable[[str], None]) -> None:
    from aekit.visualization.pictures import draw_pictures

    try:
        draw_pictures(run, data, report=True)
    except Exception as exc:  # noqa: BLE001 - drawing must never lose a trained run
        log(f"warning: could not draw the run's pictures ({type(exc).__name__}: {exc}); the trained run "
            f"is saved in {run.path}; try again with: aekit report {run.path}")


def _model_fields(cfg: RunConfig) -> dict[str, Any]:
    fields = cfg.to_dict()["model"]
    fields.pop("model")
    return fields


def load_run(path: str | Path, which: str = "checkpoint", device: str = "cpu") -> Run:
    """Reload a run directory: ``which`` is ``checkpoint`` (the last epoch) or ``best``."""
    from aekit.models import create_model
    from aekit.training.checkpoint import load_weights, read_checkpoint_meta

    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory")
    if which not in ("checkpoint", "best"):
        raise ConfigError(f"which: {which!r} is not allowed; choose checkpoint or best")
    meta = read_checkpoint_meta(path / which)
    cfg = build_config(config=meta["config"])
    model = create_model(cfg.model.model, tuple(meta["input_shape"]), **_model_fields(cfg))
    load_weights(path / which, model, device)
    model.to(device).eval()
    metrics = []
    metrics_path = path / "metrics.jsonl"
    if metrics_path.exists():
        metrics = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    return Run(path=path, config=cfg, model=model, metrics=metrics, data_origin=meta.get("data_origin", ""))
