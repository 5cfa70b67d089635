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
import math
import numbers
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aekit import io
from aekit.config import RunConfig
from aekit.errors import AekitError, ConfigError, DataError, Diverged, InputError, Interrupted, RunError
from aekit.io import Log
from aekit.resolve import build_config
from aekit.rundir import RunDir

SPLITS = ("test", "train", "all")
MAX_DRAWN = 100_000  # images one sample, interpolate or traverse call may make: about 300 MB of 28x28 floats


def _whole(value, name: str) -> int:
    """``value`` as an int; an :class:`~aekit.errors.InputError` naming ``name`` unless it is an integer
    (``bool`` is not one here, and neither is ``2.0``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: must be an integer, got {value!r}")
    return int(value)


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
        An image folder's :class:`~aekit.data.ImageData` names each image's file in ``paths_train`` and
        ``paths_test`` (relative to the folder); other sources have ``None`` there.
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

        n, seed = _whole(n, "n"), _whole(seed, "seed")
        if not 1 <= n <= MAX_DRAWN:
            raise ConfigError(f"--n: must be from 1 to {MAX_DRAWN}, got {n}")
        if not 0 <= seed < 2 ** 63:
            raise ConfigError(f"--seed: must be from 0 to 2**63 - 1, got {seed}")
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

        a, b, steps = _whole(a, "a"), _whole(b, "b"), _whole(steps, "steps")
        _check_steps(steps)
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

        image, steps = _whole(image, "image"), _whole(steps, "steps")
        _check_steps(steps)
        k = self.model.latent_dim
        dims = _code_units(dims, k)
        if len(dims) * steps > MAX_DRAWN:
            raise ConfigError(f"--steps: {len(dims)} unit(s) x {steps} steps is over {MAX_DRAWN} images")
        value_range = _value_range(value_range)
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


def _check_steps(steps: int) -> None:
    if not 2 <= steps <= MAX_DRAWN:
        raise ConfigError(f"--steps: must be from 2 to {MAX_DRAWN}, got {steps}")


def _code_units(dims, k: int) -> list[int]:
    """``dims`` (``None``: every unit; one integer or a sequence of them) as a checked list of code units."""
    if dims is None:
        return list(range(k))
    if isinstance(dims, numbers.Integral) and not isinstance(dims, bool):
        dims = [dims]
    elif isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
        raise InputError(f"dims: expected a code unit or a list of them (integers), got {dims!r}")
    units = [_whole(d, "dims") for d in dims]
    if not units:
        raise InputError("dims: no code units given; None traverses every unit")
    for d in units:
        if not 0 <= d < k:
            raise ConfigError(f"--dim {d}: the code has units 0 to {k - 1}")
    return units


def _value_range(value_range) -> tuple[float, float] | None:
    """``None``, or ``(lo, hi)`` as two finite floats; an InputError naming ``value_range`` otherwise."""
    if value_range is None:
        return None
    pair = tuple(value_range) if hasattr(value_range, "__iter__") and not isinstance(value_range, str) else ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair) \
            or not all(math.isfinite(v) for v in pair):
        raise InputError(f"value_range: expected two finite numbers (lo, hi), got {value_range!r}")
    return float(pair[0]), float(pair[1])


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

    ``out`` must be a new or empty directory (:meth:`RunDir.check_new`); a new run that fails
    before it saves any weights removes what it wrote there (:meth:`RunDir.writing`).

    Raises :class:`~aekit.errors.Diverged` when the loss or weights stop being finite
    numbers (the last good checkpoint is kept), :class:`~aekit.errors.Interrupted` on
    Ctrl-C (after saving a checkpoint), :class:`~aekit.errors.WriteError` when the disk
    refuses a file, :class:`~aekit.errors.RunError` when another process writes the run,
    :class:`~aekit.errors.ConfigError` when ``out`` holds a run or other files.

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
            return _finish(done, plots, log)
    else:
        from aekit.presets import default_preset

        cfg = build_config(preset or (None if config is not None else default_preset(overrides)), config, **overrides)
        run_dir, meta = RunDir(RunDir.new_path(out, cfg.preset or cfg.model.model)), None
    world, device = join(cfg.train.device)  # torchrun's process group, or this process alone
    ok = False
    try:
        check_batch(cfg.train.batch_size, world)
        if world.distributed:
            run_dir = RunDir(world.gather(str(run_dir.path))[0])  # the name rank 0 chose
        if not world.main:  # rank 0 alone writes files and prints
            log, verbose, progress, plots, callbacks = io.quiet, False, False, False, ()
        # before the data loads; a new run that fails before its first checkpoint leaves no directory behind
        with run_dir.writing(new=resume is None) if world.main else contextlib.nullcontext():
            data = _prepare(run_dir, cfg, meta, resume is not None, world, progress, log,
                            {k for k, v in overrides.items() if v is not None} if resume is None and config is None
                            else None)
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
    if "epochs" in changes:
        changes["steps"] = 0  # the epochs given replace a steps budget (and set the schedule's new length)
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
    if meta.get("finished") and meta.get("callbacks", {}).get("EarlyStopping", {}).get("stopped") \
            and "epochs" not in changes:
        raise _AlreadyDone(run_dir, done)  # it stopped early: done, unless more epochs are asked for
    if position.get("main", True) and cfg.train.epochs < position["epoch"]:
        if meta.get("finished") and cfg.train.epochs == done:
            raise _AlreadyDone(run_dir, done)
        raise ConfigError(f"--epochs: {run_dir.path} has trained {done} epoch(s) already; to train on, give "
                          f"more: --resume {run_dir.path} --epochs {done + 10}")
    return run_dir, cfg, meta


class _AlreadyDone(Exception):
    """A resumed run had already trained all its epochs: nothing to do but the finishing steps it may lack."""

    def __init__(self, run_dir: RunDir, epochs: int):
        self.more = f"to train on, give more: --resume {run_dir.path} --epochs {epochs + 10}"
        super().__init__(f"{run_dir.path}: already trained all its {epochs} epoch(s); nothing to do ({self.more})")
        self.run_dir, self.epochs = run_dir, epochs


def _finish(done: _AlreadyDone, plots: bool, log: Log) -> Run:
    """A run that trained all its epochs, with the finishing steps a kill may have cut short done now.

    Training with pictures writes snapshots to ``recon/`` and ends by drawing the pictures,
    then ``report.html``; a run with the one and not the other was stopped in between, and
    gets them now (and loses its killed writers' temp files). A run trained with
    ``--no-plots`` has no ``recon/`` and stays without pictures.
    """
    from aekit.training.distributed import env_world

    run_dir = done.run_dir
    unfinished = (run_dir / RunDir.RECON).is_dir() and not run_dir.file(RunDir.REPORT)
    if not plots or not unfinished or not env_world().main:
        log(str(done))
        return load_run(run_dir.path)
    with run_dir.writing():
        run = load_run(run_dir.path)
        log(f"{run_dir.path}: already trained all its {done.epochs} epoch(s) but has no report (its end was "
            f"interrupted); drawing its pictures and report ({done.more})")
        _draw_end_of_training(run, None, log)  # loads the data; a failure is one warning: the run is trained
    return run


def _prepare(run_dir: RunDir, cfg: RunConfig, meta: dict | None, resuming: bool, world, progress, log: Log,
             given: set | None = None):
    """Clear the run directory of killed writers' temp files, load the data (rank 0 first: it may download or
    pack), write config.json (and skipped.txt, the data files that could not be read).
    """
    if world.main:
        if resuming and meta is None:
            log(f"{run_dir.path}: no checkpoint yet; training it from the start")
        run_dir.remove_stale_temp_files()
    data = world.main_first(lambda: _load_training_data(cfg, progress, log))
    if meta is not None and list(data.image_shape) != meta["input_shape"]:
        raise RunError(f"{cfg.data.dataset}: its images are {'x'.join(map(str, data.image_shape))} now, but "
                       f"the run trained on {'x'.join(map(str, meta['input_shape']))}; it cannot be resumed")
    from aekit.training.budget import settle

    if (line := settle(cfg, data.image_shape, len(data.x_train), given)) and world.main:  # given: plan auto
        log(line)
    if world.main:
        run_dir.write_config(cfg)  # a resume may have changed the epochs
        run_dir.write_skipped(data.skipped)
    return data


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
    _check_sizes(data, cfg)
    return data


def _check_sizes(data, cfg: RunConfig) -> None:
    """Refuse, before training, a set too small to train on and score: every epoch is scored on the test
    split, whose mean over no images would be NaN and read as divergence.
    """
    n_train, n_test = len(data.x_train), len(data.x_test)
    if n_train + n_test < 2:
        raise DataError(f"{cfg.data.dataset}: holds {n_train + n_test} image(s); training needs at least 2, one "
                        "to train on and one to test on; add images")
    if n_test == 0:
        fraction = cfg.data.test_fraction
        fraction = "unset: 0.1, or 1/6 for a single CSV" if fraction is None else fraction
        raise DataError(f"{cfg.data.dataset}: the test split is empty ({n_train} training images, none to test "
                        f"on) and every epoch is scored on it; give a larger --test-fraction (now {fraction}) "
                        "or, for a set with a split of its own, test images")
    if n_train == 0:
        raise DataError(f"{cfg.data.dataset}: the training split is empty ({n_test} test images); give a "
                        "smaller --test-fraction or add training images")


def _fit(cfg: RunConfig, run_dir: RunDir, data, device, state, world, callbacks, progress, verbose, plots,
         log) -> Run:
    """Build the model and callbacks, train (from ``state`` when resuming), draw the pictures."""
    import torch

    from aekit.models import create_model
    from aekit.training import (
        Checkpointer,
        EarlyStopping,
        EpochPrinter,
        LearningCheck,
        MetricsLogger,
        OverfitCheck,
        ProgressBar,
        Trainer,
    )
    from aekit.training.budget import hold_out
    from aekit.training.streaming import data_sources
    from aekit.visualization.snapshots import ReconSnapshots, snapshot_indices

    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model, data.image_shape).to(device)
    if world.rank:
        torch.manual_seed(cfg.train.seed + world.rank)  # each process its own noise (corruption, sampling)
    x_fit, x_val = hold_out(data.x_train, cfg.train.val_fraction, cfg.train.seed)  # (N, C, H, W) uint8
    x_train, x_test = data_sources(types.SimpleNamespace(x_train=x_fit, x_test=data.x_test), device,
                                   cfg.data.max_memory, log if verbose else io.quiet)

    meta = {"model": model.name, "input_shape": list(model.input_shape), "config": cfg.to_dict(),
            "data_origin": data.origin}
    checkpointer = Checkpointer(run_dir, meta, every=cfg.train.checkpoint_every * 60)
    cbs = [ProgressBar(progress), MetricsLogger(run_dir), checkpointer] if world.main else [checkpointer]
    if world.main:
        cbs += [LearningCheck(data.x_test, cfg.data.scale, log), OverfitCheck(log)]
    if cfg.train.patience:
        cbs.append(EarlyStopping(cfg.train.patience, log=log if world.main else io.quiet))
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
        history = trainer.fit(x_train, x_test, None if x_val is None else torch.from_numpy(x_val).to(device))
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
    if x_val is not None and world.main and checkpointer.best_epoch not in (None, len(history)):
        run_dir.load_weights("best", model, device)  # chosen on the validation split: what the run returns and draws
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
    after it, by a run that was then killed, is not part of it). Temp files that killed
    aekit writers left in the run are removed (only those: see :meth:`RunDir.remove_stale_temp_files`).
    """
    from aekit.models import create_model

    run_dir = RunDir.open(path)
    run_dir.remove_stale_temp_files()  # an interrupted `aekit report` or end of training: the next command tidies
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
    worst = result.summary.get("anomaly", {}).get("worst", [])
    worst[:] = [_named(w, data) for w in worst]
    return result


