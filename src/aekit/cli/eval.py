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

    from aekit.api import evaluate, save_evaluation, write_scores
    from aekit.evaluation import eval_table
    from aekit.evaluation.suite import EvalSettings
    from aekit.io import quiet

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalSettings) if hasattr(args, f.name)}
    settings = EvalSettings.from_values(**values)
    from pathlib import Path

    from aekit.api import load_run
    from aekit.io import check_writable

    log = quiet if args.quiet else None
    run_ = load_run(args.run, args.which)
    for path in (args.out or run_.dir / run_.dir.EVAL, *([args.scores] if args.scores else [])):
        check_writable(Path(path).parent)  # now, not after the slow part
    data = run_.load_data(log, args.dataset, args.data_dir)
    result = evaluate(run_, which=args.which, settings=settings, cache=not args.no_cache, log=log, data=data)
    out = save_evaluation(run_, result, data, args.out)
    if args.scores:
        write_scores(result, args.scores)
    print(eval_table(result.summary))
    print(f"\nwrote {out}" + (f" and {args.scores}" if args.scores else ""))
    return 0
