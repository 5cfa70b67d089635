"""``aekit eval RUN``: score a run's codes and reconstructions against PCA and raw pixels.

Writes ``eval.json`` in the run directory (or ``--out``), prints the table, and with
``--scores FILE`` writes every test image's reconstruction error as CSV.
"""

from __future__ import annotations

HELP = "evaluate a run against PCA and pixel baselines; writes eval.json"


def add_parser(sub) -> None:
    from aekit.cli._common import add_run_arguments
    from aekit.cli.train import add_config_flags
    from aekit.evaluation.suite import EvalSettings

    p = sub.add_parser("eval", help=HELP, description=HELP + ". Reconstruction (MSE, BCE, PSNR, SSIM), "
                       "k-means clustering (Hungarian accuracy, NMI, ARI), kNN and logistic probes, "
                       "semi-supervised probes and per-image anomaly scores, all on the test split, for the "
                       "model, PCA with the same code size and raw pixels. Baselines are cached under the "
                       "aekit cache directory.")
    add_run_arguments(p, dataset=True, out="where to write the summary [default: RUN/eval.json]")
    p.add_argument("--scores", default=None, metavar="FILE",
                   help="also write a CSV of index,label,error for every test image, worst first")
    p.add_argument("--no-cache", action="store_true", help="recompute the baselines and do not store them")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_config_flags(p.add_argument_group("evaluation settings"), EvalSettings, section="eval")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses

    from aekit.api import evaluate
    from aekit.cli._common import load_run
    from aekit.evaluation import eval_table
    from aekit.evaluation.suite import EvalSettings
    from aekit.io import atomic_write_text, quiet

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalSettings) if hasattr(args, f.name)}
    settings = EvalSettings.from_values(**values)
    log = quiet if args.quiet else None
    run_, data = load_run(args, log)
    result = evaluate(run_, which=args.which, settings=settings, cache=not args.no_cache, log=log, data=data)
    out = run_.dir.write_eval(result.summary, args.out)
    if out.resolve().parent == run_.path.resolve():
        _update_run_pictures(run_, data, result.summary)
    if args.scores:
        order = result.errors.argsort(kind="stable")[::-1]
        lines = ["index,label,error", *(f"{i},{result.labels[i]},{result.errors[i]:.8g}" for i in order)]
        atomic_write_text(args.scores, "\n".join(lines) + "\n")
    print(eval_table(result.summary))
    print(f"\nwrote {out}" + (f" and {args.scores}" if args.scores else ""))
    return 0


def _update_run_pictures(run, data, summary) -> None:
    """worst.png for the report; and the report itself, when the run has one, so it shows the table."""
    from aekit.visualization.pictures import draw_pictures, draw_worst

    worst = [w["index"] for w in summary.get("anomaly", {}).get("worst", [])]
    if worst:
        draw_worst(run, data, worst)
    if run.dir.file(run.dir.REPORT):
        draw_pictures(run, data, what=(), report=True)
