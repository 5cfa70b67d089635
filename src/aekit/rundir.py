"""The run directory: one object owns every file ``aekit train`` writes and the other commands read.

::

    runs/<name>/
      config.json              the resolved config (``aekit train --config`` re-runs it), and in ``resolved``
                               what it came to here (the precision ``auto`` chose)
      metrics.jsonl            one JSON line per epoch
      checkpoint.safetensors   the last saved state: weights, optimiser, RNG states, loop position, history
      best.safetensors         weights of the epoch with the lowest test loss
      recon/, *.png, *.html    pictures (:mod:`aekit.visualization`)
      eval.json                from ``aekit eval``
      cluster/                 from ``aekit cluster``: clusters.json, assignments.csv, members.png, codes.png
      skipped.txt              the data files that could not be read and were left out (only when some were)
      tensorboard/             TensorBoard event files (``--tensorboard`` without a directory)
      export/                  ONNX or TorchScript files (``aekit export``)
      .lock                    held by the one process that writes the run

:class:`RunDir` knows the paths and reads and writes these files: the API, the
evaluation, the report and the CLI all go through it.

A checkpoint is one file: the tensors in safetensors, and everything else as JSON in
its metadata (so it is written and renamed as one atomic unit, and its metadata reads
without torch). ``metrics.jsonl`` is written after the checkpoint and may run ahead of
it after a kill; :meth:`RunDir.read_metrics` reconciles the two, and the checkpoint's
history wins.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import struct
import time
from pathlib import Path
from typing import Any, Iterator

from aekit import io, limits
from aekit.errors import AekitError, ConfigError, RunError

CHECKPOINT_FORMAT = "aekit-checkpoint/2"
OLD_CHECKPOINT_FORMAT = "aekit-checkpoint/1"  # weights .safetensors + a .json beside it; read, never written
WHICH = ("checkpoint", "best")  # the saved weights a command can pick
WHICH_CHOICES = ("auto", *WHICH)  # auto: best where a validation split chose it, else checkpoint
_META_KEY = "aekit"
_MAX_HEADER = 100 << 20  # a safetensors header larger than this is a damaged file


class RunDir:
    """A run directory at ``path``. Making the object touches no file.

    >>> rd = RunDir.open("runs/demo")  # doctest: +SKIP
    >>> rd.read_metrics()[-1]["test_loss"]  # doctest: +SKIP
    """

    CONFIG = "config.json"
    RESOLVED = "resolved"  # the section of config.json with what the settings came to (the precision used)
    METRICS = "metrics.jsonl"
    EVAL = "eval.json"
    REPORT = "report.html"
    RECON = "recon"
    SKIPPED = "skipped.txt"
    TENSORBOARD = "tensorboard"
    EXPORT = "export"  # aekit export's default --out
    CLUSTER = "cluster"
    CLUSTERS = "clusters.json"
    ASSIGNMENTS = "assignments.csv"
    LOCK = ".lock"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run directory; a missing one is a :class:`RunError`."""
        path = io.check_path(path, "run directory")
        try:
            found = path.is_dir()
        except OSError as exc:  # a parent we may not enter, a loop of links
            raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if not found:
            raise RunError(f"{path}: no such run directory")
        return cls(path)

    @classmethod
    def new_path(cls, out: str | Path | None, name: str) -> Path:
        """Where a new run goes: ``out``, or ``runs/<name>-<time>`` (made unique) when ``out`` is ``None``."""
        if out is None:
            stem = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
            path, k = stem, 1
            while path.exists():
                k += 1
                path = stem.with_name(f"{stem.name}-{k}")
            return path
        if not str(out).strip():
            raise ConfigError("out: an empty path; give the run directory a name", params=("out",))
        path = io.check_path(out, "out", params=("out",))
        if os.path.lexists(path) and not os.path.isdir(path):
            raise ConfigError(f"out {path}: exists and is not a directory", params=("out",))
        return path

    def check_new(self) -> None:
        """Refuse to start a new run here unless the directory is missing or empty.

        Empty also when all it holds is what a killed aekit start left (its ``.lock``, its
        temp files): aekit writes a run only where it can never overwrite, mix with or
        later sweep up a file it did not write.
        """
        where = f"out {self.path}"  # the parameter that named it: the CLI prints --out (AekitError.params)
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return
        except NotADirectoryError:
            raise ConfigError(f"{where}: exists and is not a directory", params=("out",)) from None
        except OSError as exc:
            raise io.WriteError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if self.holds_run():
            raise ConfigError(f"{where}: already holds a run; choose another directory, remove it, or continue "
                              f"it with resume={self.path}", params=("out", "resume"))
        others = sorted(e.name for e in entries if not self._left_by_aekit(e))
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise ConfigError(f"{where}: holds other files ({shown}) and is not an aekit run; a run goes into a new "
                              f"or empty directory, such as {self.path / 'run'}", params=("out",))

    def _left_by_aekit(self, entry: os.DirEntry) -> bool:
        """A killed aekit's leftover: a temp file it named, or a lock file holding nothing but a process id."""
        if io.temp_file_pid(entry.name) is not None:
            return True
        if entry.name != self.LOCK or not entry.is_file(follow_symlinks=False):
            return False
        try:
            with open(entry.path, "rb") as f:
                return re.fullmatch(rb"(\d+\n)?", f.read(32)) is not None
        except OSError:
            return False

    def holds_run(self) -> bool:
        return (self.path / self.CONFIG).exists()

    def file(self, name: str) -> Path | None:
        """``path / name`` if that file exists, else ``None``."""
        path = self.path / name
        return path if path.is_file() else None

    # ----------------------------------------------------------------- one writer

    @contextlib.contextmanager
    def writing(self, new: bool = False) -> Iterator["RunDir"]:
        """Hold the run's lock (:meth:`lock`) to write it; with ``new``, a new run starts here.

        A new run goes only into a missing or empty directory (:meth:`check_new`); if it
        fails before it saved any weights, what it wrote is removed (:meth:`discard`) with
        the directories it made, so the same ``--out`` works again.
        """
        made = io.missing_dirs(self.path) if new else []
        if new:
            self.check_new()  # before the lock, which would truncate a user's own .lock
        try:
            with self.lock():
                if new:
                    self.check_new()  # again: another process may have started a run here meanwhile
                try:
                    yield self
                except BaseException:
                    if new:
                        self.discard()
                    raise
        except BaseException:
            for directory in made:  # deepest first, each only while empty: nothing of anyone else's goes
                try:
                    directory.rmdir()
                except OSError:
                    break
            raise

    @contextlib.contextmanager
    def lock(self) -> Iterator["RunDir"]:
        """Hold the run's writer lock; a second writer gets a :class:`RunError` naming the holder's pid.

        The lock is an ``flock`` on ``.lock``, so the system releases it when its holder
        dies, even by ``kill -9``: a stale lock needs no cleaning. The holder removes the
        file when it is done; a process that locked a file just removed retries on the new one.
        """
        try:
            import fcntl
        except ImportError:  # no flock (Windows): run without a lock rather than not at all
            yield self
            return
        path = self.path / self.LOCK
        fd = self._locked_fd(path, fcntl)
        try:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as exc:  # a full disk has room for the file's name, not for its 8 bytes
                raise io.WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
            yield self
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)  # releases the flock

    def _locked_fd(self, path: Path, fcntl) -> int:
        for _ in range(100):
            try:
                io.make_dirs(self.path)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise io.WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunError(f"{self.path}: another aekit process (pid {holder}) is writing this run; wait "
                               "for it to finish, or choose another out", params=("out",)) from None
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd  # the file we locked is still the lock file
            except FileNotFoundError:
                pass  # its holder removed it while we waited for the lock: take the new one
            os.close(fd)
        raise RunError(f"{path}: could not take the run's lock")

    def remove_stale_temp_files(self) -> list[Path]:
        """Remove the temp files of aekit writers that were killed, in the run's top level and its own folders
        (``recon/``, ``export/``, ``cluster/``).

        Only files named as aekit names its temp files, by a process that no longer runs
        (see :func:`aekit.io.remove_stale_temp_files`); nothing in any other folder.
        """
        return [removed for folder in (self.path, self.path / self.RECON, self.path / self.EXPORT,
                                                      self.path / self.CLUSTER)
                for removed in io.remove_stale_temp_files(folder)]

    def discard(self) -> bool:
        """Undo a new run that failed before it saved any weights; ``False`` (nothing done) when it saved some.

        Removes what a run writes before its first checkpoint: config, metrics, the skipped
        list, the snapshot and TensorBoard folders and aekit's stale temp files. Only for a
        run that holds the lock on a directory :meth:`check_new` found empty.
        """
        if any(_may_exist(self.checkpoint(which)) for which in WHICH):
            return False
        for name in (self.CONFIG, self.METRICS, self.SKIPPED):
            with contextlib.suppress(OSError):
                (self.path / name).unlink()
        for name in (self.RECON, self.TENSORBOARD):
            shutil.rmtree(self.path / name, ignore_errors=True)
        self.remove_stale_temp_files()
        return True

    # ----------------------------------------------------------------- config

    def write_config(self, config, resolved: dict[str, Any] | None = None) -> Path:
        """Write a :class:`~aekit.config.RunConfig` as ``config.json``, with ``resolved``: what the run's
        settings came to on this machine (``{"precision": "bf16"}`` for ``precision auto``), a section
        of its own that ``aekit train --config`` reads past (a re-run resolves its settings anew).
        """
        if not resolved:
            return io.atomic_write_text(self.path / self.CONFIG, config.to_json())
        text = json.dumps({**config.to_dict(), self.RESOLVED: resolved}, indent=2) + "\n"
        return io.atomic_write_text(self.path / self.CONFIG, text)

    def read_resolved(self) -> dict[str, Any]:
        """``config.json``'s ``resolved`` section; empty for a run written before it had one."""
        resolved = self.read_config().get(self.RESOLVED, {})
        return resolved if isinstance(resolved, dict) else {}

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict (the shape of ``RunConfig.to_dict()``; values not validated)."""
        if not (self.path / self.CONFIG).exists():
            raise RunError(f"{self.path}: not a run directory (no {self.CONFIG})")
        config = io.read_json_object(self.path / self.CONFIG, "run config")
        check_config_shape(config, str(self.path / self.CONFIG))
        return config

    # ----------------------------------------------------------------- skipped data files

    def write_skipped(self, skipped: list[tuple[str, str]]) -> Path | None:
        """List the data files left out, one ``path<TAB>reason`` line each, as ``skipped.txt``.

        With none, an old list is removed and ``None`` returned.
        """
        path = self.path / self.SKIPPED
        if not skipped:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return io.atomic_write_text(path, "".join(f"{_one_line(p)}\t{_one_line(r)}\n" for p, r in skipped))

    def read_skipped(self) -> list[tuple[str, str]]:
        """``skipped.txt`` as ``(path, reason)`` pairs; empty when the run skipped nothing."""
        try:
            text = (self.path / self.SKIPPED).read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RunError(f"{self.path / self.SKIPPED}: cannot read ({exc.strerror or exc})") from None
        # bytes that are not UTF-8 show as U+FFFD: the list is for reading, and one odd name must not hide the rest
        return [tuple(line.split("\t", 1)) if "\t" in line else (line, "") for line in text.splitlines() if line]

    # ----------------------------------------------------------------- metrics

    def reset_metrics(self, rows: list[dict[str, Any]] = ()) -> None:
        """Make ``metrics.jsonl`` hold exactly ``rows`` (none: an empty file), atomically."""
        io.atomic_write_text(self.path / self.METRICS, "".join(json.dumps(r) + "\n" for r in rows))

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics as a JSON line."""
        io.append_line(self.path / self.METRICS, json.dumps(row))

    def read_metrics(self, log: io.Log | None = None) -> list[dict[str, Any]]:
        """Every epoch's metrics, in order: the checkpoint's history where it has one, else ``metrics.jsonl``.

        A damaged line of ``metrics.jsonl`` (not JSON, not UTF-8) is skipped with a warning through ``log``.
        """
        rows = self._metrics_file(log or io.log)
        try:
            history = self.read_checkpoint_meta("checkpoint").get("history")
        except RunError:
            history = None
        return history if isinstance(history, list) else rows

    def _metrics_file(self, log: io.Log) -> list[dict[str, Any]]:
        path = self.path / self.METRICS
        rows, damaged = [], []
        for number, line in enumerate(io.read_lines(path), 1):
            if line is not None and not line.strip():
                continue
            try:
                row = json.loads(line) if line is not None else None
            except (json.JSONDecodeError, RecursionError):
                row = None
            if isinstance(row, dict) and isinstance(row.get("epoch"), int):
                rows.append(row)
            else:
                damaged.append(number)
        if damaged:
            log(f"warning: {path}: skipped {len(damaged)} damaged line(s) ({', '.join(map(str, damaged[:5]))})")
        return rows

    # ----------------------------------------------------------------- checkpoints

    def chosen_weights(self, which: str = "auto") -> str:
        """``which``, with ``auto`` made ``best`` for a run whose best weights a validation split chose (what
        its training returned and drew), and ``checkpoint`` (the last) for any other.
        """
        if which != "auto":
            return which
        if not self.checkpoint("best").exists():
            return "checkpoint"
        try:  # a damaged or missing config.json is for loading the run to report, not for this choice
            val = float(self.read_config().get("train", {}).get("val_fraction") or 0)
        except (AekitError, TypeError, ValueError, AttributeError):
            val = 0.0
        return "best" if val > 0 else "checkpoint"

    def checkpoint(self, which: str = "checkpoint") -> Path:
        """The file of the saved state ``which``: ``checkpoint`` (the last) or ``best`` (lowest test loss)."""
        if which not in WHICH:
            raise ConfigError(f"which: {which!r} is not allowed; choose {' or '.join(WHICH)}")
        return self.path / f"{which}.safetensors"

    def save_checkpoint(self, which: str, tensors: dict, meta: dict[str, Any]) -> Path:
        """Write ``tensors`` (name -> tensor) and ``meta`` (JSON-able) as one safetensors file, atomically."""
        from safetensors.torch import save

        data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                    metadata={_META_KEY: json.dumps({"format": CHECKPOINT_FORMAT, **meta})})
        return io.atomic_write_bytes(self.checkpoint(which), data)

    def save_weights(self, which: str, model, meta: dict[str, Any] | None = None) -> Path:
        """A model's weights alone as checkpoint ``which`` (with its name and input shape)."""
        tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
        return self.save_checkpoint(which, tensors, {"model": model.name, "input_shape": list(model.input_shape),
                                                     "config": {}, "kind": "weights", **(meta or {})})

    def read_checkpoint_meta(self, which: str = "checkpoint") -> dict[str, Any]:
        """What a checkpoint says of itself (model, input shape, config, epoch, history, ...), read without torch."""
        path = self.checkpoint(which)
        if not path.exists():
            old = path.with_suffix(".json")
            if old.exists():
                return self._old_meta(old)
            raise RunError(f"{path}: no checkpoint here yet (a run saves one every checkpoint_every minutes "
                           "and at its end)", params=("checkpoint_every",))
        meta = _read_safetensors_meta(path)
        if meta is None:
            old = path.with_suffix(".json")
            if old.exists():
                return self._old_meta(old)
            raise RunError(f"{path}: not an aekit checkpoint (no aekit metadata)")
        check_checkpoint_meta(meta, str(path))
        return meta

    def _old_meta(self, path: Path) -> dict[str, Any]:
        meta = io.read_json(path, "checkpoint")
        if not isinstance(meta, dict) or meta.get("format") != OLD_CHECKPOINT_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise RunError(f"{path}: not an aekit checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
        check_checkpoint_meta(meta, str(path))
        return meta

    def load_checkpoint(self, which: str = "checkpoint", device="cpu") -> tuple[dict, dict[str, Any]]:
        """``(tensors, meta)`` of checkpoint ``which``; the model's weights are the tensors named ``model/...``."""
        from safetensors import SafetensorError
        from safetensors.torch import load, load_file

        meta = self.read_checkpoint_meta(which)
        path = self.checkpoint(which)
        try:
            if _is_utf8(os.fsencode(path)):
                tensors = load_file(str(path), device=str(device))
            else:  # safetensors opens only UTF-8 paths; a run may sit in a folder named otherwise
                tensors = {k: v.to(device) for k, v in load(path.read_bytes()).items()}
        except FileNotFoundError:
            raise RunError(f"{path}: checkpoint weights missing") from None
        except OSError as exc:
            raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except SafetensorError as exc:
            raise RunError(f"{path}: corrupt checkpoint ({exc})") from None
        if meta["format"] == OLD_CHECKPOINT_FORMAT:
            tensors = {f"model/{k}": v for k, v in tensors.items()}
        return tensors, meta

    def load_weights(self, which: str, model, device="cpu") -> dict[str, Any]:
        """Load checkpoint ``which``'s weights into ``model`` (they must fit it and be finite); returns its meta."""
        import torch

        tensors, meta = self.load_checkpoint(which, device)
        path = self.checkpoint(which)
        weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        expected = model.state_dict()
        wrong = sorted(set(expected) ^ set(weights)) + sorted(
            k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape)
        if wrong:
            raise RunError(f"{path}: weights do not fit the model (differing tensors: {', '.join(wrong[:5])})")
        bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise RunError(f"{path}: the weights are not finite numbers ({', '.join(bad[:3])}): the run diverged "
                           "before this checkpoint was written; train again with a lower lr", params=("lr",))
        model.load_state_dict(weights)
        return meta

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
        summary = io.read_json(path, "evaluation")
        io.check_fields(summary, {"results": dict}, str(path))
        for name, row in summary["results"].items():
            if not isinstance(row, dict):
                raise RunError(f"{path}: field 'results.{name}' should be an object, got {row!r}")
        return from_json(json.dumps(summary))

    # ----------------------------------------------------------------- clustering

    def cluster_dir(self, out: str | Path | None = None) -> Path:
        """Where ``aekit cluster`` writes: ``out``, or ``cluster/`` in the run."""
        return Path(out) if out is not None else self.path / self.CLUSTER

    def write_clusters(self, summary: dict, assignments_csv: str, out: str | Path | None = None) -> list[Path]:
        """Write a clustering's ``clusters.json`` and ``assignments.csv`` into :meth:`cluster_dir`, atomically."""
        directory = self.cluster_dir(out)
        return [io.atomic_write_json(directory / self.CLUSTERS, summary),
                io.atomic_write_text(directory / self.ASSIGNMENTS, assignments_csv)]

    def read_clusters(self) -> dict | None:
        """``cluster/clusters.json``, or ``None`` when the run has not been clustered."""
        path = self.path / self.CLUSTER / self.CLUSTERS
        return io.read_json_object(path, "clustering") if path.is_file() else None

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


def _may_exist(path: Path) -> bool:
    """Whether ``path`` exists, or may: only a missing file or a name too long to be one says no."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        return exc.errno != errno.ENAMETOOLONG
    return True


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _one_line(text) -> str:
    """``text`` with tabs and line breaks as spaces: a file name may hold them, a line of the list may not.

    Bytes of a name that are not UTF-8 become backslash escapes (see :func:`aekit.io.printable`).
    """
    return io.printable(str(text)).translate({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})


def check_config_shape(config: Any, where: str) -> None:
    """A config's sections must be objects and its preset a name; values are checked when it is resolved."""
    io.check_fields(config, {}, where)
    for section in ("data", "model", "train"):
        if section in config and not isinstance(config[section], dict):
            raise RunError(f"{where}: field {section!r} should be an object, got {config[section]!r}")
    if not isinstance(config.get("preset"), (str, type(None))):
        raise RunError(f"{where}: field 'preset' should be a preset name or null, got {config['preset']!r}")


def check_checkpoint_meta(meta: Any, where: str) -> None:
    io.check_fields(meta, {"format": str, "model": str, "input_shape": list, "config": dict}, where)
    shape = meta["input_shape"]
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise RunError(f"{where}: field 'input_shape' should be three positive integers (C, H, W), got {shape!r}")
    too_many = limits.IMAGE_PIXELS.exceeded(shape[1] * shape[2])
    if shape[0] > limits.MAX_CHANNELS or too_many:
        raise RunError(f"{where}: field 'input_shape' {'x'.join(map(str, shape))} is out of range: at most "
                       f"{limits.MAX_CHANNELS} channels and {limits.IMAGE_PIXELS.value():,} pixels per image")
    check_config_shape(meta["config"], f"{where}: field 'config'")
    if "history" in meta and not isinstance(meta["history"], list):
        raise RunError(f"{where}: field 'history' should be a list, got {meta['history']!r}")


def _read_safetensors_meta(path: Path) -> dict | None:
    """The JSON aekit keeps in a safetensors file's header, or ``None`` when it holds none.

    A safetensors file starts with an 8-byte little-endian header length and the header
    as JSON, whose ``__metadata__`` maps strings to strings: reading it needs no torch.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            (size,) = struct.unpack("<Q", head) if len(head) == 8 else (None,)
            if size is None or size > _MAX_HEADER:
                raise RunError(f"{path}: corrupt checkpoint (not a safetensors file)")
            header = json.loads(f.read(size))
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise RunError(f"{path}: corrupt checkpoint (its header is not valid JSON)") from None
    text = header.get("__metadata__", {}).get(_META_KEY) if isinstance(header, dict) else None
    if text is None:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise RunError(f"{path}: corrupt checkpoint (its aekit metadata is not valid JSON)") from None
