"""``aekit encode RUN --out codes.npy|codes.csv``: export a run's codes with their labels.

- ``.npy``: one structured array (no pickle needed to load) with the fields
  ``split`` (``"train"``/``"test"``), ``index`` (position within that split),
  ``label`` (int64) and ``z`` (float32, shape ``(latent_dim,)``)::

      codes = np.load("codes.npy"); codes["z"], codes["label"]

- ``.csv``: a header ``label,z0,z1,...`` then one row per image; with ``--split all``
  the training images come first, then the test images, each in dataset order.
"""

from __future__ import annotations

HELP = "export a run's codes with labels (.npy or .csv)"


def add_parser(sub, full: bool = False) -> None:
    import argparse

    p = sub.add_parser("encode", help=HELP, description=__doc__.split("\n\n", 1)[1].replace("::", ":"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="a run directory")
    p.add_argument("--out", required=True, metavar="FILE", help="codes.npy or codes.csv")
    p.add_argument("--dataset", default=None, help="dataset to encode [default: the run's own]")
    p.add_argument("--data-dir", default=None, help="directory searched first for the dataset's files")
    p.add_argument("--split", default="test", choices=("test", "train", "all"), help="which images [default: test]")
    p.add_argument("--which", default="checkpoint", choices=("checkpoint", "best"),
                   help="weights of the last epoch or of the best test loss [default: checkpoint]")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from aekit.errors import ConfigError

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".csv"):
        raise ConfigError(f"--out {out}: the file must end in .npy or .csv")

    import numpy as np

    from aekit.api import load_run
    from aekit.run_eval import encode_split, load_run_data
    from aekit.training.checkpoint import atomic_write, atomic_write_text

    run_ = load_run(args.run, args.which)
    codes = encode_split(run_, load_run_data(run_, args.dataset, args.data_dir), args.split)
    z, n, d = codes["z"], len(codes["z"]), codes["z"].shape[1]
    if out.suffix.lower() == ".npy":
        table = np.zeros(n, dtype=[("split", "U5"), ("index", "i8"), ("label", "i8"), ("z", "f4", (d,))])
        for name in ("split", "index", "label", "z"):
            table[name] = codes[name]

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, table)
        atomic_write(out, write)
    else:
        lines = ["label," + ",".join(f"z{i}" for i in range(d))]
        lines += [f"{label}," + ",".join(f"{v:.8g}" for v in row) for label, row in zip(codes["label"], z)]
        atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {n} codes of size {d} ({args.split} split) to {out}")
    return 0