def _named(item: dict, data) -> dict:
    """A worst-reconstruction entry ``{"index", "label"?, "error"}`` with the image's ``file`` (image folders)
    and its ``class`` name (labelled data) beside them.
    """
    i, named = item["index"], {"index": item["index"]}
    if data.paths_test is not None:
        named["file"] = io.printable(data.paths_test[i])
    if "label" in item:
        named.update(label=item["label"], **{"class": data.class_names[item["label"]]})
    return {**named, **item}


def save_evaluation(run: Run, result, data, out: str | Path | None = None) -> Path:
    """Write ``result.summary`` as ``eval.json`` (or to ``out``).

    Written into the run directory, it also draws ``worst.png`` (the worst reconstructed
    test images) and refreshes ``report.html`` when the run has one, so the report shows
    the table. Returns the summary's path.
    """
    path = run.dir.write_eval(result.summary, out)
    if path.resolve().parent == run.path.resolve():
        from aekit.visualization.pictures import draw_pictures, draw_worst

        worst = result.summary.get("anomaly", {}).get("worst", [])
        if worst:
            draw_worst(run, data, worst)
        if run.dir.file(RunDir.REPORT):
            draw_pictures(run, data, what=(), report=True)
    return path


def write_scores(result, path: str | Path, data=None) -> Path:
    """Every test image's reconstruction error as CSV ``index,file,label,class,error``, worst first.

    ``index`` is the image's place in the test split; ``file`` its path relative to the image folder, when
    ``data`` (the evaluated dataset) is an image folder, else empty; ``class`` its class name (empty, and
    ``label`` -1, when the data has no labels).
    """
    order = result.errors.argsort(kind="stable")[::-1]
    files = _files(data, "test", len(result.errors))
    classes = _class_names(data, result.labels)
    rows = [(i, files[i], result.labels[i], classes[i], f"{result.errors[i]:.8g}") for i in order]
    return io.atomic_write_text(path, _csv(["index", "file", "label", "class", "error"], rows))


