"""``aekit plot RUN``: (re)draw a saved run's pictures."""

from aekit.visualization.pictures import WHATS  # light: no numpy, torch or matplotlib

HELP = "draw a saved run's pictures (recon.gif, latent.png/.html, manifold.png, loss.png, grid.png/grid_recon.png)"


def add_parser(sub) -> None:
    from aekit.cli._common import add_run_arguments

    p = sub.add_parser("plot", help=HELP, description=HELP + ". Files are written into the run directory.")
    add_run_arguments(p)
    p.add_argument("--what", choices=WHATS, action="append", default=None,
                   help="which picture; repeat for several [default: recon, latent, manifold (2-D codes), loss]")
    p.add_argument("--n", default=None, metavar="N",
                   help="size of one picture: images for recon [the run's snapshot_images], points for latent "
                        "[all test images], grid side for manifold [20], MxN for grid [8x8]")
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca",
                   help="how codes of more than 3 dimensions are drawn in 2-D [default: pca]")
    p.add_argument("--recon", action="store_true", help="with --what grid: draw the test images' reconstructions, "
                   "into grid_recon.png (grid.png keeps the images)")
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.cli._common import load_run
    from aekit.errors import ConfigError
    from aekit.visualization.pictures import PICTURES, check_recon, draw_pictures

    what = tuple(dict.fromkeys(args.what or PICTURES))
    if args.n is not None and len(what) != 1:
        raise ConfigError("--n: sizes one picture; name it with a single --what")
    check_recon(what, args.recon)  # before the data is loaded
    run_, data = load_run(args)
    for path in draw_pictures(run_, data, what, n=args.n, projection=args.projection, recon=args.recon):
        print(path)
    return 0
