"""``aekit interpolate RUN --a I --b J``: decode codes on the line between two test images' codes."""

HELP = "write the strip of images decoded between the codes of two test images"


def add_parser(sub, full: bool = False) -> None:
    from aekit.cli._pictures import add_run_arguments

    p = sub.add_parser("interpolate", help=HELP, description=HELP + ": image I, then STEPS decoded codes "
                       "from I's to J's (both ends included), then image J.")
    add_run_arguments(p)
    p.add_argument("--a", type=int, required=True, metavar="I", help="index of the first test image")
    p.add_argument("--b", type=int, required=True, metavar="J", help="index of the second test image")
    p.add_argument("--steps", type=int, default=10, help="decoded images in the strip [default: 10]")
    p.set_defaults(func=run)


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
    x = test_images(result, {"--a": args.a, "--b": args.b})  # (2, C, H, W)
    strip = result.model.interpolate(x[0], x[1], args.steps)  # (steps, C, H, W)
    images = torch.cat([x[:1], strip, x[1:]])
    out = save_image_grid(images, args.out or Path(args.run) / f"interpolate_{args.a}_{args.b}.png",
                    result.config.data.scale, cols=len(images))
    print(f"test image {args.a}, {args.steps} steps, test image {args.b} -> {out}")
    return 0
