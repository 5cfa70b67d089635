"""Entry point: ``aekit COMMAND ...`` and ``python -m aekit``.

User errors (:class:`aekit.errors.AekitError`, bad flags) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

COMMANDS = ("train", "eval", "plot", "report", "generate", "interpolate", "traverse", "encode", "cluster", "fewlabels",
            "export", "compare", "presets", "models", "datasets", "cache")
WITHOUT_TORCH = ("compare", "presets", "datasets", "cache")


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
    from aekit.errors import AekitError, Interrupted

    argv = list(sys.argv[1:] if argv is None else argv)
    command = "aekit"
    _print_names_as_bytes()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help()
            return 0
        command = f"aekit {args.command}"
        if args.command not in WITHOUT_TORCH:
            _import_torch()
        return int(args.func(args) or 0)
    except Interrupted as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except AekitError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


def _print_names_as_bytes() -> None:
    """A file name that is not UTF-8 reaches Python as surrogate escapes: print it as its own bytes, as ``ls``
    does, instead of failing with a ``UnicodeEncodeError`` (the default where the locale is UTF-8).
    """
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")


def _import_torch() -> None:
    """Import torch with Ctrl-C held back: an interrupt in the middle of its C++ start-up can abort
    the process; held back, it arrives once the import is done, as a plain KeyboardInterrupt.
    """
    if not hasattr(signal, "pthread_sigmask"):
        import torch  # noqa: F401
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        import torch  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