def _files(data, split: str, n: int) -> list[str]:
    """The printable file paths of a split's ``n`` images; empty strings when the data has no files."""
    paths = None if data is None else getattr(data, f"paths_{split}")
    return [""] * n if paths is None else [io.printable(p) for p in paths]


def _class_names(data, labels: np.ndarray) -> list[str]:
    """Each label's class name; empty for -1 (no label) or without ``data``."""
    names = [] if data is None else data.class_names
    return [names[y] if 0 <= y < len(names) else "" for y in labels.tolist()]


def _csv(header: list[str], rows) -> str:
    """CSV text with quoting where a value needs it (a file name with a comma)."""
    import csv
    import io as _io

    text = _io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def encode_split(run: Run, data, split: str = "test") -> dict[str, np.ndarray]:
    """Codes of one split (``test``, ``train`` or ``all``: train then test) with what names each image: its
    split, index in it, file (relative to the image folder; empty for other sources), label (-1 when the data
    has none) and class name (empty when unlabeled).
    """
    if split not in SPLITS:
        raise DataError(f"--split: {split!r} is not allowed; choose one of: {', '.join(SPLITS)}")
    parts = [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]
    parts = [(name, x, y if y is not None else np.full(len(x), -1)) for name, x, y in parts if split in (name, "all")]
    label = np.concatenate([y for _, _, y in parts]).astype(np.int64)
    return {"z": np.concatenate([run.encode(x) for _, x, _ in parts]).astype(np.float32),
            "label": label,
            "class": np.array(_class_names(data, label), dtype=str),
            "file": np.array([f for name, x, _ in parts for f in _files(data, name, len(x))], dtype=str),
            "split": np.concatenate([np.full(len(y), name) for name, _, y in parts]),
            "index": np.concatenate([np.arange(len(y)) for _, _, y in parts]).astype(np.int64)}


