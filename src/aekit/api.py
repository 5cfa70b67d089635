"""The Python API: :func:`train`, :func:`load_run`, :func:`evaluate` and the :class:`Run` they return.

This is where data, model, trainer and callbacks are wired into a run directory, and
where a saved run is read back and put to use. The CLI is a thin layer over it: it
parses flags, calls these functions and prints.

>>> run = aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=1, out="runs/demo")  # doctest: +SKIP
>>> codes = run.encode(run.load_data().x_test)  # doctest: +SKIP
>>> result = aekit.evaluate("runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aekit import io
from aekit.config import RunConfig
from aekit.errors import AekitError, ConfigError, DataError, Diverged, Interrupted, RunError
from aekit.io import Log
from aekit.resolve import build_config
from aekit.rundir import RunDir

SPLITS = ("test", "train", "all")


@dataclass
class Run:
    """A trained model with its run directory, config and metrics.

    ``run.model.encode(x)`` / ``run.model.decode(z)`` work on float tensors in the
    model's pixel range; :meth:`encode`, :meth:`reconstruct` and :meth:`decode` take
    and give numpy arrays, with images as uint8.
    """

    path: Path
    config: RunConfig
    model: Any
    metrics: list[dict] = field(default_factory=list)
    data_origin: str = ""

    @property
    def dir(self) -> RunDir:
        return RunDir(self.path)

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def scale(self) -> str:
        """The pixel range the model works in (``unit`` or ``centered``; see :mod:`aekit.pixels`)."""
        return self.config.data.scale

    def encode(self, images, batch_size: int = 1000) -> np.ndarray:
        """Codes ``(N, latent_dim)`` float32 of uint8 images ``(N, C, H, W)``."""
        return self.model.encode_images(images, self.scale, batch_size)

    def reconstruct(self, images, batch_size: int = 1000) -> np.ndarray:
        """Reconstructions ``(N, C, H, W)`` float32 in the model's pixel range."""
        return self.model.reconstruct_images(images, self.scale, batch_size)

    def decode(self, z, batch_size: int = 1000) -> np.ndarray:
        """Images ``(N, C, H, W)`` float32 in the model's pixel range, decoded from codes ``(N, latent_dim)``."""
        return self.model.decode_codes(z, batch_size)

    def load_data(self, log: Log | None = None, dataset: str | None = None, data_dir: str | None = None):
        """The run's own dataset, loaded with the run's data settings (size, colour, split...), or ``dataset``;
        its images must have the shape the model takes.

        Another image folder given as ``dataset`` is brought to the run's size and colour the same way.
        """
        from aekit.data import load_dataset

        name = dataset or self.config.data.dataset
        own = name == self.config.data.dataset or Path(name).expanduser().is_dir()
        data = load_dataset(name, data_dir or self.config.data.data_dir, log=log,
                            **(self.config.data.loader_settings() if own else {}))
        if tuple(data.image_shape) != tuple(self.model.input_shape):
            raise DataError(f"{name}: images are {'x'.join(map(str, data.image_shape))} but the run's model "
                            f"takes {'x'.join(map(str, self.model.input_shape))}")
        return data

    # ----------------------------------------------------------------- drawing from the model

    def test_images(self, indices: dict[str, int], data=None) -> np.ndarray:
        """The test images named by ``{"--a": 3, ...}`` as uint8 ``(N, C, H, W)``; a bad index names its key."""
        data = data if data is not None else self.load_data()
        n = len(data.x_test)
        for name, i in indices.items():
            if not 0 <= i < n:
                raise ConfigError(f"{name} {i}: {data.name} has test images 0 to {n - 1}")
        return data.x_test[list(indices.values())]

    def sample(self, n: int, seed: int = 0, from_codes: bool = False, data=None) -> np.ndarray:
        """``n`` new images ``(n, C, H, W)`` in the model's pixel range.

        From the model's prior, or with ``from_codes`` from a Gaussian fitted to the codes
        of the training images (the only way for a model without a prior).
        """
        import torch

        from aekit.models import get_model_class, list_models

        if n < 1:
            raise ConfigError(f"--n: must be >= 1, got {n}")
        generator = torch.Generator().manual_seed(seed)
        if from_codes:
            data = data if data is not None else self.load_data()
            codes = torch.from_numpy(self.encode(data.x_train)).to(self.device)
            images = self.model.sample_from_codes(codes, n, generator)
        elif self.model.is_generative:
            images = self.model.sample(n, generator)
        else:
            with_prior = ", ".join(m for m in list_models() if get_model_class(m).is_generative)
            raise AekitError(f"model '{self.model.name}' has no prior to sample from (models with one: "
                             f"{with_prior}): its codes follow no known distribution; use --from-codes to "
                             "sample a Gaussian fitted to the codes of its training images")
        return images.float().cpu().numpy()

    def interpolate(self, a: int, b: int, steps: int = 10, data=None) -> np.ndarray:
        """Test image ``a``, ``steps`` images decoded on the line between the codes of ``a`` and ``b``
        (ends included), then test image ``b``: ``(steps + 2, C, H, W)`` in the model's pixel range.
        """
        import torch

        from aekit.pixels import to_model

        if steps < 2:
            raise ConfigError(f"--steps: must be >= 2, got {steps}")
        x = to_model(self.test_images({"--a": a, "--b": b}, data), self.scale).to(self.device)  # (2, C, H, W)
        strip = self.model.interpolate(x[0], x[1], steps)  # (steps, C, H, W)
        return torch.cat([x[:1], strip, x[1:]]).float().cpu().numpy()

    def traverse(self, image: int = 0, dims: Sequence[int] | None = None, steps: int = 9,
                 value_range: tuple[float, float] | None = None, data=None) -> np.ndarray:
        """One row of ``steps`` images per code unit in ``dims`` (default: all): the code of test image
        ``image`` with that unit swept over ``value_range``, the others kept.

        The default range is -3..3 (the prior's +-3 standard deviations) for a model with a
        prior, else the 1st to 99th percentile of that unit over the test codes. Returns
        ``(len(dims) * steps, C, H, W)`` in the model's pixel range.
        """
        import torch

        from aekit.pixels import to_model

        if steps < 2:
            raise ConfigError(f"--steps: must be >= 2, got {steps}")
        k = self.model.latent_dim
        dims = list(range(k)) if dims is None else list(dims)
        for d in dims:
            if not 0 <= d < k:
                raise ConfigError(f"--dim {d}: the code has units 0 to {k - 1}")
        data = data if data is not None else self.load_data()
        if value_range is None and self.model.is_generative:
            value_range = (-3.0, 3.0)
        if value_range is None:
            codes = torch.from_numpy(self.encode(data.x_test))  # (N, k)
            bounds = torch.quantile(codes[:, dims], torch.tensor([0.01, 0.99]), dim=0).T.tolist()  # (len(dims), 2)
        else:
            bounds = [value_range] * len(dims)
        x = to_model(self.test_images({"--image": image}, data), self.scale).to(self.device)
        with torch.no_grad():
            z = self.model.encode(x)[0]  # (k,)
            rows = [self.model.traverse(z, d, torch.linspace(lo, hi, steps)) for d, (lo, hi) in zip(dims, bounds)]
        return torch.cat(rows).float().cpu().numpy()


