"""``aekit cache``: list and clear the packed image sets in the cache.

An image folder is decoded once into the cache (see docs/your-images.md); each
folder keeps one entry, replaced when a file or a setting changes. ``list``
shows each entry: when it was last used, its size, images, shape, settings and
the folder it was packed from. ``clear`` removes entries, all of them or those
of one folder or unused for a while; it removes only directories aekit wrote
as packed entries, never anything else in the cache directory (downloads and
evaluation baselines stay).
"""

from __future__ import annotations

import re

HELP = "list or clear the packed image sets in the cache"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("cache", help=HELP, description=HELP + ".\n\n" + __doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.add_parser("list", help="show each packed set (the default)")
    clear = actions.add_parser("clear", help="remove packed sets: all, one folder's, or those unused for a while")
    clear.add_argument("folder", nargs="?", default=None, metavar="FOLDER",
                       help="only the entries packed from this folder [default: every entry]")
    clear.add_argument("--older-than", default=None, metavar="AGE", type=parse_age,
                       help="only entries not used for AGE: a number with s, m, h, d or w, e.g. 30d")
    clear.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    p.set_defaults(func=run, action="list")


def parse_age(text: str) -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"`` or ``"45s"`` as seconds."""
    import argparse

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age; give a number with s, m, h, d or w, e.g. 30d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run(args) -> int:
    from aekit.data import cache_entries, clear_cache, default_cache_dir

    if args.action == "clear":
        removed = clear_cache(folder=args.folder, older_than=args.older_than, dry_run=args.dry_run)
        what = "would remove" if args.dry_run else "removed"
        for entry in removed:
            print(f"{what} {entry.path} ({_size(entry.nbytes)}, {entry.source})")
        print(f"{what} {len(removed)} packed set(s), {_size(sum(e.nbytes for e in removed))}, from "
              f"{default_cache_dir()}")
        return 0
    entries = cache_entries()
    print(f"{default_cache_dir()}: {len(entries)} packed set(s), {_size(sum(e.nbytes for e in entries))}")
    if entries:
        from aekit.evaluation.table import markdown_table

        rows = [[_age(e.used), _size(e.nbytes), f"{e.images:,}", "x".join(map(str, e.shape)), e.describe() or e.kind,
                 e.source] for e in entries]
        print(markdown_table(["used", "size", "images", "shape", "settings", "source"], rows, align="rrrrll"))
    return 0


def _size(nbytes: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{nbytes} B"


def _age(when: float) -> str:
    import time

    seconds = max(0.0, time.time() - when)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"