# --------------------------------------------------------------------------- clustering

@dataclass
class ClusterResult:
    """A run's images grouped by their codes (:func:`cluster`).

    ``codes`` is :func:`encode_split`'s dict of the clustered images (``z``, ``split``,
    ``index``, ``file``, ``label``, ``class``); ``clustering`` the
    :class:`~aekit.evaluation.clustering.Clustering` (labels, probabilities, distances, how k
    was chosen); ``scores`` the accuracy/NMI/ARI of the method and the k-means baselines when
    the images have labels, else ``None``; ``summary`` what ``clusters.json`` holds.
    """

    codes: dict[str, np.ndarray]
    clustering: Any
    scores: dict[str, dict[str, float]] | None
    summary: dict
    split: str = "all"

    @property
    def labels_(self) -> np.ndarray:
        """``(N,)`` the cluster of each image, in the order of ``codes``."""
        return self.clustering.labels_

    @property
    def probabilities_(self) -> np.ndarray:
        """``(N,)`` the mixture's probability of each image's cluster."""
        return self.clustering.probabilities_

    @property
    def n_clusters_(self) -> int:
        return self.clustering.n_clusters_

    @property
    def method_name(self) -> str:
        from aekit.evaluation.clustering import METHODS

        return METHODS[self.clustering.method]


