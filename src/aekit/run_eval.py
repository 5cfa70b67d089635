"""Evaluating run directories: ``aekit.evaluate(run)``, the baseline cache, run summaries for ``compare``.

This is the wiring between a run, its data and :mod:`aekit.evaluation` (which only
computes): it loads the data, runs the model, and keeps the PCA and pixel baselines
in ``<cache>/baselines/`` so that they are computed once per dataset, code size and
settings. The CLI's ``eval``, ``encode`` and ``compare`` commands are thin layers over it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from aekit.errors import DataError, RunError
from aekit.evaluation.suite import EvalSettings, Evaluation, from_json, row_from_json, row_to_json

SPLITS = ("test", "train", "all")


class BaselineCache:
    """Baseline metrics stored as JSON files under ``root``, one per key, written atomically.

    Called as ``cache(key, compute) -> (metrics, from_cache)``: a file whose stored key
    equals ``key`` is read; otherwise ``compute()`` runs and its result is stored.
    An unreadable entry is recomputed; an unwritable cache is reported through ``log``.
    """

    def __init__(self, root: str | Path, log: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.log = log or (lambda msg: None)

    def path(self, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(key.get("dataset", "data")))[-40:]
        kind = f"{key['kind']}{key.get('latent_dim', '')}"
        return self.root / f"{stem}-{kind}-{digest}.json"

    def __call__(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        from aekit.training.checkpoint import atomic_write_text

        path = self.path(key)
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return row_from_json(stored["metrics"]), True
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # missing or unreadable: compute it again
        metrics = compute()
        try:
            atomic_write_text(path, json.dumps({"key": key, "metrics": row_to_json(metrics)}, indent=2) + "\n")
        except OSError as exc:
            self.log(f"baseline cache {self.root} not writable ({exc.strerror or exc}); not cached")
        return metrics, False


def default_baseline_dir() -> Path:
    from aekit.data import default_cache_dir

    return default_cache_dir() / "baselines"


def _log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _as_run(run, which: str):
    from aekit.api import Run, load_run

    return run if isinstance(run, Run) else load_run(run, which)


def load_run_data(run, dataset: str | None = None, data_dir: str | None = None, log=None):
    """The run's own dataset, or ``dataset``; its images must have the shape the model takes."""
    from aekit.data import load_dataset

    data = load_dataset(dataset or run.config.data.dataset, data_dir or run.config.data.data_dir, log=log)
    if tuple(data.image_shape) != tuple(run.model.input_shape):
        raise DataError(f"{dataset or run.config.data.dataset}: images are {'x'.join(map(str, data.image_shape))} "
                        f"but the run's model takes {'x'.join(map(str, run.model.input_shape))}")
    return data


def evaluate(run, dataset: str | None = None, *, data_dir: str | None = None, which: str = "checkpoint",
             settings: EvalSettings | None = None, cache: bool = True, cache_dir: str | Path | None = None,
             log: Callable[[str], None] | None = None, data=None) -> Evaluation:
    """Evaluate a run (a :class:`~aekit.api.Run` or its directory) on its dataset's test split.

    Returns the :class:`~aekit.evaluation.Evaluation`: ``summary`` (what ``aekit eval``
    writes to ``eval.json``) and the per-image reconstruction errors. PCA and pixel
    baselines come from ``cache_dir`` (default ``<aekit cache>/baselines``) when
    ``cache`` is true. ``log`` gets one progress line per section (default: stderr).
    ``data`` is the loaded dataset, when the caller already has it.

    >>> result = aekit.evaluate("runs/demo")  # doctest: +SKIP
    >>> result.summary["results"]["model"]["knn_acc"], result.summary["results"]["pca"]["knn_acc"]  # doctest: +SKIP
    """
    from aekit.evaluation import metrics, suite

    log = log or _log_to_stderr
    run = _as_run(run, which)
    data = data if data is not None else load_run_data(run, dataset, data_dir, log)
    log(f"evaluating {run.path} on {data.name} [{len(data.x_train)} train / {len(data.x_test)} test]")
    recon = metrics.to_unit(run.reconstruct(data.x_test), run.config.data.scale)
    z_train, z_test = run.encode(data.x_train), run.encode(data.x_test)
    baseline = BaselineCache(cache_dir or default_baseline_dir(), log) if cache else suite.no_cache
    label = run.config.preset or f"custom {run.config.model.model}"
    result = suite.evaluate(data, z_train, z_test, recon, settings, model_label=label, baseline=baseline,
                            log=log)
    run_info = {"path": str(run.path), "checkpoint": which, "preset": run.config.preset,
                "model": run.config.model.model, "latent_dim": run.config.model.latent_dim,
                "scale": run.config.data.scale, "trained_on": run.config.data.dataset,
                "epochs_trained": len(run.metrics)}
    result.summary = {"format": result.summary["format"], "run": run_info, **result.summary}
    return result


def encode_split(run, data, split: str = "test") -> dict[str, np.ndarray]:
    """Codes of one split (``test``, ``train`` or ``all``: train then test) with labels, split names and indices."""
    if split not in SPLITS:
        raise DataError(f"--split: {split!r} is not allowed; choose one of: {', '.join(SPLITS)}")
    parts = [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]
    parts = [p for p in parts if split in (p[0], "all")]
    return {"z": np.concatenate([run.encode(x) for _, x, _ in parts]).astype(np.float32),
            "label": np.concatenate([y for _, _, y in parts]).astype(np.int64),
            "split": np.concatenate([np.full(len(y), name) for name, _, y in parts]),
            "index": np.concatenate([np.arange(len(y)) for _, _, y in parts]).astype(np.int64)}


def read_eval(run_dir: str | Path) -> dict | None:
    """A run's ``eval.json`` as a summary dict, or ``None`` when it has none."""
    path = Path(run_dir) / "eval.json"
    if not path.exists():
        return None
    try:
        return from_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable evaluation ({exc})") from None


def summarize_run(run_dir: str | Path) -> dict:
    """What ``aekit compare`` shows of a run: config, the last epoch's metrics and ``eval.json`` if present."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory")
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: not a run directory (no config.json)") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path / 'config.json'}: unreadable ({exc})") from None
    last: dict = {}
    metrics_path = path / "metrics.jsonl"
    if metrics_path.exists():
        lines = [line for line in metrics_path.read_text().splitlines() if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
    model, data = config.get("model", {}), config.get("data", {})
    return {"run": str(run_dir), "preset": config.get("preset"), "model": model.get("model"),
            "latent_dim": model.get("latent_dim"), "epochs": last.get("epoch"), "dataset": data.get("dataset"),
            "train_test_mse": last.get("test_mse"), "eval": read_eval(path)}
