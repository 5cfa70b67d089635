"""``aekit datasets``: the data sources and where each resolves on this machine."""

HELP = "list the data sources and where each resolves here"


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help=HELP, description=HELP + " (downloads nothing).")
    p.add_argument("--data-dir", default=None, help="also look in this directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.data import describe_sources

    rows = describe_sources(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['status']:<8} {r['where']}\n{'':<{width}}  {r['description']}")
    print("\nfiles: pass a path as --dataset: a directory of IDX files (gzip'd or not), a CSV "
          "(label first, then 784 pixels; header optional) or a directory of *train*.csv/*test*.csv, "
          "or an .npz with x_train, y_train, x_test, y_test")
    return 0