def cluster(run, k: int | None = None, *, method: str = "n2d", split: str = "all", dataset: str | None = None,
            data_dir: str | None = None, which: str = "checkpoint", seed: int = 0, k_max: int | None = None,
            log: Log | None = None, data=None) -> ClusterResult:
    """Group a run's images (``split``: ``all``, ``train`` or ``test``) by their codes, without labels.

    ``method`` is ``"n2d"`` (UMAP, then a Gaussian mixture; needs the ``cluster`` extra) or
    ``"gmm"`` (a Gaussian mixture on the codes); ``k`` clusters, or when ``None`` the ``k`` in
    ``2..k_max`` (default 15) with the lowest BIC (:mod:`aekit.evaluation.clustering`). Labels,
    where the data has them, only score the result: accuracy (Hungarian), NMI and ARI next to
    k-means with the same ``k`` on the codes and on PCA of the pixels.

    >>> result = aekit.cluster("runs/demo", k=10)  # doctest: +SKIP
    >>> result.labels_[:5], result.scores["N2D (UMAP + GMM)"]["acc"]  # doctest: +SKIP
    """
    import time

    from aekit.evaluation import clustering as methods
    from aekit.evaluation.suite import flat_unit

    log = log or io.log
    run = _as_run(run, which)
    if method not in methods.METHODS:
        raise ConfigError(f"--method: {method!r} is not allowed; choose one of: {', '.join(methods.METHODS)}")
    if method == "n2d":  # before the slow part: a missing extra is one line now, not after encoding
        from aekit.integrations import require

        require("umap", "cluster", "--method n2d (UMAP)")
    data = data if data is not None else run.load_data(log, dataset, data_dir)
    start = time.perf_counter()
    log(f"encoding {'all the' if split == 'all' else 'the ' + split} images of {data.name}")
    codes = encode_split(run, data, split)
    k_max = methods.K_MAX if k_max is None else k_max
    found = methods.cluster_codes(codes["z"], k, method=method, seed=seed, k_max=k_max, log=log)
    scores = None
    if data.labeled:
        pixels = flat_unit(np.concatenate([x for name, x in (("train", data.x_train), ("test", data.x_test))
                                           if split in (name, "all")]))
        scores = methods.compare(codes["label"], found, codes["z"], pixels, seed, log=log)
    summary = {"format": "aekit-clusters/1",
               "run": {"path": str(run.path), "checkpoint": which, "preset": run.config.preset,
                       "model": run.config.model.model, "latent_dim": run.config.model.latent_dim},
               "data": {"dataset": data.name, "split": split, "images": len(found.labels_),
                        "labeled": data.labeled},
               "method": method, "method_name": methods.METHODS[method], "params": found.params,
               "k": found.n_clusters_, "k_chosen_by": found.k_chosen_by, "why_k": found.why_k(),
               "k_scores": {str(j): v for j, v in found.k_scores_.items()}, "sizes": found.sizes,
               **({"scores": scores} if scores is not None else {}),
               "seconds": round(time.perf_counter() - start, 2)}
    return ClusterResult(codes, found, scores, summary, split)


