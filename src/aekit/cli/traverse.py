"""``aekit traverse RUN --dim K``: vary one code unit of a test image's code, keep the rest."""

HELP = "write rows of images decoded while one code unit sweeps a range"


def add_parser(sub) -> None:
    from aekit.cli._common import add_run_arguments

    p = sub.add_parser("traverse", help=HELP, description=HELP + ". Starts from the code of one test "
                       "image; a model with a prior (vae) sweeps -3..3 (its prior's +-3 sd), any other "
                       "the 1st to 99th percentile of that unit over the test images.")
    add_run_arguments(p, out="PNG to write [default: traverse.png or traverse_dimK.png in RUN]")
    p.add_argument("--dim", default="all", help="code unit(s): K, K,L,... or all (one row each) [default: all]")
    p.add_argument("--image", type=int, default=0, metavar="I", help="test image whose code is the start "
                   "[default: 0]")
    p.add_argument("--steps", type=int, default=9, help="images per row [default: 9]")
    p.add_argument("--range", default=None, metavar="LO,HI", help="values to sweep, e.g. --range=-2,2 "
                   "[default: see above]")
    p.set_defaults(func=run)


def _dims(text: str) -> list[int] | None:
    from aekit.errors import ConfigError

    if text == "all":
        return None
    try:
        return [int(d) for d in text.split(",")]
    except ValueError:
        raise ConfigError(f"--dim: expected K, K,L,... or all, got {text!r}") from None


def _range(text: str | None) -> tuple[float, float] | None:
    from aekit.errors import ConfigError

    if text is None:
        return None
    import math

    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"--range: expected two finite numbers LO,HI like -3,3, got {text!r}")
    return lo, hi


def run(args) -> int:
    from pathlib import Path

    from aekit.cli._common import load_run
    from aekit.visualization.images import save_image_grid

    dims, value_range = _dims(args.dim), _range(args.range)
    run_, data = load_run(args)
    images = run_.traverse(args.image, dims, args.steps, value_range, data=data)
    stem = "traverse" if dims is None else f"traverse_dim{args.dim.replace(',', '_')}"
    out = save_image_grid(images, args.out or Path(args.run) / f"{stem}.png", run_.scale, cols=args.steps)
    rows = len(images) // args.steps
    print(f"{rows} code unit(s) of test image {args.image}, {args.steps} values each -> {out}")
    return 0
