"""Evaluation summaries as text: Markdown tables that also read well in a terminal.

Data in, a string out; printing and writing files is the caller's business.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from aekit.evaluation import declared as _declared
from aekit.metric import Metric

# key -> (what it is, which way is better, format), from the declarations (aekit.evaluation.declared)
METRICS: dict[str, tuple[str, str, str]] = {m.key: (m.label, m.direction, m.fmt) for m in _declared.METRICS}


def metric_info(key: str) -> tuple[str, str, str]:
    """``(name, "lower"|"higher" is better, format)`` of a built-in metric key, semi-supervised ones included."""
    m = _declared.declared(key)
    if m is None:
        raise KeyError(key)
    return m.label, m.direction, m.fmt


def format_value(value: Any, fmt: str = ".4f") -> str:
    """A number with ``fmt``; ``inf`` as ``inf``; missing (``None``) as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, fmt)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A padded Markdown table; ``align`` holds ``l`` or ``r`` per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(3, len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                 for c, w, a in zip(cells, widths, align)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1))
                          for w, a in zip(widths, align)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _metric_keys(rows: Sequence[dict], extra: dict[str, Metric] | None = None) -> list[str]:
    """Metric keys in display order: the built-ins' declared order, then semi_<size> by size, then a model's
    own (``extra``), then any key nothing declares; std keys left out (shown beside their mean).
    """
    keys, extra = {k for row in rows for k in row}, extra or {}
    fixed = [k for k in _declared.BY_KEY if k in keys]
    semi = sorted((k for k in keys if _declared.semi_size(k) is not None), key=_declared.semi_size)
    own = [k for k in extra if k in keys and k not in fixed]
    rest = sorted(keys - set(fixed) - set(semi) - set(own) - {k for k in keys if _declared.is_std(k)})
    return fixed + semi + own + rest


def model_metrics(summary: dict) -> dict[str, Metric]:
    """The metrics a model contributed, as ``eval.json`` records them (``summary["metrics"]``)."""
    return {k: Metric.from_description(k, v) for k, v in (summary.get("metrics") or {}).items()
            if isinstance(v, dict)}