# --------------------------------------------------------------------------- training

# what --resume may change (the memory budget changes how the data is held, never the result); the rest is the run's own
RESUMABLE = ("epochs", "device", "checkpoint_every", "max_memory")


def train(preset: str | None = None, *, config: str | Path | dict | RunConfig | None = None,
          out: str | Path | None = None, resume: str | Path | None = None, callbacks: Sequence = (),
          progress: bool | None = None, verbose: bool = True, plots: bool = True, log: Log | None = None,
          tensorboard: str | Path | bool | None = None, live: bool = False, **overrides) -> Run:
    """Train a preset (default ``classic-3d-tanh``) with field overrides; returns the :class:`Run`.

    ``resume`` continues a stopped run directory exactly where its checkpoint left off
    (with its own config; only ``epochs``, ``device``, ``checkpoint_every`` and
    ``max_memory`` may be given, and a larger ``epochs`` extends a finished run).

    With ``plots`` (the default) the run also gets its pictures: reconstruction snapshots
    during training, then ``recon.gif``, ``latent.png``/``latent.html``, ``manifold.png``
    (2-D codes), ``loss.png`` and ``report.html``. A failure while drawing is one warning
    line: the trained run is already saved.

    ``tensorboard`` (a directory, or ``True`` for ``<run>/tensorboard``) writes TensorBoard
    event files (:mod:`aekit.integrations.tensorboard`); ``live`` redraws a matplotlib
    window as training runs, when there is a display (:mod:`aekit.integrations.live`).

    Raises :class:`~aekit.errors.Diverged` when the loss or weights stop being finite
    numbers (the last good checkpoint is kept), :class:`~aekit.errors.Interrupted` on
    Ctrl-C (after saving a checkpoint), :class:`~aekit.errors.WriteError` when the disk
    refuses a file, :class:`~aekit.errors.RunError` when another process writes the run.

    >>> run = aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=1, out="runs/demo")  # doctest: +SKIP
    >>> run.model.encode(x).shape  # doctest: +SKIP
    torch.Size([N, 2])
    """
    from aekit.training.distributed import check_batch, join, leave

    log = log or io.log
    if tensorboard:  # a missing extra fails here, before a run directory is made
        from aekit.integrations import require

        require("tensorboard", "tensorboard", "--tensorboard")
    if resume is not None:
        if preset is not None or config is not None or out is not None:
            raise ConfigError("--resume: continues RUN in place with its own config; drop --out, --preset and --config")
        try:
            run_dir, cfg, meta = _resume_plan(resume, overrides)
        except _AlreadyDone as done:  # a job script that always resumes may run once more than it needs
            log(str(done))
            return load_run(done.run_dir.path)
    else:
        cfg = build_config(preset, config, **overrides)
        run_dir, meta = RunDir(RunDir.new_path(out, cfg.preset or cfg.model.model)), None
    world, device = join(cfg.train.device)  # torchrun's process group, or this process alone
    ok = False
    try:
        check_batch(cfg.train.batch_size, world)
        if world.distributed:
            run_dir = RunDir(world.gather(str(run_dir.path))[0])  # the name rank 0 chose
        if not world.main:  # rank 0 alone writes files and prints
            log, verbose, progress, plots, callbacks = io.quiet, False, False, False, ()
        created = not run_dir.path.exists()
        with run_dir.lock() if world.main else contextlib.nullcontext():  # before the data loads
            data = _prepare(run_dir, created, cfg, meta, resume is not None, world, progress, log)
            state = run_dir.load_checkpoint("checkpoint", device) if meta is not None else None
            watchers = _watchers(run_dir, data, cfg.data.scale, tensorboard, live, log) if world.main else []
            run = _fit(cfg, run_dir, data, device, state, world, [*watchers, *callbacks], progress, verbose, plots,
                       log)
            ok = True
            return run
    finally:
        leave(world, ok)


