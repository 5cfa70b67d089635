"""``aekit generate RUN``: a grid of new images, from the model's prior or from its training codes."""

HELP = "write a grid of images sampled from a trained model"


def add_parser(sub) -> None:
    from aekit.cli._common import add_run_arguments

    p = sub.add_parser("generate", help=HELP, description=HELP + ". A generative model (vae) samples "
                       "its prior N(0, I); any model can sample a Gaussian fitted to its training codes "
                       "(--from-codes).")
    add_run_arguments(p, out="PNG to write [default: samples.png or samples_from_codes.png in RUN]")
    p.add_argument("--n", type=int, default=64, help="how many images [default: 64]")
    p.add_argument("--from-codes", action="store_true",
                   help="sample a Gaussian (mean and full covariance) fitted to the codes of the training "
                        "images instead of the prior; the only way for a model without a prior")
    p.add_argument("--seed", type=int, default=0, help="seed for the draws [default: 0]")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from aekit.api import load_run
    from aekit.visualization.images import save_image_grid

    run_ = load_run(args.run, args.which)
    data = run_.load_data(None, None, args.data_dir) if args.from_codes else None
    images = run_.sample(args.n, seed=args.seed, from_codes=args.from_codes, data=data)
    name = "samples_from_codes.png" if args.from_codes else "samples.png"
    out = save_image_grid(images, args.out or Path(args.run) / name, run_.scale)
    print(f"{args.n} samples ({'Gaussian fitted to training codes' if args.from_codes else 'prior'}) -> {out}")
    return 0
