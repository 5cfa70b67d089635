"""``aekit datasets``: the data sources and where each resolves on this machine."""

HELP = "list the data sources and where each resolves here"

FOOTER = """
your own files: pass a path as --dataset
  a folder of images   any format Pillow reads; class subfolders are labels, a flat folder is unlabeled,
                       train/ and test/ subfolders are the split (else --test-fraction, default 0.1);
                       --image-size N or WxH (default: the most common size), --resize crop|stretch|pad,
                       --color-mode auto|grayscale|rgb|rgba, --alpha-background white|black, --strict
  .npy / .npz          uint8 images (N,H,W), (N,H,W,C) or (N,C,H,W); an .npz with x_train, y_train, x_test,
                       y_test, or x and optionally y
  IDX, CSV             a directory of the four IDX files; a CSV (label, then the pixels) or *train*/*test*.csv
cache: {cache}
  folders/ holds each image folder decoded once (rebuilt when a file or a setting changes); aekit cache list|clear;
  a set larger than --max-memory (default: half the RAM) streams from there during training
see docs/your-images.md"""


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help=HELP, description=HELP + " (downloads nothing).")
    p.add_argument("--data-dir", default=None, help="also look in this directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.data import default_cache_dir, describe_sources

    rows = describe_sources(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['status']:<8} {r['where']}\n{'':<{width}}  {r['description']}")
    print(FOOTER.format(cache=default_cache_dir()))
    return 0