def _watchers(run_dir: RunDir, data, scale: str, tensorboard, live: bool, log: Log) -> list:
    """The callbacks of ``tensorboard`` and ``live`` (see :mod:`aekit.integrations`)."""
    watchers = []
    if tensorboard:
        from aekit.integrations.tensorboard import TensorBoardLogger

        log_dir = run_dir / "tensorboard" if tensorboard is True else tensorboard
        watchers.append(TensorBoardLogger.for_data(log_dir, data, scale))
    if live:
        from aekit.integrations.live import LiveWindow

        watchers.append(LiveWindow.for_data(data, scale, log))  # without a display: one line, a no-op
    return watchers


def _resume_plan(path, overrides: dict) -> tuple[RunDir, RunConfig, dict | None]:
    """The run to resume, its config with the allowed overrides, and its checkpoint's meta (``None``: none yet)."""
    given = {k for k, v in overrides.items() if v is not None}
    if given - set(RESUMABLE):
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(given - set(RESUMABLE)))
        raise ConfigError(f"--resume: the run continues with its own config; only --epochs, --device, "
                          f"--checkpoint-every and --max-memory can change, not {flags}")
    changes = {k: overrides[k] for k in given}
    run_dir = RunDir.open(path)
    if not run_dir.checkpoint().exists() and not run_dir.checkpoint().with_suffix(".json").exists():
        # killed before its first checkpoint: nothing was saved, so it starts over with its config
        return run_dir, build_config(config=run_dir.read_config(), **changes), None
    meta = run_dir.read_checkpoint_meta("checkpoint")
    if meta.get("kind") != "state":
        raise RunError(f"{run_dir.checkpoint()}: holds weights only (written by an older aekit), so the run "
                       "cannot be resumed; train it again")
    cfg = build_config(config=saved_config(meta["config"]), **changes)
    done, position = len(meta.get("history", [])), meta["position"]
    if position.get("main", True) and cfg.train.epochs < position["epoch"]:
        if meta.get("finished") and cfg.train.epochs == done:
            raise _AlreadyDone(run_dir, done)
        raise ConfigError(f"--epochs: {run_dir.path} has trained {done} epoch(s) already; to train on, give "
                          f"more: --resume {run_dir.path} --epochs {done + 10}")
    return run_dir, cfg, meta


