"""A metric is declared once: eval.json, the table, the report and ``aekit eval --help`` come from its declaration,
and a model can add metrics of its own.
"""

import json
import shutil

import numpy as np
import pytest

import aekit
from aekit.api import save_evaluation
from aekit.evaluation import EvalSettings, eval_table
from aekit.evaluation.declared import ALPHA_ONLY, METRICS, SEMI, declared
from aekit.evaluation.table import eval_rows
from aekit.metric import Metric


def _mean_code_norm(run, data):
    """A model's own metric: the mean length of the test codes (the model's encoder does the work)."""
    return float(np.linalg.norm(run.encode(data.x_test[:200]), axis=1).mean())


NORM = Metric("code_norm", "mean code length", "lower", "mean Euclidean length of the test images' codes",
              needs="model", function=_mean_code_norm, fmt=".3f")


@pytest.fixture(scope="module")
def evaluated(sample_run, tmp_path_factory):
    """A copy of the sample run whose model (a subclass adding ``metrics()``) declares NORM, evaluated."""
    path = tmp_path_factory.mktemp("own") / "run"
    shutil.copytree(sample_run.path, path)
    run = aekit.load_run(path)
    base = type(run.model)
    run.model.__class__ = type("WithNorm", (base,), {"metrics": lambda self: (NORM,)})
    data = run.load_data()
    settings = EvalSettings.from_values(probe_train=500, semi_sizes=(10,), semi_draws=1, kmeans_init=1)
    result = aekit.evaluate(run, settings=settings, data=data, cache=False, log=lambda line: None)
    save_evaluation(run, result, data)
    return run, data, result


def test_a_models_own_metric_reaches_eval_json_the_table_and_the_report(evaluated):
    from aekit.visualization.report import write_report

    run, data, result = evaluated
    saved = json.loads((run.path / "eval.json").read_text())
    value = saved["results"]["model"]["code_norm"]
    assert value == pytest.approx(_mean_code_norm(run, data)) and value > 0
    assert "code_norm" not in saved["results"]["pca"]  # the model's alone
    assert saved["metrics"]["code_norm"] == {"label": "mean code length", "direction": "lower", "needs": "model",
                                             "help": NORM.help, "fmt": ".3f"}
    table = eval_table(result.summary)
    row = next(line for line in table.splitlines() if "mean code length" in line)
    assert "↓" in row and f"{value:.3f}" in row and "–" in row  # PCA and pixels have no value: a dash
    html = write_report(run.path).read_text()
    assert "mean code length ↓" in html and f"{value:.3f}" in html


def test_every_built_in_metric_in_eval_json_has_a_declaration(evaluated):
    _, _, result = evaluated
    keys = {k for row in result.summary["results"].values() for k in row} - {"code_norm"}
    assert keys and all(declared(k) is not None for k in keys), sorted(k for k in keys if declared(k) is None)
    assert {m.key for m in METRICS} - ALPHA_ONLY <= keys  # this labelled run computes every built-in but RGBA's
    assert not ALPHA_ONLY & keys  # grey images have no alpha (tests/test_alpha.py scores an RGBA run)


def test_a_key_nothing_declares_is_shown_not_dropped():
    summary = {"results": {"model": {"mse": 0.01, "from_the_future": 0.5}, "pca": {"mse": 0.02}}}
    headers, rows = eval_rows(summary)
    assert headers == ["metric", "model", "pca"]
    assert [r[0] for r in rows] == ["MSE per pixel ↓", "from_the_future ?"]
    assert rows[1][1:] == ["0.5", "–"]


def test_every_declared_metric_has_help_in_aekit_eval_help(capsys):
    from aekit.cli.main import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse and textwrap wrap lines
    for m in (*METRICS, *SEMI):
        assert m.help.strip() and " ".join(m.help.split()) in text, m.key
        assert m.arrow in text and m.label.replace("{n}", "<n>") in text


@pytest.mark.parametrize("bad, says", [
    (dict(key="two words"), "must be a Python identifier"),
    (dict(direction="up"), "direction 'up'"),
    (dict(needs="gpu"), "needs 'gpu'"),
    (dict(help=" "), "a label and a help sentence"),
])
def test_a_declaration_is_checked(bad, says):
    fields = dict(key="k", label="K", direction="higher", help="h", **{"needs": "model"})
    with pytest.raises(ValueError, match=says):
        Metric(**{**fields, **bad})


def test_compare_shows_and_sorts_a_models_own_metric(evaluated):
    from aekit.evaluation.table import compare_rows, compare_table, own_metrics, sort_rows
    from aekit.rundir import RunDir

    run, _, result = evaluated
    entry = RunDir(run.path).summary()
    other = {**entry, "run": "other", "eval": {**entry["eval"], "results": {
        **entry["eval"]["results"], "model": {**entry["eval"]["results"]["model"], "code_norm": 0.001}}}}
    columns, rows = compare_rows([entry, other])
    own = own_metrics([entry, other])
    assert "code_norm" in columns and own["code_norm"].direction == "lower"
    assert [r["run"] for r in sort_rows(rows, "code_norm", own)] == ["other", entry["run"]]  # lower is better
    assert "0.001" in compare_table(columns, rows, own)


@pytest.mark.parametrize("declares, says", [
    ((Metric("mse", "my MSE", "lower", "h", needs="model", function=_mean_code_norm),), "the key of a built-in"),
    ((NORM, NORM), "the key of another"),
    ((Metric("x", "X", "lower", "h", needs="labels"),), "needs the model"),
])
def test_a_bad_model_metric_is_refused_before_the_evaluation_runs(sample_run, declares, says):
    from aekit.errors import EvalError

    run = aekit.load_run(sample_run.path)
    run.model.__class__ = type("Bad", (type(run.model),), {"metrics": lambda self: declares})
    with pytest.raises(EvalError, match=says):
        aekit.evaluate(run, data="not loaded: the check comes first", cache=False)
