"""Entry point: ``aekit COMMAND ...`` and ``python -m aekit``.

User errors (:class:`aekit.errors.AekitError`, bad flags) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "eval", "plot", "report", "generate", "interpolate", "traverse", "encode", "compare",
            "presets", "models", "datasets")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    """The full parser. Adding a command's flags imports no heavy library (torch, matplotlib)."""
    parser = Parser(prog="aekit", description="Train, evaluate and look inside autoencoders on image data.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"aekit.cli.{name.replace('-', '_')}")
        module.add_parser(sub)
    return parser


def _version() -> str:
    from aekit import __version__

    return f"aekit {__version__}"


def main(argv: list[str] | None = None) -> int:
    from aekit.errors import AekitError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except AekitError as exc:
        print(f"aekit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aekit {args.command}: interrupted; finished epochs are saved in the run directory",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
