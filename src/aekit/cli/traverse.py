"""``aekit traverse RUN --dim K``: vary one code unit of a test image's code, keep the rest."""

HELP = "write rows of images decoded while one code unit sweeps a range"


def add_parser(sub, full: bool = False) -> None:
    from aekit.cli._pictures import add_run_arguments

    p = sub.add_parser("traverse", help=HELP, description=HELP + ". Starts from the code of one test "
                       "image; a model with a prior (vae) sweeps -3..3 (its prior's +-3 sd), any other "
                       "the 1st to 99th percentile of that unit over the test images.")
    add_run_arguments(p)
    p.add_argument("--dim", default="all", help="code unit(s): K, K,L,... or all (one row each) [default: all]")
    p.add_argument("--image", type=int, default=0, metavar="I", help="test image whose code is the start "
                   "[default: 0]")
    p.add_argument("--steps", type=int, default=9, help="images per row [default: 9]")
    p.add_argument("--range", default=None, metavar="LO,HI", help="values to sweep, e.g. --range=-2,2 "
                   "[default: see above]")
    p.set_defaults(func=run)


def _dims(text: str, k: int) -> list[int]:
    from aekit.errors import ConfigError

    if text == "all":
        return list(range(k))
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        raise ConfigError(f"--dim: expected K, K,L,... or all, got {text!r}") from None
    for d in dims:
        if not 0 <= d < k:
            raise ConfigError(f"--dim {d}: the code has units 0 to {k - 1}")
    return dims


def _range(text: str) -> tuple[float, float]:
    from aekit.errors import ConfigError

    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--range: expected two numbers LO,HI like -3,3, got {text!r}") from None
    return lo, hi


def run(args) -> int:
    from pathlib import Path

    import torch

    from aekit.api import load_run
    from aekit.cli._pictures import test_images
    from aekit.visualization.images import save_image_grid
    from aekit.errors import ConfigError

    if args.steps < 2:
        raise ConfigError(f"--steps: must be >= 2, got {args.steps}")
    result = load_run(args.run, args.which)
    model = result.model
    dims = _dims(args.dim, model.latent_dim)
    fixed = _range(args.range) if args.range else (-3.0, 3.0) if model.is_generative else None
    if fixed is None:
        codes = torch.from_numpy(result.encode(result.load_data().x_test))  # (N, k)
        bounds = torch.quantile(codes[:, dims], torch.tensor([0.01, 0.99]), dim=0)  # (2, len(dims))
    with torch.no_grad():
        z = model.encode(test_images(result, {"--image": args.image}))[0]  # (k,)
        rows = []
        for j, d in enumerate(dims):
            lo, hi = fixed if fixed is not None else bounds[:, j].tolist()
            rows.append(model.traverse(z, d, torch.linspace(lo, hi, args.steps)))
    stem = "traverse" if args.dim == "all" else f"traverse_dim{args.dim.replace(',', '_')}"
    out = save_image_grid(torch.cat(rows), args.out or Path(args.run) / f"{stem}.png", result.config.data.scale,
                    cols=args.steps)
    print(f"{len(dims)} code unit(s) of test image {args.image}, {args.steps} values each -> {out}")
    return 0
