"""Evaluating a run: :func:`evaluate` and :func:`save_evaluation` (``eval.json``, ``worst.png``)."""

from __future__ import annotations

from pathlib import Path

from aekit import io
from aekit.api.load import _as_run
from aekit.api.run import Run
from aekit.io import Log
from aekit.rundir import RunDir


def evaluate(run, dataset: str | None = None, *, data_dir: str | None = None, which: str = "auto",
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
    own = _model_metrics(run)  # checked before the slow part
    data = data if data is not None else run.load_data(log, dataset, data_dir)
    log(f"evaluating {run.path} on {data.name} [{len(data.x_train)} train / {len(data.x_test)} test]")
    log("encoding and reconstructing with the model ...")
    recon = to_unit(run.reconstruct(data.x_test), run.scale)
    z_train, z_test = run.encode(data.x_train), run.encode(data.x_test)
    baseline = BaselineCache(cache_dir, log) if cache else suite.no_cache
    label = run.config.preset or f"custom {run.config.model.model}"
    result = suite.evaluate(data, z_train, z_test, recon, settings, model_label=label, baseline=baseline,
                            log=log, progress=sys.stderr.isatty() if progress is None else progress)
    run_info = {"path": str(run.path), "checkpoint": run.weights, "preset": run.config.preset,
                "model": run.config.model.model, "latent_dim": run.config.model.latent_dim,
                "scale": run.scale, "trained_on": run.config.data.dataset,
                "epochs_trained": len(run.metrics)}
    result.summary = {"format": result.summary["format"], "run": run_info, **result.summary}
    _add_model_metrics(result.summary, own, run, data, log)
    worst = result.summary.get("anomaly", {}).get("worst", [])
    worst[:] = [_named(w, data) for w in worst]
    return result


def _model_metrics(run: Run) -> list:
    """The metrics the run's model declares (``model.metrics()``), checked: ``needs="model"`` with a function,
    keys of their own (not a built-in's, not repeated).
    """
    from aekit.errors import EvalError
    from aekit.evaluation.declared import declared
    from aekit.metric import Metric

    own, seen = list(run.model.metrics()), set()
    for metric in own:
        where = f"{run.model.name}'s metric {getattr(metric, 'key', metric)!r}"
        if not isinstance(metric, Metric):
            raise EvalError(f"{where}: metrics() must return aekit.metric.Metric declarations")
        if metric.needs != "model" or not callable(metric.function):
            raise EvalError(f"{where}: a model's own metric needs the model (needs='model') and a "
                            "function(run, data) -> float")
        if declared(metric.key) is not None or metric.key in seen:
            raise EvalError(f"{where}: the key of {'a built-in metric' if metric.key not in seen else 'another'}; "
                            "name it another way")
        seen.add(metric.key)
    return own


def _add_model_metrics(summary: dict, own: list, run: Run, data, log: Log) -> None:
    """The model's own metrics (:func:`_model_metrics`) computed on ``data`` into the model's results row, with
    their declarations in ``summary["metrics"]`` for the table, the report and ``aekit compare``.
    """
    import math
    import time

    from aekit.errors import EvalError

    for metric in own:
        log(f"{metric.label} ({run.model.name}'s own metric) ...")
        start = time.perf_counter()
        try:
            value = float(metric.function(run, data))
        except (ValueError, TypeError, ArithmeticError, RuntimeError) as exc:
            raise EvalError(f"{run.model.name}'s metric {metric.key} failed ({type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from exc
        if math.isnan(value):
            raise EvalError(f"{run.model.name}'s metric {metric.key} is NaN")
        summary["results"]["model"][metric.key] = value
        log(f"  {metric.label}: {time.perf_counter() - start:.1f}s")
    if own:
        summary["metrics"] = {m.key: m.describe() for m in own}


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
