"""``aekit interpolate RUN --a I --b J``: decode codes on the line between two test images' codes."""

HELP = "write the strip of images decoded between the codes of two test images"


def add_parser(sub) -> None:
    from aekit.cli._common import add_run_arguments

    p = sub.add_parser("interpolate", help=HELP, description=HELP + ": image I, then STEPS decoded codes "
                       "from I's to J's (both ends included), then image J.")
    add_run_arguments(p, out="PNG to write [default: interpolate_I_J.png in RUN]")
    p.add_argument("--a", type=int, required=True, metavar="I", help="index of the first test image")
    p.add_argument("--b", type=int, required=True, metavar="J", help="index of the second test image")
    p.add_argument("--steps", type=int, default=10, help="decoded images in the strip [default: 10]")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from aekit.cli._common import load_run
    from aekit.visualization.images import save_image_grid

    run_, data = load_run(args)
    images = run_.interpolate(args.a, args.b, args.steps, data=data)
    out = save_image_grid(images, args.out or Path(args.run) / f"interpolate_{args.a}_{args.b}.png", run_.scale,
                          cols=len(images))
    print(f"test image {args.a}, {args.steps} steps, test image {args.b} -> {out}")
    return 0
