"""``aekit eval RUN``: score a run's codes and reconstructions against PCA and raw pixels.

Writes ``eval.json`` in the run directory (or ``--out``), prints the table, and with
``--scores FILE`` writes every test image's reconstruction error as CSV.
"""

from __future__ import annotations

HELP = "evaluate a run against PCA and pixel baselines; writes eval.json"


def add_parser(sub, full: bool = False) -> None:
    from aekit.cli.train import add_config_flags
    from aekit.evaluation.suite import EvalSettings

    p = sub.add_parser("eval", help=HELP, description=HELP + ". Reconstruction (MSE, BCE, PSNR, SSIM), "
                       "k-means clustering (Hungarian accuracy, NMI, ARI), kNN and logistic probes, "
                       "semi-supervised probes and per-image anomaly scores, all on the test split, for the "
                       "model, PCA with the same code size and raw pixels. Baselines are cached under the "
                       "aekit cache directory.")
    p.add_argument("run", metavar="RUN", help="a run directory")
    p.add_argument("--dataset", default=None, help="dataset to evaluate on [default: the run's own]")
    p.add_argument("--data-dir", default=None, help="directory searched first for the dataset's files")
    p.add_argument("--which", default="checkpoint", choices=("checkpoint", "best"),
                   help="weights of the last epoch or of the best test loss [default: checkpoint]")
    p.add_argument("--out", default=None, metavar="FILE", help="where to write the summary [default: RUN/eval.json]")
    p.add_argument("--scores", default=None, metavar="FILE",
                   help="also write a CSV of index,label,error for every test image, worst first")
    p.add_argument("--no-cache", action="store_true", help="recompute the baselines and do not store them")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_config_flags(p.add_argument_group("evaluation settings"), EvalSettings, section="eval")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses
    from pathlib import Path

    from aekit.evaluation import eval_table, to_json
    from aekit.evaluation.suite import EvalSettings
    from aekit.run_eval import evaluate
    from aekit.training.checkpoint import atomic_write_text

    from aekit.api import load_run
    from aekit.run_eval import load_run_data

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalSettings) if hasattr(args, f.name)}
    settings = EvalSettings.from_values(**values)
    log = (lambda msg: None) if args.quiet else None
    run_ = load_run(args.run, args.which)
    data = load_run_data(run_, args.dataset, args.data_dir, log)
    result = evaluate(run_, args.dataset, data_dir=args.data_dir, which=args.which, settings=settings,
                      cache=not args.no_cache, log=log, data=data)
    out = Path(args.out) if args.out else Path(args.run) / "eval.json"
    atomic_write_text(out, to_json(result.summary))
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
    if (run.path / "report.html").exists():
        draw_pictures(run, data, what=(), report=True)