class _AlreadyDone(Exception):
    """A resumed run had already trained all its epochs: nothing to do."""

    def __init__(self, run_dir: RunDir, epochs: int):
        super().__init__(f"{run_dir.path}: already trained all its {epochs} epoch(s); nothing to do (to train on, "
                         f"give more: --resume {run_dir.path} --epochs {epochs + 10})")
        self.run_dir = run_dir


def _prepare(run_dir: RunDir, created: bool, cfg: RunConfig, meta: dict | None, resuming: bool, world, progress,
             log: Log):
    """Check the run directory, load the data (rank 0 first: it may download or pack), write config.json
    (and skipped.txt, the data files that could not be read).

    ``created``: the directory did not exist before this run; if it fails before training,
    it is removed again.
    """
    try:
        if world.main:
            if not resuming and run_dir.holds_run():
                raise ConfigError(f"--out {run_dir.path}: already holds a run; choose another directory, remove "
                                  f"it, or continue it with --resume {run_dir.path}")
            if resuming and meta is None:
                log(f"{run_dir.path}: no checkpoint yet; training it from the start")
            run_dir.remove_stale_temp_files()
        data = world.main_first(lambda: _load_training_data(cfg, progress, log))
        if meta is not None and list(data.image_shape) != meta["input_shape"]:
            raise RunError(f"{cfg.data.dataset}: its images are {'x'.join(map(str, data.image_shape))} now, but "
                           f"the run trained on {'x'.join(map(str, meta['input_shape']))}; it cannot be resumed")
        if world.main:
            run_dir.write_config(cfg)  # a resume may have changed the epochs
            run_dir.write_skipped(data.skipped)
        return data
    except BaseException:
        if created and world.main:  # nothing was trained: leave no empty run directory behind
            shutil.rmtree(run_dir.path, ignore_errors=True)
        raise


def _load_training_data(cfg: RunConfig, progress, log: Log):
    """The run's data, loaded with the run's data settings."""
    from aekit.data import load_dataset

    try:
        data = load_dataset(cfg.data.dataset, cfg.data.data_dir, progress=progress, log=log,
                            **cfg.data.loader_settings())
    except KeyboardInterrupt:
        raise Interrupted("interrupted while loading the data; nothing was saved") from None
    if cfg.data.dataset == "mnist" and data.name != "mnist":
        cfg.data.dataset = data.name  # the offline fallback: record what was really used, so re-runs match
    from aekit.data import list_sources

    # a path is recorded resolved, so the run's data is found from any directory (eval, resume, --config)
    if cfg.data.dataset not in list_sources() and Path(cfg.data.dataset).expanduser().exists():
        cfg.data.dataset = str(Path(cfg.data.dataset).expanduser().resolve())
    if cfg.data.data_dir is not None:
        cfg.data.data_dir = str(Path(cfg.data.data_dir).expanduser().resolve())
    return data