def eval_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the evaluation: one row per metric (↓ lower is better,
    ↑ higher), one column per representation. The Markdown table and the report share it.

    A key that no declaration names (an ``eval.json`` from a newer aekit, a model's metric
    recorded without its declaration) is shown under its key, with ``?`` for its direction.
    """
    reps = [r for r in ("model", "pca", "pixels") if r in summary["results"]]
    results = summary["results"]
    labels = summary.get("labels", {})
    extra = model_metrics(summary)
    rows = []
    for key in _metric_keys([results[r] for r in reps], extra):
        metric = _declared.declared(key, extra)
        name, arrow, fmt = (metric.label, metric.arrow, metric.fmt) if metric else (key, "?", ".4g")
        cells = []
        for rep in reps:
            value = results[rep].get(key)
            cell = format_value(value, fmt)
            if value is not None and f"{key}_std" in results[rep]:
                cell += " ± " + format_value(results[rep][f"{key}_std"], fmt)
            cells.append(cell)
        rows.append([f"{name} {arrow}", *cells])
    return ["metric", *(labels.get(r, r) for r in reps)], rows


def eval_title(summary: dict) -> str:
    ds = summary.get("dataset", {})
    return f"evaluation on {ds.get('name', '?')} ({ds.get('test', '?')} test images)"


def eval_table(summary: dict) -> str:
    """The evaluation as Markdown (:func:`eval_rows`), then the worst reconstructions."""
    parts = [eval_title(summary), "", markdown_table(*eval_rows(summary))]
    remarks = eval_remarks(summary)
    if remarks:
        parts += ["", *remarks]
    methods = [n for n in summary.get("notes", []) if n.startswith(("PCA-", "pixels:"))]
    if methods:
        parts += ["", *(f"{n[0].upper()}{n[1:]}." for n in methods)]
    worst = summary.get("anomaly", {}).get("worst", [])
    if worst:
        parts += ["", f"{len(worst)} worst reconstructions ({worst_heading(worst)}): {worst_items(worst)}"]
    return "\n".join(parts)


def eval_remarks(summary: dict) -> list[str]:
    """One sentence for each setting shrunk to fit the data and each section not computed, saying why.

    An ``eval.json`` from before ``shrunk`` existed holds ``skipped`` as one string.
    """
    skipped = summary.get("skipped") or []
    skipped = [skipped] if isinstance(skipped, str) else skipped
    return [f"Shrunk to fit the data: {line}." for line in summary.get("shrunk", [])] + \
        [f"Not computed: {line}." for line in skipped]


def worst_heading(worst: list[dict]) -> str:
    """What :func:`worst_items` lists for each image: test index, file (image folders), class (labelled data), MSE."""
    first = worst[0]
    return ", ".join(["test index", *(["file"] if "file" in first else []),
                      *(["class"] if "class" in first else ["label"] if "label" in first else []), "MSE"])


def worst_items(worst: list[dict]) -> str:
    """The worst reconstructions of a summary as ``#index file (class name, MSE)``; each part the data has.

    An ``eval.json`` written before images had names gives ``#index (label 3, MSE)``.
    """
    def item(w: dict) -> str:
        name = f"class {w['class']}" if "class" in w else f"label {w['label']}" if "label" in w else None
        return (f"#{w['index']}" + (f" {w['file']}" if "file" in w else "") + " ("
                + (f"{name}, " if name is not None else "") + f"{w['error']:.4f})")

    return ", ".join(item(w) for w in worst)


# --------------------------------------------------------------------------- several runs

RUN_COLUMNS = ("run", "preset", "model", "latent_dim", "epochs", "dataset", "train_test_mse", "eval_dataset")


def compare_rows(entries: Sequence[dict]) -> tuple[list[str], list[dict]]:
    """Columns and one flat row per run, from entries made by :meth:`aekit.rundir.RunDir.summary`.

    The run columns (:data:`RUN_COLUMNS`) come first, then the model's evaluation
    metrics (``None`` where a run has no ``eval.json``), then the PCA baseline's MSE
    (and masked MSE when a run has RGBA images) and kNN accuracy for reference.
    """
    evals = [e["eval"]["results"]["model"] for e in entries if e.get("eval")]
    metric_keys = _metric_keys(evals, own_metrics(entries))
    pca_keys = ["mse", *(["masked_mse"] if any("masked_mse" in row for row in evals) else []), "knn_acc"]
    columns = [*RUN_COLUMNS, *metric_keys, *(f"pca_{k}" for k in pca_keys)]
    rows = []
    for e in entries:
        ev = e.get("eval") or {}
        model = ev.get("results", {}).get("model", {})
        pca = ev.get("results", {}).get("pca", {})
        row = {c: e.get(c) for c in RUN_COLUMNS}
        row["eval_dataset"] = ev.get("dataset", {}).get("name")
        row.update({k: model.get(k) for k in metric_keys})
        row.update({f"pca_{k}": pca.get(k) for k in pca_keys})
        rows.append(row)
    return columns, rows


def own_metrics(entries: Sequence[dict]) -> dict[str, Metric]:
    """The metrics the runs' models contributed (recorded in their ``eval.json``), by key."""
    return {k: m for e in entries if e.get("eval") for k, m in model_metrics(e["eval"]).items()}


def _column_metric(column: str, own: dict[str, Metric] | None = None) -> tuple[str, str] | None:
    """``(better, format)`` of a metric column of :func:`compare_rows` (``own``: the models' own metrics, by
    key); ``None`` for the run columns. A metric column nothing declares has ``"?"`` for its direction.
    """
    if column == "train_test_mse":
        return "lower", ".5f"
    if column in RUN_COLUMNS:
        return None
    metric = _declared.declared(column.removeprefix("pca_"), own)
    return (metric.direction, metric.fmt) if metric else ("?", ".4g")


def sort_rows(rows: list[dict], key: str, own: dict[str, Metric] | None = None) -> list[dict]:
    """Best first by a metric column (each metric knows its direction; ``own``: the models' own metrics,
    :func:`own_metrics`), runs without a value last; other columns, and metrics nothing declares, sort in
    ascending order.
    """
    metric = _column_metric(key, own)
    if metric is None or metric[0] == "?":
        return sorted(rows, key=lambda r: (r.get(key) is None, str(r.get(key))))
    sign = -1 if metric[0] == "higher" else 1
    return sorted(rows, key=lambda r: (r.get(key) is None, sign * (r.get(key) or 0.0)))


def compare_table(columns: Sequence[str], rows: Sequence[dict], own: dict[str, Metric] | None = None) -> str:
    """Markdown table of :func:`compare_rows`' output; metric headers are the metric keys."""
    fmts = {c: (_column_metric(c, own) or (None, "d"))[1] for c in columns}
    body = [[format_value(r.get(c), fmts[c]) for c in columns] for r in rows]
    align = "".join("r" if c in ("latent_dim", "epochs") or _column_metric(c, own) else "l" for c in columns)
    return markdown_table(list(columns), body, align)
