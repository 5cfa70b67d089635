"""What an image folder holds: its image files, their labels and its own train/test split.

The folder is walked once (hidden files and folders skipped, symlinks
followed); a file counts as an image by its extension, any that Pillow can
open. What the paths say decides the rest:

- ``train/`` and ``test/`` at the top (any case, both present): the folder's
  own split; anything beside them is ignored, with a note;
- within the folder (or within each of ``train/`` and ``test/``): images in
  subfolders only, each first-level subfolder is a class (sorted names give
  the class numbers, nested folders inside a class belong to it); any image
  lying directly at that level makes it unlabeled, as is a flat folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from aekit.errors import DataError

SPLIT_DIRS = ("train", "test")


@dataclass
class Layout:
    """The image files of a folder and what they mean.

    ``files`` are POSIX paths relative to ``root``, sorted; ``stats`` their
    ``(size, mtime_ns, mode)``; ``labels`` one class number per file (``None``
    when unlabeled); ``test`` whether each file is in the folder's own test
    split (``None`` when it has none).
    """

    root: Path
    files: list[str]
    stats: list[tuple[int, int, int]]
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    test: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def scan(root: Path) -> Layout:
    """Walk ``root`` and work out labels and split (see the module docstring)."""
    found = sorted(_walk(root, image_extensions()))
    layout = Layout(root, [rel for rel, _ in found], [st for _, st in found])
    split_names = _split_dirs(layout.files)
    if split_names:
        _apply_split_dirs(layout, split_names)
    else:
        classes, layout.notes = _classes(layout.files, str(root))
        _set_labels(layout, classes)
    return layout


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """File suffixes (lower case, with the dot) of every format Pillow can open."""
    from PIL import Image

    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _walk(root: Path, extensions: frozenset[str]):
    """Yield ``(relative POSIX path, (size, mtime_ns, mode))`` of each image file below ``root``."""
    stack, seen = [("", str(root))], set()
    while stack:
        prefix, directory = stack.pop()
        try:
            real = os.path.realpath(directory)
            if real in seen:  # a symlink loop, or two links to one folder
                continue
            seen.add(real)
            entries = list(os.scandir(directory))
        except OSError as e:
            raise DataError(f"{directory}: cannot list this folder ({e.strerror or e})") from e
        for entry in entries:  # this loop runs once per file: kept lean
            name = entry.name
            if name[0] == ".":
                continue
            if entry.is_dir():
                stack.append((prefix + name + "/", entry.path))
            elif name[name.rfind("."):].lower() in extensions:
                st = _stat(entry)
                if st is not None:
                    yield prefix + name, st


def _stat(entry: os.DirEntry) -> tuple[int, int, int] | None:
    try:
        st = entry.stat()
    except OSError:  # a dangling symlink
        return None
    return (st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) if stat.S_ISREG(st.st_mode) else None


def _split_dirs(files: list[str]) -> dict[str, str] | None:
    """``{"train": <its real name>, "test": ...}`` when both hold images, else ``None``."""
    tops = {rel.split("/", 1)[0] for rel in files if "/" in rel}
    names = {part: next((t for t in sorted(tops) if t.casefold() == part), None) for part in SPLIT_DIRS}
    return names if all(names.values()) else None  # type: ignore[return-value]


def _apply_split_dirs(layout: Layout, names: dict[str, str]) -> None:
    prefixes = {part: names[part] + "/" for part in SPLIT_DIRS}
    kept = [i for i, rel in enumerate(layout.files) if rel.startswith(tuple(prefixes.values()))]
    if len(kept) < len(layout.files):
        layout.notes.append(f"{layout.root}: ignored {len(layout.files) - len(kept)} images outside "
                            f"{names['train']}/ and {names['test']}/")
    layout.files = [layout.files[i] for i in kept]
    layout.stats = [layout.stats[i] for i in kept]
    layout.test = np.array([rel.startswith(prefixes["test"]) for rel in layout.files])
    per_part = {}
    for part in SPLIT_DIRS:
        inside = [rel[len(prefixes[part]):] for rel in layout.files if rel.startswith(prefixes[part])]
        per_part[part], notes = _classes(inside, str(layout.root / names[part]))
        layout.notes += notes
    if (per_part["train"] is None) != (per_part["test"] is None):
        labelled, flat = [names[p] for p in sorted(SPLIT_DIRS, key=lambda p: per_part[p] is None)]
        raise DataError(f"{layout.root}: {labelled}/ has class folders but {flat}/ does not; "
                        "give both class folders, or neither for an unlabeled set")
    if per_part["train"] is not None:
        # back into file order: each part's classes are in its files' (sorted) order
        parts = {part: iter(per_part[part]) for part in SPLIT_DIRS}
        _set_labels(layout, [next(parts["test" if t else "train"]) for t in layout.test])


def _classes(files: list[str], where: str) -> tuple[list[str] | None, list[str]]:
    """Each file's class (its first folder), or ``None`` when any file lies at the top; and notes."""
    loose = sum("/" not in rel for rel in files)
    if loose:
        notes = [] if loose == len(files) else [
            f"{where}: {loose} images lie directly in the folder beside {len(files) - loose} in subfolders, so "
            "the set is unlabeled; move them into a class folder to label them"]
        return None, notes
    return [rel.split("/", 1)[0] for rel in files], []


def _set_labels(layout: Layout, classes: list[str] | None) -> None:
    if classes is None:
        return
    layout.class_names = sorted(set(classes))
    index = {name: i for i, name in enumerate(layout.class_names)}
    layout.labels = np.array([index[c] for c in classes], dtype=np.int64)