def _fit(cfg: RunConfig, run_dir: RunDir, data, device, state, world, callbacks, progress, verbose, plots,
         log) -> Run:
    """Build the model and callbacks, train (from ``state`` when resuming), draw the pictures."""
    import torch

    from aekit.models import create_model
    from aekit.training import Checkpointer, EpochPrinter, MetricsLogger, ProgressBar, Trainer
    from aekit.training.streaming import data_sources
    from aekit.visualization.snapshots import ReconSnapshots, snapshot_indices

    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model, data.image_shape).to(device)
    if world.rank:
        torch.manual_seed(cfg.train.seed + world.rank)  # each process its own noise (corruption, sampling)
    x_train, x_test = data_sources(data, device, cfg.data.max_memory, log if verbose else io.quiet)  # uint8

    meta = {"model": model.name, "input_shape": list(model.input_shape), "config": cfg.to_dict(),
            "data_origin": data.origin}
    checkpointer = Checkpointer(run_dir, meta, every=cfg.train.checkpoint_every * 60)
    cbs = [ProgressBar(progress), MetricsLogger(run_dir), checkpointer] if world.main else [checkpointer]
    if plots:
        snaps = torch.from_numpy(data.x_test[snapshot_indices(data, cfg.train.snapshot_images)]).to(device)
        cbs.append(ReconSnapshots(snaps, run_dir / RunDir.RECON, cfg.data.scale, log=log))
    if verbose:
        cbs.insert(1, EpochPrinter(print))
    trainer = Trainer(model, cfg.train, cfg.data.scale, [*cbs, *callbacks],
                      precision=state[1].get("precision") if state else None, world=world)
    if state is not None:
        trainer.load_state_dict(*state)
    if verbose:
        what = (f"resuming at epoch {state[1]['position']['epoch']} step {state[1]['position']['step']}"
                if state else "training")
        procs = f" x {world.size} processes" if world.distributed else ""
        log(f"{what} {cfg.model.model} ({cfg.preset or 'custom'}) on {data.name} [{len(data.x_train)} train / "
            f"{len(data.x_test)} test] on {device}{procs} in {trainer.precision} -> {run_dir.path}")
    try:
        history = trainer.fit(x_train, x_test)
    except Diverged as exc:
        raise Diverged(f"{exc}; {run_dir.path} keeps {_what_is_saved(run_dir)}") from None
    except RuntimeError as exc:
        if world.lost_peer(exc):
            raise RunError(f"process {world.rank} of {world.size} lost the others ({str(exc).splitlines()[0][:200]}); "
                           f"{run_dir.path} keeps its last checkpoint") from None
        raise
    except Interrupted as exc:
        saved = checkpointer.saved
        where = f" (epoch {saved['epoch']}, step {saved['step']})" if saved else ""
        raise Interrupted(f"{exc}; the run is saved in {run_dir.path}{where}; continue it with: "
                          f"aekit train --resume {run_dir.path}") from None
    run = Run(path=run_dir.path, config=cfg, model=model.eval(), metrics=history, data_origin=data.origin)
    if plots and history:
        _draw_end_of_training(run, data, log)
    return run


def _what_is_saved(run_dir: RunDir) -> str:
    saved = []
    for which in ("checkpoint", "best"):
        try:
            meta = run_dir.read_checkpoint_meta(which)
            saved.append(f"{run_dir.checkpoint(which).name} (epoch {meta.get('epoch', '?')})")
        except RunError:
            pass
    return " and ".join(saved) if saved else "no checkpoint (none was due yet)"


