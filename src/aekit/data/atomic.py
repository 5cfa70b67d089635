"""Cache entries that are directories, built aside and renamed into place whole.

A reader that finds an entry's final name can trust what is there: a crash,
Ctrl-C or a full disk leaves at most a hidden temp directory behind, never a
half-written entry under the real name. A temp directory carries its
writer's process id, so the next build removes those whose writer is gone.
Single files use :func:`aekit.io.atomic_write` instead.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aekit.errors import DataError
from aekit.io import pid_alive

_TEMP = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+\.tmp$")  # .<name>.<pid>.<random>.tmp, as aekit.io names temp files


@contextmanager
def building_dir(dest: Path) -> Iterator[Path]:
    """``with building_dir(dest) as tmp:`` fill ``tmp``; on a clean exit it becomes ``dest``.

    Stale temp directories beside ``dest`` are removed first. When another
    process publishes ``dest`` meanwhile, its copy is kept: both came from the
    same input.
    """
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(dest.parent)
        tmp.mkdir()
        yield tmp
        _publish(tmp, dest)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot write the cache ({e.strerror or e})") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(directory: Path) -> None:
    """Remove the temp directories in ``directory`` left by processes that no longer run."""
    for entry in os.scandir(directory):
        match = _TEMP.match(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not pid_alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def _publish(tmp: Path, dest: Path) -> None:
    try:
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():  # not a lost race: a real failure
            raise
