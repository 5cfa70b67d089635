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
        print(f"{command}: {as_flags(exc)}", file=sys.stderr)
        return exc.exit_code
    except AekitError as exc:
        print(f"{command}: error: {as_flags(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


# the Python parameters whose flag is not the parameter's own name
FLAG_OF = {"dims": "--dim", "value_range": "--range", "fmt": "--format", "classes": "--one-class"}


def flag(param: str) -> str:
    """The flag of a Python parameter or config field: ``epochs`` -> ``--epochs``, ``train.lr`` -> ``--lr``."""
    name = param.rpartition(".")[2]
    return FLAG_OF.get(name, "--" + name.replace("_", "-"))


def as_flags(exc) -> str:
    """An error's message with the parameters it names (``exc.params``) written as the CLI's flags.

    Each entry rewrites one mention, the first not yet rewritten, where the name stands as a
    word of its own (at the start, or after a space or bracket; before a space, ``:``, ``,``,
    ``;``, ``)``, ``=`` or the end): a path or a longer word that contains it, or a second
    mention in prose (``tensorboard needs aekit's tensorboard extra``), stays as it is.
    """
    import re

    text = str(exc)
    for param in getattr(exc, "params", ()):
        text = re.sub(rf"(?:^|(?<=[\s(]))({re.escape(param)})(?=[\s:,;)=]|$)", flag(param), text, count=1)
    return text


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
