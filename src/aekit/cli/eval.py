"""``aekit eval RUN``: score a run's codes and reconstructions against PCA and raw pixels.

Writes ``eval.json`` in the run directory (or ``--out``), prints the table, and with
``--scores FILE`` writes every test image's reconstruction error as CSV.

``--one-class K`` runs the one-class anomaly protocol instead (see
:mod:`aekit.integrations.anomaly`): for each class K, a fresh model with the run's
config trains on class K's training images only and scores every test image (by
``--score``: reconstruction error, code-space kNN distance or the two combined); the
table gives AUROC and average precision per class, next to PCA with the same code size.
"""

from __future__ import annotations

HELP = "evaluate a run against PCA and pixel baselines; writes eval.json"
# the one-class scores, as aekit.integrations.anomaly.SCORES: not imported from there, which loads scikit-learn
SCORE_NAMES = {"reconstruction": "its reconstruction error (its own anomaly_score)",
               "knn": "the distance of its code to the nearest training codes (knn)",
               "combined": "reconstruction error and code distance combined"}
SCORES = tuple(SCORE_NAMES)


def add_parser(sub) -> None:
    import argparse
    import textwrap

    from aekit.cli._common import add_run_arguments
    from aekit.cli.train import add_config_flags
    from aekit.evaluation.suite import EvalSettings

    p = sub.add_parser("eval", help=HELP, description=textwrap.fill(
                       HELP + ". The metrics below, on the test split, for the model, PCA with the same code size "
                       "and raw pixels, and per-image anomaly scores. Unlabeled data (a flat image folder, an .npy) "
                       "gets the reconstruction metrics and anomaly scores; the sections that need labels are "
                       "skipped, saying so, and so are settings that do not fit the data (shrunk or skipped, one "
                       "line each). PCA is exact where that is cheap and randomized otherwise; images of more than "
                       "1024 values are probed on their first 256 principal components. Baselines are cached under "
                       "the aekit cache directory.", 100),
                       epilog=metrics_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, dataset=True, out="where to write the summary [default: RUN/eval.json]")
    p.add_argument("--scores", default=None, metavar="FILE",
                   help="also write a CSV of index,file,label,class,error for every test image, worst first "
                   "(file: its path in an image folder; label -1 and no class when the data has no labels)")
    p.add_argument("--no-cache", action="store_true", help="recompute the baselines and do not store them")
    p.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    p.add_argument("--one-class", default=None, metavar="K",
                   help="the one-class anomaly protocol instead: for each class K (a number, a comma-separated "
                   "list, or 'all') train the run's config on class K's training images only and report AUROC "
                   "and average precision over the test images, next to PCA; writes JSON only to --out")
    p.add_argument("--score", default=None, choices=SCORES,
                   help="with --one-class, what the model's anomaly score measures: the reconstruction error "
                   "(the model's own anomaly_score), knn (the mean distance of the code to its 5 nearest "
                   "training codes) or combined (the two, each robustly standardised, added) "
                   "[default: reconstruction]")
    add_config_flags(p.add_argument_group("evaluation settings"), EvalSettings, section="eval")
    p.set_defaults(func=run)


def metrics_help() -> str:
    """The metrics part of ``aekit eval --help``, from their declarations (:mod:`aekit.evaluation.declared`)."""
    import textwrap

    from aekit.evaluation.declared import METRICS, SEMI

    lines = ["metrics (eval.json key, table row, ↑ higher or ↓ lower is better, what it needs):"]
    for m in (*METRICS, *SEMI):
        head = f"  {m.key.replace('semi_n', 'semi_<n>')}: {m.label.replace('{n}', '<n>')} {m.arrow} [{m.needs}]"
        lines += [head, textwrap.fill(m.help, 100, initial_indent="      ", subsequent_indent="      ")]
    lines.append("A model may add metrics of its own (its metrics() method); they appear in eval.json and the table.")
    return "\n".join(lines)


def run(args) -> int:
    import dataclasses

    from aekit.api import evaluate, save_evaluation, write_scores
    from aekit.evaluation import eval_table
    from aekit.evaluation.suite import EvalSettings
    from aekit.io import quiet

    if args.one_class is not None:
        return _one_class(args)
    if args.score is not None:  # else it would be silently ignored: the suite's anomaly scores are reconstructions
        from aekit.errors import ConfigError

        raise ConfigError("--score: only with --one-class (it chooses the one-class protocol's anomaly score)")
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
    result = evaluate(run_, which=args.which, settings=settings, cache=not args.no_cache, log=log, data=data,
                      progress=False if args.quiet else None)
    out = save_evaluation(run_, result, data, args.out)
    if args.scores:
        write_scores(result, args.scores, data)
    print(eval_table(result.summary))
    print(f"\nwrote {out}" + (f" and {args.scores}" if args.scores else ""))
    return 0


def _one_class(args) -> int:
    from aekit import io
    from aekit.cli._common import load_run
    from aekit.errors import ConfigError
    from aekit.integrations.anomaly import one_class_run, one_class_table

    log = io.quiet if args.quiet else io.log
    run_, data = load_run(args, log)
    text = args.one_class.strip().lower()
    try:
        classes = range(data.num_classes) if text == "all" else [int(k) for k in text.split(",")]
    except ValueError:
        raise ConfigError(f"--one-class {args.one_class}: expected a class number, a comma-separated list or "
                          "'all'") from None
    from aekit.evaluation.cache import BaselineCache
    from aekit.evaluation.table import eval_remarks

    score = args.score or "reconstruction"
    summary = one_class_run(run_.config, data, classes, log, cache=None if args.no_cache else BaselineCache(log=log),
                            score=score)
    print(f"one-class anomaly detection on {data.name}: AUROC and average precision, the other classes as "
          f"anomalies (AP by chance: {summary['anomaly_share']:.2f}); the model scored by {SCORE_NAMES[score]}\n")
    print(one_class_table(summary))
    for line in eval_remarks(summary) + [f"Note: {n}." for n in summary.get("notes", [])]:
        print(line)
    if args.out:
        io.atomic_write_json(args.out, summary)
        print(f"\nwrote {args.out}")
    return 0