def _draw_end_of_training(run: Run, data, log: Log) -> None:
    from aekit.visualization.pictures import draw_pictures

    try:
        draw_pictures(run, data, report=True)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while drawing the pictures; the trained run is saved in {run.path}; "
                          f"draw them with: aekit report {run.path}") from None
    except Exception as exc:  # noqa: BLE001 - drawing must never lose a trained run
        log(f"warning: could not draw the run's pictures ({type(exc).__name__}: {exc}); the trained run "
            f"is saved in {run.path}; try again with: aekit report {run.path}")


def load_run(path: str | Path, which: str = "checkpoint", device: str = "cpu") -> Run:
    """Reload a run directory: ``which`` is ``checkpoint`` (the last saved state) or ``best``.

    ``Run.metrics`` is the history the checkpoint holds (a ``metrics.jsonl`` line written
    after it, by a run that was then killed, is not part of it).
    """
    from aekit.models import create_model

    run_dir = RunDir.open(path)
    meta = run_dir.read_checkpoint_meta(which)
    cfg = build_config(config=saved_config(meta["config"]))
    model = create_model(cfg.model, tuple(meta["input_shape"]))
    run_dir.load_weights(which, model, device)
    model.to(device).eval()
    return Run(path=run_dir.path, config=cfg, model=model, metrics=run_dir.read_metrics(),
               data_origin=meta.get("data_origin", ""))


def saved_config(config: dict) -> dict:
    """A saved run's config as this aekit reads it: fields added since it was written get the value
    that the run was trained with (a conv body from before ``conv_decoder`` has the ``refine`` head).
    """
    model = config.get("model", {})
    conv = model.get("model") == "conv" or model.get("arch") == "conv"
    if conv and "conv_decoder" not in model and model.get("model") in ("conv", "denoising", "sparse", "contractive",
                                                                       "vae"):
        config = {**config, "model": {**model, "conv_decoder": "refine"}}
    return config


def _as_run(run: Run | str | Path, which: str = "checkpoint") -> Run:
    return run if isinstance(run, Run) else load_run(run, which)


# --------------------------------------------------------------------------- evaluation

def evaluate(run, dataset: str | None = None, *, data_dir: str | None = None, which: str = "checkpoint",
             settings=None, cache: bool = True, cache_dir: str | Path | None = None,
             log: Log | None = None, data=None, progress: bool | None = None):
    """Evaluate a run (a :class:`Run` or its directory) on its dataset's test split.

    Returns the :class:`~aekit.evaluation.Evaluation`: ``summary`` (what ``aekit eval``
    writes to ``eval.json``) and the per-image reconstruction errors. PCA and pixel
    baselines come from ``cache_dir`` (default ``<aekit cache>/baselines``) when
    ``cache`` is true. ``log`` gets a line when each section starts and ends (default:
    stderr), and each line saying what was shrunk or skipped to fit the data;
    ``progress`` shows a bar for a section that takes more than a few seconds (default:
    when stderr is a terminal). ``data`` is the loaded dataset, when the caller already has it.

    Raises :class:`~aekit.errors.EvalError` (one line, naming the settings to change) when
    a section fails, :class:`~aekit.errors.ConfigError` for settings out of range.

    >>> result = aekit.evaluate("runs/demo")  # doctest: +SKIP
    >>> result.summary["results"]["model"]["knn_acc"], result.summary["results"]["pca"]["knn_acc"]  # doctest: +SKIP
    """
    import sys

    from aekit.evaluation import suite
    from aekit.evaluation.cache import BaselineCache
    from aekit.pixels import to_unit

    log = log or io.log
    run = _as_run(run, which)
    data = data if data is not None else run.load_data(log, dataset, data_dir)
    log(f"evaluating {run.path} on {data.name} [{len(data.x_train)} train / {len(data.x_test)} test]")
    log("encoding and reconstructing with the model ...")
    recon = to_unit(run.reconstruct(data.x_test), run.scale)
    z_train, z_test = run.encode(data.x_train), run.encode(data.x_test)
    baseline = BaselineCache(cache_dir, log) if cache else suite.no_cache
    label = run.config.preset or f"custom {run.config.model.model}"
    result = suite.evaluate(data, z_train, z_test, recon, settings, model_label=label, baseline=baseline,
                            log=log, progress=sys.stderr.isatty() if progress is None else progress)
    run_info = {"path": str(run.path), "checkpoint": which, "preset": run.config.preset,
                "model": run.config.model.model, "latent_dim": run.config.model.latent_dim,
                "scale": run.scale, "trained_on": run.config.data.dataset,
                "epochs_trained": len(run.metrics)}
    result.summary = {"format": result.summary["format"], "run": run_info, **result.summary}
    return result


