"""``aekit export RUN --format onnx|torchscript``: the encoder and decoder as files that run without aekit.

Each file takes a float32 batch of any size: the encoder images ``(N, C, H, W)`` in the
model's pixel range, the decoder codes ``(N, latent_dim)``. Its metadata says how to
scale pixels (``aekit.pixel_offset``: ``x = uint8 / 255 - offset``). Every file is run
(onnxruntime, or TorchScript) on the first test images and compared with PyTorch: the
outputs must agree within 1e-4 + 1e-5 x the largest |PyTorch output| (float32 rounding
grows with the outputs' size), or the command fails and writes nothing. Files are
written atomically: a failed export leaves no file, half-written or temporary.
"""

from __future__ import annotations

HELP = "write the encoder and decoder as ONNX or TorchScript files"
CHECK_IMAGES = 64  # test images each exported file is run on and compared with PyTorch


def add_parser(sub) -> None:
    import argparse

    from aekit.cli._common import add_run_arguments

    description = HELP + ".\n\n" + __doc__.split("\n\n", 1)[1]
    p = sub.add_parser("export", help=HELP, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--format", default="onnx", choices=("onnx", "torchscript"), help="file format [default: onnx]")
    p.add_argument("--part", default="both", choices=("encoder", "decoder", "both"), help="[default: both]")
    p.add_argument("--out", default=None, metavar="PATH", help="a directory for encoder.onnx/decoder.onnx "
                   "(.pt for torchscript), or with one --part a file name [default: RUN/export]")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help=f"do not run the files on {CHECK_IMAGES} test images (no dataset needed)")
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.api import load_run
    from aekit.integrations.export import PARTS, export_run

    parts = PARTS if args.part == "both" else (args.part,)
    run_ = load_run(args.run, args.which)
    images = run_.load_data(data_dir=args.data_dir).x_test[:CHECK_IMAGES] if args.check else None
    export_run(run_, args.format, parts, args.out, check_images=images, log=print)
    return 0
