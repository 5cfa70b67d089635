"""``aekit report RUN``: redraw a saved run's pictures and write its report.html."""

from aekit.cli.plot import add_run_flags, load

HELP = "write a run's report.html: config, metrics, loss, animation, interactive codes, manifold"


def add_parser(sub, full: bool = False) -> None:
    p = sub.add_parser("report", help=HELP, description=HELP + ". The page is self-contained: it opens "
                       "from disk and loads nothing from the network. The pictures are redrawn first.")
    p.add_argument("run", metavar="RUN", help="a run directory (from aekit train)")
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca",
                   help="how codes of more than 3 dimensions are drawn in 2-D [default: pca]")
    add_run_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.visualization.pictures import draw_pictures

    run_, data = load(args)
    print(draw_pictures(run_, data, projection=args.projection, report=True)[-1])
    return 0
