"""``report.html``: one self-contained page per run.

The page is a list of sections, each made by a function ``(ReportInputs) -> Section | None``
that returns ``None`` when what it shows is not in the run. :data:`SECTIONS` holds the
built-in ones in page order; pass your own list to :func:`build_report` to add one, or
use :func:`json_table_section` to show any JSON file of the run as a table.

Everything is inline: images as base64 data URIs, plotly.js inside a ``<script>``,
CSS in a ``<style>``; no fonts, scripts or styles come from anywhere else, so the page
opens from disk with no server and makes no network request.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aekit.errors import AekitError, RunError
from aekit.io import atomic_write_text, read_json, read_json_object
from aekit.rundir import RunDir


@dataclass
class ReportInputs:
    """What the sections draw from: the run directory and what was read from it."""

    run_dir: Path
    config: dict
    metrics: list[dict] = field(default_factory=list)
    latent_figure: Any = None  # a plotly Figure: shown interactive; without it, latent.png is shown

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, latent_figure=None) -> "ReportInputs":
        rd = RunDir.open(run_dir)
        return cls(rd.path, rd.read_config(), rd.read_metrics(), latent_figure)

    def file(self, name: str) -> Path | None:
        path = self.run_dir / name
        return path if path.is_file() else None


@dataclass
class Section:
    title: str
    body: str  # HTML
    id: str = ""


SectionMaker = Callable[[ReportInputs], "Section | None"]


# --------------------------------------------------------------------------- helpers

def data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".svg": "image/svg+xml"}[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _img(path: Path, alt: str, css: str = "") -> str:
    return f'<img src="{data_uri(path)}" alt="{html.escape(alt)}" class="{css}">'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) or "none"
    if value is None:
        return "–"
    return str(value)


def json_table(obj: Any) -> str:
    """Any JSON value as HTML: a mapping of scalars is a two-column table, a list of
    mappings (or a mapping of mappings) a table with a column per key, and deeper
    nesting a table inside a cell.
    """
    def is_scalar(v):
        return not isinstance(v, (dict, list))

    if is_scalar(obj):
        return html.escape(_fmt(obj))
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        rows = [("", r) for r in obj]
        index = False
    elif isinstance(obj, dict) and obj and all(isinstance(r, dict) for r in obj.values()):
        rows = list(obj.items())
        index = True
    elif isinstance(obj, dict):
        body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{json_table(v)}</td></tr>" for k, v in obj.items())
        return f'<table class="kv">{body}</table>'
    else:  # a list of scalars or mixed values
        return html.escape(", ".join(_fmt(v) if is_scalar(v) else json.dumps(v) for v in obj))
    columns: list[str] = []
    for _, r in rows:
        columns += [k for k in r if k not in columns]
    head = ("<th></th>" if index else "") + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + (f"<th>{html.escape(str(name))}</th>" if index else "")
        + "".join(f"<td>{json_table(r.get(c))}</td>" for c in columns) + "</tr>"
        for name, r in rows)
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# --------------------------------------------------------------------------- sections

def summary_section(inp: ReportInputs) -> Section:
    cfg, metrics = inp.config, inp.metrics
    model, data, train = cfg.get("model", {}), cfg.get("data", {}), cfg.get("train", {})
    facts = {
        "preset": cfg.get("preset") or "custom",
        "model": _architecture(model, inp.config.get("resolved", {}).get("code_shape")),
        "data": f"{data.get('dataset', '?')} ({data.get('scale', '?')} pixels)",
        "epochs": f"{len(metrics)} of {train.get('epochs', '?')}",
    }
    if metrics:
        best = min(metrics, key=lambda m: m.get("test_loss", float("inf")))
        facts["final test loss"] = _fmt(metrics[-1].get("test_loss"))
        facts["best test loss"] = f"{_fmt(best.get('test_loss'))} (epoch {best['epoch']})"
        facts["training time"] = f"{sum(m.get('seconds', 0) for m in metrics):.1f} s"
    skipped = RunDir(inp.run_dir).read_skipped()
    if skipped:
        facts["data files skipped"] = f"{len(skipped)} unreadable (listed in {RunDir.SKIPPED})"
    cells = "".join(f'<div class="fact"><div class="k">{html.escape(k)}</div>'
                    f'<div class="v">{html.escape(v)}</div></div>' for k, v in facts.items())
    return Section("Summary", f'<div class="facts">{cells}</div>', "summary")


def _architecture(model: dict, code_shape=None) -> str:
    """The network that was trained, from the config's model fields.

    Every config holds ``hidden``, but a conv body does not use it: what it trained is
    its ``channels``. The ``conv`` model always has a conv body; the variants
    (denoising, sparse, contractive, vae) name theirs in ``arch``.
    """
    name = model.get("model", "?")
    arch = model.get("arch")
    if "channels" in model and (arch or "conv") == "conv":
        body = f"channels {_fmt(model.get('channels'))} ({model.get('conv_decoder', 'subpixel')} decoder)"
    else:
        body = f"hidden {_fmt(model.get('hidden'))}"
    code = f"{model.get('latent_dim', '?')}-D code"
    if isinstance(code_shape, list) and len(code_shape) > 1:  # a grid (the config's latent_dim is its channels)
        code = f"{'x'.join(map(str, code_shape))} grid code ({math.prod(code_shape)} features)"
    return (f"{name}{f' ({arch} body)' if arch else ''}: {body}, {code}, "
            f"{model.get('activation', '?')}")


def training_section(inp: ReportInputs) -> Section | None:
    loss = inp.file("loss.png")
    if not inp.metrics and loss is None:
        return None
    keys = [k for k in ("epoch", "step", "train_loss", "test_loss", "test_mse", "seconds")
            if any(k in m for m in inp.metrics)]
    # the model's named loss terms (test_kl, ...; see aekit.training.trainer), after the test loss
    terms = dict.fromkeys(k for m in inp.metrics for k in m if k.startswith("test_") and k not in
                          ("test_loss", "test_recon_loss", "test_reg_loss", "test_mse"))
    if terms and "test_loss" in keys:
        at = keys.index("test_loss") + 1
        keys[at:at] = ["test_recon_loss", *terms]
    table = json_table([{k: m.get(k) for k in keys} for m in inp.metrics]) if inp.metrics else ""
    picture = _img(loss, "train and test loss per epoch", "wide") if loss else ""
    return Section("Training", f'<div class="row"><div>{picture}</div>'
                               f'<div class="scroll">{table}</div></div>', "training")


def recon_section(inp: ReportInputs) -> Section | None:
    gif, png = inp.file("recon.gif"), inp.file("recon.png")
    if gif:
        return Section("Reconstructions during training", _img(gif, "reconstructions during training", "pixel")
                       + '<p class="note">Fixed test images: originals on top, reconstructions below. '
                         "Frames are denser in the first epoch, where the pictures change fastest.</p>",
                       "recon")
    if png:
        return Section("Reconstructions", _img(png, "reconstructions", "wide"), "recon")
    return None


def latent_section(inp: ReportInputs) -> Section | None:
    static = inp.file("latent.png")
    if inp.latent_figure is not None:
        from aekit.visualization.interactive import figure_html

        body = figure_html(inp.latent_figure, full_html=False)
        body += '<p class="note">Drag to rotate (3-D) or zoom; hover a point for its class (or cluster) and test ' \
                "image; click one in the legend to hide it, double-click to show it alone.</p>"
    elif static:
        body = _img(static, "latent codes", "wide")
    else:
        return None
    return Section("The codes", body, "latent")


def pictures_section(inp: ReportInputs) -> Section | None:
    shown = [(name, alt) for name, alt in (("latent.png", "the codes, static"),
                                           ("manifold.png", "decoder output over the code plane"))
             if inp.file(name) and not (name == "latent.png" and inp.latent_figure is None)]
    if not shown:
        return None
    cells = "".join(f"<figure>{_img(inp.run_dir / n, alt, 'wide')}<figcaption>{html.escape(alt)}</figcaption>"
                    f"</figure>" for n, alt in shown)
    title = "Code map and manifold" if len(shown) == 2 else "Code map"
    return Section(title, f'<div class="row">{cells}</div>', "pictures")


def json_table_section(filename: str, title: str) -> SectionMaker:
    """A section showing ``<run>/<filename>`` (any JSON) as a table, when the file exists."""
    def make(inp: ReportInputs) -> Section | None:
        path = inp.file(filename)
        if path is None:
            return None
        try:
            obj = read_json(path)
        except RunError as exc:  # not JSON, not UTF-8, unreadable: say so in the page, draw the rest
            return Section(title, f'<p class="note">{html.escape(str(exc))}.</p>')
        return Section(title, f'<div class="scroll">{json_table(obj)}</div>', Path(filename).stem)

    return make


def evaluation_section(inp: ReportInputs) -> Section | None:
    """``eval.json`` (from ``aekit eval``) as the metric table, with the worst reconstructions."""
    from aekit.evaluation.table import eval_remarks, eval_rows, eval_title, worst_heading, worst_items

    if inp.file(RunDir.EVAL) is None:
        return None
    try:
        summary = RunDir(inp.run_dir).read_eval()
        headers, rows = eval_rows(summary)
    except (RunError, KeyError, TypeError, AttributeError) as exc:
        return Section("Evaluation", f'<p class="note">eval.json could not be read ({html.escape(str(exc))}).</p>',
                       "eval")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    out = (f'<p class="note">{html.escape(eval_title(summary))}; ↓ lower is better, ↑ higher is better. '
           "PCA has the model's code size and is fitted on the training split.</p>"
           f'<table class="grid eval"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    out += "".join(f'<p class="note">{html.escape(line)}</p>' for line in eval_remarks(summary))
    worst = summary.get("anomaly", {}).get("worst", [])
    picture = inp.file("worst.png")
    if worst:
        heading = worst_heading(worst)
        out += (f"<h3>The {len(worst)} worst reconstructions</h3>"
                + (_img(picture, "worst reconstructions", "pixel") if picture else "")
                + f'<p class="note">{html.escape(heading[0].upper() + heading[1:])}: '
                  f"{html.escape(worst_items(worst))}. Each row: the test image, its reconstruction, what "
                  "names it.</p>")
    return Section("Evaluation", out, "eval")


def clustering_section(inp: ReportInputs) -> Section | None:
    """``cluster/clusters.json`` (from ``aekit cluster``): how k was chosen, the sizes, the scores, the pictures."""
    try:
        summary = RunDir(inp.run_dir).read_clusters()
    except RunError as exc:
        return Section("Clusters", f'<p class="note">{html.escape(str(exc))}</p>', "clusters")
    if summary is None:
        return None
    try:
        data, sizes = summary["data"], summary["sizes"]
        out = (f'<p>{data["images"]:,} images ({html.escape(str(data["split"]))}) in {summary["k"]} clusters by '
               f'{html.escape(summary["method_name"])}; {html.escape(summary["why_k"])}.</p>'
               f'<p class="note">Sizes: {html.escape(", ".join(f"{c}: {n:,}" for c, n in enumerate(sizes)))}. '
               "Each image's cluster is in cluster/assignments.csv.</p>")
        if summary.get("scores"):
            out += ('<p class="note">Against the labels (which the clustering never saw), with the same k:</p>'
                    + json_table({name: {"accuracy": r["acc"], "NMI": r["nmi"], "ARI": r["ari"]}
                                  for name, r in summary["scores"].items()}))
    except (KeyError, TypeError, ValueError) as exc:
        return Section("Clusters", f'<p class="note">clusters.json could not be read ({html.escape(repr(exc))}).</p>',
                       "clusters")
    for name, alt, css in (("members.png", "each cluster's most typical members (left) and least typical (right)",
                            "pixel"), ("codes.png", "the codes coloured by cluster", "wide")):
        picture = inp.file(f"{RunDir.CLUSTER}/{name}")
        if picture:
            out += f"<figure>{_img(picture, alt, css)}<figcaption>{html.escape(alt)}</figcaption></figure>"
    return Section("Clusters", out, "clusters")


def few_labels_section(inp: ReportInputs) -> Section | None:
    """``fewlabels.json`` (from ``aekit fewlabels``): test accuracy from N labels, next to the probes."""
    path = inp.file("fewlabels.json")
    if path is None:
        return None
    try:
        summary = read_json_object(path, "few labels")
        out = (f'<p>Test accuracy from {summary["labels"]:,} labelled training images (drawn class-balanced, '
               f'seed {summary["seed"]}) and all {summary["train_images"] + summary["test_images"]:,} images '
               "unlabelled:</p>" + json_table({name: {"accuracy": acc} for name, acc in summary["scores"].items()}))
    except (AekitError, KeyError, TypeError, ValueError) as exc:
        return Section("Few labels", f'<p class="note">fewlabels.json could not be read ({html.escape(str(exc))}).'
                                     "</p>", "fewlabels")
    return Section("Few labels", out, "fewlabels")


def config_section(inp: ReportInputs) -> Section:
    parts = "".join(f"<div><h3>{html.escape(name)}</h3>{json_table(inp.config[name])}</div>"
                    for name in ("data", "model", "train") if isinstance(inp.config.get(name), dict))
    rerun = f"aekit train --config {inp.run_dir / 'config.json'}"
    return Section("Configuration", f'<div class="row three">{parts}</div>'
                                    f'<p class="note">Re-run: <code>{html.escape(rerun)}</code></p>', "config")


SECTIONS: list[SectionMaker] = [
    summary_section, training_section, recon_section, latent_section, pictures_section,
    evaluation_section, clustering_section, few_labels_section, config_section,
]


# --------------------------------------------------------------------------- page

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #dfe3ea; --bg: #f5f7fa; --accent: #3451b2; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; }
header .sub { color: #b8c0d0; font-size: 13px; }
nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid var(--line); font-size: 14px; }
nav a { color: var(--accent); margin-right: 16px; text-decoration: none; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
          margin: 16px 0; }
h2 { margin: 0 0 12px; font-size: 18px; font-weight: 600; }
h3 { margin: 4px 0 6px; font-size: 14px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 10px 24px; }
.fact .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.fact .v { font-size: 15px; font-weight: 500; }
.row { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 20px; align-items: start; }
.row.three { grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); }
img.wide { width: 100%; height: auto; }
img.pixel { width: 100%; max-width: 1000px; image-rendering: pixelated; }
figure { margin: 0; }
figure img.wide { max-width: 640px; }
figcaption, .note { color: var(--muted); font-size: 13px; }
.scroll { max-height: 420px; overflow: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
table.eval tbody th { text-align: left; font-weight: 500; }
table.grid th, table.grid td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; }
table.grid thead th { position: sticky; top: 0; background: #fff; border-bottom: 2px solid var(--line); }
table.kv th { text-align: left; padding: 3px 16px 3px 0; color: var(--muted); font-weight: 500; }
table.kv td { padding: 3px 0; }
code { background: var(--bg); padding: 2px 6px; border-radius: 4px; font-size: 13px; }
"""


def build_report(inputs: ReportInputs, sections: list[SectionMaker] | None = None) -> str:
    """The page's HTML: each section maker in order, those that return ``None`` left out."""
    made = [s for s in (make(inputs) for make in (SECTIONS if sections is None else sections)) if s is not None]
    for i, s in enumerate(made):
        s.id = s.id or f"section-{i}"
    name = inputs.run_dir.resolve().name
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in made)
    body = "".join(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>{s.body}</section>' for s in made)
    when = time.strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>aekit run {html.escape(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>aekit run {html.escape(name)}</h1>"
            f'<div class="sub">{html.escape(str(inputs.run_dir))} · report made {when}</div></header>'
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")


def write_report(run_dir: str | Path, latent_figure=None, sections: list[SectionMaker] | None = None) -> Path:
    """Write ``<run_dir>/report.html`` from what is in the run directory; returns its path."""
    inputs = ReportInputs.from_run_dir(run_dir, latent_figure)
    path = inputs.run_dir / RunDir.REPORT
    atomic_write_text(path, build_report(inputs, sections))
    return path
