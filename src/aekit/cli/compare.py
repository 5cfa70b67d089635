"""``aekit compare RUN...``: several runs' settings and metrics side by side, as a Markdown table."""

from __future__ import annotations

HELP = "compare runs side by side (config, last epoch, eval.json)"


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help=HELP, description=HELP + ". Metric columns come from each run's "
                       "eval.json (run 'aekit eval' first; '–' where a run has none).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--sort", default=None, metavar="COLUMN",
                   help="order by a column, best first (e.g. knn_acc, mse) [default: as given]")
    p.set_defaults(func=run)


def run(args) -> int:
    import csv
    import io

    from aekit.errors import ConfigError
    from aekit.evaluation.table import compare_rows, compare_table, own_metrics, sort_rows
    from aekit.io import atomic_write_text
    from aekit.rundir import RunDir

    entries = [RunDir.open(path).summary() for path in args.runs]
    columns, rows = compare_rows(entries)
    own = own_metrics(entries)  # the models' own metrics: their directions and formats
    if args.sort:
        if args.sort not in columns:
            raise ConfigError(f"--sort: unknown column {args.sort!r}; choose one of: {', '.join(columns)}")
        rows = sort_rows(rows, args.sort, own)
    print(compare_table(columns, rows, own))
    if args.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: "" if r[c] is None else r[c] for c in columns} for r in rows)
        atomic_write_text(args.csv, buf.getvalue())
    return 0
