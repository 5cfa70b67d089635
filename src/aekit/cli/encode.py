"""``aekit encode RUN --out codes.npy|codes.csv``: export a run's codes with what names each image.

- ``.npy``: one structured array (no pickle needed to load) with the fields
  ``split`` (``"train"``/``"test"``), ``index`` (position within that split),
  ``file`` (the image's path relative to an image folder; empty for other data),
  ``label`` (int64; -1 for every image when the data has no labels, such as a flat
  image folder), ``class`` (the label's name; empty when unlabeled) and ``z``
  (float32, shape ``(latent_dim,)``)::

      codes = np.load("codes.npy"); codes["z"], codes["file"]

- ``.csv``: a header ``split,index,file,label,class,z0,z1,...`` then one row per
  image; with ``--split all`` the training images come first, then the test
  images, each in dataset order.
"""

from __future__ import annotations

HELP = "export a run's codes with each image's file and label (.npy or .csv)"


def add_parser(sub) -> None:
    import argparse

    from aekit.cli._common import add_run_arguments

    description = HELP + ".\n\n" + __doc__.split("\n\n", 1)[1].replace("::", ":")
    p = sub.add_parser("encode", help=HELP, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, dataset=True)
    p.add_argument("--out", required=True, metavar="FILE", help="codes.npy or codes.csv")
    p.add_argument("--split", default="test", choices=("test", "train", "all"), help="which images [default: test]")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from aekit.errors import ConfigError

    if Path(args.out).suffix.lower() not in (".npy", ".csv"):  # before the slow part
        raise ConfigError(f"--out {args.out}: the file must end in .npy or .csv")

    from aekit.api import encode_split, write_codes
    from aekit.cli._common import load_run

    run_, data = load_run(args)
    codes = encode_split(run_, data, args.split)
    out = write_codes(codes, args.out)
    n, d = codes["z"].shape
    print(f"wrote {n} codes of size {d} ({args.split} split) to {out}")
    return 0
