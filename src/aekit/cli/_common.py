"""What the commands that work on a saved run share: their arguments and how they load the run."""

from __future__ import annotations

from aekit.rundir import WHICH_CHOICES

WHICH_HELP = ("weights to use: checkpoint (the last epoch), best (lowest validation loss, or test loss without a "
              "validation split), or auto: best where a validation split chose it, else checkpoint [default: auto]")


def add_run_arguments(p, *, dataset: bool = False, out: str | None = None) -> None:
    """``RUN``, ``--which`` and ``--data-dir``; with ``dataset`` also ``--dataset``; with ``out`` (its
    help text) also ``--out FILE``.
    """
    p.add_argument("run", metavar="RUN", help="a run directory written by 'aekit train'")
    p.add_argument("--which", default="auto", choices=WHICH_CHOICES, help=WHICH_HELP)
    if dataset:
        p.add_argument("--dataset", default=None, help="dataset to use [default: the run's own]")
    p.add_argument("--data-dir", default=None, help="directory searched first for the dataset's files")
    if out is not None:
        p.add_argument("--out", default=None, metavar="FILE", help=out)


def load_run(args, log=None):
    """The run named by ``args.run``/``args.which`` and its dataset (``args.dataset``, ``args.data_dir``)."""
    from aekit.api import load_run

    run = load_run(args.run, args.which)
    return run, run.load_data(log, getattr(args, "dataset", None), args.data_dir)