def save_clustering(run: Run, result: ClusterResult, data, out: str | Path | None = None, members: int = 8,
                    projection: str = "pca") -> list[Path]:
    """Write a clustering into ``run``'s ``cluster/`` (or ``out``): ``clusters.json``, ``assignments.csv`` (one
    row per image: ``split,index,file,label,class,cluster,probability,distance``), ``members.png`` and
    ``codes.png`` (:func:`aekit.visualization.pictures.draw_clusters`); into the run's own ``cluster/``, it
    also refreshes ``report.html`` when the run has one. Returns the paths written.
    """
    from aekit.visualization.pictures import draw_clusters

    codes, found = result.codes, result.clustering
    rows = ([*(codes[name][i].item() for name in CODE_FIELDS), int(found.labels_[i]),
             f"{found.probabilities_[i]:.6g}", f"{found.distances_[i]:.6g}"] for i in range(len(found.labels_)))
    text = _csv([*CODE_FIELDS, "cluster", "probability", "distance"], rows)
    written = run.dir.write_clusters(result.summary, text, out)
    written += draw_clusters(result, data, run.dir.cluster_dir(out), members, projection)
    if out is None and run.dir.file(RunDir.REPORT):  # the report shows the run's own clustering
        from aekit.visualization.pictures import draw_pictures

        written += draw_pictures(run, data, what=(), report=True)
    return written


CODE_FIELDS = ("split", "index", "file", "label", "class")  # what names each image, before its code


def write_codes(codes: dict[str, np.ndarray], path: str | Path) -> Path:
    r"""Write :func:`encode_split`'s codes as ``.npy`` (one structured array) or ``.csv``, atomically.

    - ``.npy``: fields ``split`` (``"train"``/``"test"``), ``index`` (position within that
      split), ``file`` (the image's path relative to the image folder; empty for other
      sources), ``label`` (int64; -1 when the data has no labels), ``class`` (its name;
      empty when unlabeled) and ``z`` (float32, ``(latent_dim,)``); loads without pickle:
      ``codes = np.load("codes.npy"); codes["z"], codes["file"]``;
    - ``.csv``: a header ``split,index,file,label,class,z0,z1,...`` then one row per image.

    A file name that is not UTF-8 is written with ``\xNN`` escapes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ConfigError(f"--out {path}: the file must end in .npy or .csv")
    z = codes["z"]
    n, d = z.shape
    if suffix == ".npy":
        width = {name: max(1, max((len(v) for v in codes[name]), default=0)) for name in ("file", "class")}
        table = np.zeros(n, dtype=[("split", "U5"), ("index", "i8"), ("file", f"U{width['file']}"), ("label", "i8"),
                                   ("class", f"U{width['class']}"), ("z", "f4", (d,))])
        for name in (*CODE_FIELDS, "z"):
            table[name] = codes[name]

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, table)
        return io.atomic_write(path, write)
    rows = ([*(codes[name][i].item() for name in CODE_FIELDS), *(f"{v:.8g}" for v in z[i])] for i in range(n))
    return io.atomic_write_text(path, _csv([*CODE_FIELDS, *(f"z{i}" for i in range(d))], rows))


__all__ = ["ClusterResult", "Run", "build_config", "cluster", "encode_split", "evaluate", "load_run",
           "save_clustering", "save_evaluation", "train", "write_codes", "write_scores"]
