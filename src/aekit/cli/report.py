"""``aekit report RUN``: redraw a saved run's pictures and write its report.html."""

HELP = "write a run's report.html: config, metrics, loss, animation, interactive codes, manifold"


def add_parser(sub) -> None:
    from aekit.cli._common import add_run_arguments

    p = sub.add_parser("report", help=HELP, description=HELP + ". The page is self-contained: it opens "
                       "from disk and loads nothing from the network. The pictures are redrawn first.")
    add_run_arguments(p)
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca",
                   help="how codes of more than 3 dimensions are drawn in 2-D [default: pca]")
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.cli._common import load_run
    from aekit.visualization.pictures import draw_pictures

    run_, data = load_run(args)
    print(draw_pictures(run_, data, projection=args.projection, report=True)[-1])
    return 0