def save_evaluation(run: Run, result, data, out: str | Path | None = None) -> Path:
    """Write ``result.summary`` as ``eval.json`` (or to ``out``).

    Written into the run directory, it also draws ``worst.png`` (the worst reconstructed
    test images) and refreshes ``report.html`` when the run has one, so the report shows
    the table. Returns the summary's path.
    """
    path = run.dir.write_eval(result.summary, out)
    if path.resolve().parent == run.path.resolve():
        from aekit.visualization.pictures import draw_pictures, draw_worst

        worst = [w["index"] for w in result.summary.get("anomaly", {}).get("worst", [])]
        if worst:
            draw_worst(run, data, worst)
        if run.dir.file(RunDir.REPORT):
            draw_pictures(run, data, what=(), report=True)
    return path


def write_scores(result, path: str | Path) -> Path:
    """Every test image's reconstruction error as CSV ``index,label,error``, worst first (label -1: unlabeled)."""
    order = result.errors.argsort(kind="stable")[::-1]
    lines = ["index,label,error", *(f"{i},{result.labels[i]},{result.errors[i]:.8g}" for i in order)]
    return io.atomic_write_text(path, "\n".join(lines) + "\n")


def encode_split(run: Run, data, split: str = "test") -> dict[str, np.ndarray]:
    """Codes of one split (``test``, ``train`` or ``all``: train then test) with labels (-1 when the data has
    none), split names and indices.
    """
    if split not in SPLITS:
        raise DataError(f"--split: {split!r} is not allowed; choose one of: {', '.join(SPLITS)}")
    parts = [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]
    parts = [(name, x, y if y is not None else np.full(len(x), -1)) for name, x, y in parts if split in (name, "all")]
    return {"z": np.concatenate([run.encode(x) for _, x, _ in parts]).astype(np.float32),
            "label": np.concatenate([y for _, _, y in parts]).astype(np.int64),
            "split": np.concatenate([np.full(len(y), name) for name, _, y in parts]),
            "index": np.concatenate([np.arange(len(y)) for _, _, y in parts]).astype(np.int64)}


def write_codes(codes: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write :func:`encode_split`'s codes as ``.npy`` (one structured array) or ``.csv``, atomically.

    - ``.npy``: fields ``split`` (``"train"``/``"test"``), ``index`` (position within that
      split), ``label`` (int64; -1 when the data has no labels) and ``z`` (float32,
      ``(latent_dim,)``); loads without pickle:
      ``codes = np.load("codes.npy"); codes["z"], codes["label"]``;
    - ``.csv``: a header ``label,z0,z1,...`` then one row per image.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ConfigError(f"--out {path}: the file must end in .npy or .csv")
    z = codes["z"]
    n, d = z.shape
    if suffix == ".npy":
        table = np.zeros(n, dtype=[("split", "U5"), ("index", "i8"), ("label", "i8"), ("z", "f4", (d,))])
        for name in ("split", "index", "label", "z"):
            table[name] = codes[name]

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, table)
        return io.atomic_write(path, write)
    lines = ["label," + ",".join(f"z{i}" for i in range(d))]
    lines += [f"{label}," + ",".join(f"{v:.8g}" for v in row) for label, row in zip(codes["label"], z)]
    return io.atomic_write_text(path, "\n".join(lines) + "\n")


__all__ = ["Run", "build_config", "encode_split", "evaluate", "load_run", "save_evaluation", "train", "write_codes",
           "write_scores"]
