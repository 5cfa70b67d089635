"""``aekit generate RUN``: a grid of new images, from the model's prior or from its training codes."""

HELP = "write a grid of images sampled from a trained model"


def add_parser(sub, full: bool = False) -> None:
    from aekit.cli._pictures import add_run_arguments

    p = sub.add_parser("generate", help=HELP, description=HELP + ". A generative model (vae) samples "
                       "its prior N(0, I); any model can sample a Gaussian fitted to its training codes "
                       "(--from-codes).")
    add_run_arguments(p)
    p.add_argument("--n", type=int, default=64, help="how many images [default: 64]")
    p.add_argument("--from-codes", action="store_true",
                   help="sample a Gaussian (mean and full covariance) fitted to the codes of the training "
                        "images instead of the prior; the only way for a model without a prior")
    p.add_argument("--seed", type=int, default=0, help="seed for the draws [default: 0]")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import torch

    from aekit.api import load_run
    from aekit.visualization.images import save_image_grid
    from aekit.errors import AekitError, ConfigError
    from aekit.models import get_model_class, list_models

    if args.n < 1:
        raise ConfigError(f"--n: must be >= 1, got {args.n}")
    result = load_run(args.run, args.which)
    model = result.model
    generator = torch.Generator().manual_seed(args.seed)
    if args.from_codes:
        codes = torch.from_numpy(result.encode(result.load_data().x_train))
        images = model.sample_from_codes(codes, args.n, generator)
        name = "samples_from_codes.png"
    elif model.is_generative:
        images = model.sample(args.n, generator)
        name = "samples.png"
    else:
        with_prior = ", ".join(n for n in list_models() if get_model_class(n).is_generative)
        raise AekitError(f"model '{model.name}' has no prior to sample from (models with one: {with_prior}): "
                         "its codes follow no known distribution; use --from-codes to sample a Gaussian "
                         "fitted to the codes of its training images")
    out = save_image_grid(images, args.out or Path(args.run) / name, result.config.data.scale)
    print(f"{args.n} samples ({'Gaussian fitted to training codes' if args.from_codes else 'prior'}) -> {out}")
    return 0
