"""Training and resuming: :func:`train` wires data, model, trainer and callbacks into a run directory."""

from __future__ import annotations

import contextlib
import types
from pathlib import Path
from typing import Sequence

from aekit import io
from aekit.api.load import load_run, saved_config
from aekit.api.run import Run
from aekit.config import RunConfig
from aekit.errors import ConfigError, DataError, Diverged, Interrupted, RunError
from aekit.io import Log
from aekit.resolve import build_config
from aekit.rundir import RunDir

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

        require("tensorboard", "tensorboard", "tensorboard", params=("tensorboard",))
    if resume is not None:
        if preset is not None or config is not None or out is not None:
            raise ConfigError("resume: continues the run in place with its own config; give no out, preset or config",
                              params=("resume", "out", "preset", "config"))
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
            given = {k for k, v in overrides.items() if v is not None} if resume is None and config is None else None
            data, precision = _prepare(run_dir, cfg, meta, resume is not None, world, device, progress, log, given)
            state = run_dir.load_checkpoint("checkpoint", device) if meta is not None else None
            watchers = _watchers(run_dir, data, cfg.data.scale, tensorboard, live, log) if world.main else []
            run = _fit(cfg, run_dir, data, device, precision, state, world, [*watchers, *callbacks], progress,
                       verbose, plots, log)
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
        others = sorted(given - set(RESUMABLE))
        raise ConfigError(f"resume: the run continues with its own config; only epochs, device, checkpoint_every "
                          f"and max_memory can change, not {', '.join(others)}", params=("resume", *RESUMABLE, *others))
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
        raise ConfigError(f"epochs: {run_dir.path} has trained {done} epoch(s) already; to train on, give "
                          f"more: resume={run_dir.path} epochs={done + 10}", params=("epochs", "resume", "epochs"))
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


def _prepare(run_dir: RunDir, cfg: RunConfig, meta: dict | None, resuming: bool, world, device, progress,
             log: Log, given: set | None = None):
    """Clear the run directory of killed writers' temp files, load the data (rank 0 first: it may download or
    pack), choose the precision, write config.json (and skipped.txt, the data files that could not be read).
    """
    from aekit.training.precision import choose_precision

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
    # checked before config.json is written (after auto's plan: it may pick the model); a resumed run keeps the
    # precision it started with
    recorded = meta.get("precision") if meta else run_dir.read_resolved().get("precision") if resuming else None
    precision = choose_precision(cfg, data.image_shape, device, recorded)
    if world.main:
        # a resume may have changed the epochs; the code's shape tells the report what the model's code is
        run_dir.write_config(cfg, resolved={"precision": precision, "code_shape": _code_shape(cfg, data.image_shape)})
        run_dir.write_skipped(data.skipped)
    return data, precision


def _code_shape(cfg: RunConfig, image_shape) -> list[int]:
    """The shape of one code of the model ``cfg`` builds for ``image_shape``, from a copy on torch's meta device
    (shapes, no storage, no random numbers drawn).
    """
    import torch

    from aekit.models import create_model

    with torch.device("meta"):
        return list(create_model(cfg.model, image_shape).code_shape)


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
                        f"on) and every epoch is scored on it; give a larger test_fraction (now {fraction}) "
                        "or, for a set with a split of its own, test images", params=("test_fraction",))
    if n_train == 0:
        raise DataError(f"{cfg.data.dataset}: the training split is empty ({n_test} test images); give a "
                        "smaller test_fraction or add training images", params=("test_fraction",))


def _fit(cfg: RunConfig, run_dir: RunDir, data, device, precision: str, state, world, callbacks, progress, verbose,
         plots, log) -> Run:
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
                      precision=precision, world=world, log=log if world.main else io.quiet)
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
        raise Diverged(f"{exc}; {run_dir.path} keeps {_what_is_saved(run_dir)}", params=exc.params) from None
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
    weights = "best" if x_val is not None and world.main and checkpointer.best_epoch is not None else "checkpoint"
    if weights == "best" and checkpointer.best_epoch != len(history):
        run_dir.load_weights("best", model, device)  # chosen on the validation split: what the run returns and draws
    run = Run(path=run_dir.path, config=cfg, model=model.eval(), metrics=history, data_origin=data.origin,
              weights=weights)
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
