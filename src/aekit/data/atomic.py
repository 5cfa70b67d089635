"""Atomic writes for caches: a temp file or directory, renamed into place when complete.

A reader that finds the final name can trust what is there: a crash, Ctrl-C
or a full disk leaves at most a temp entry behind, never a half-written one
under the real name. Temp entries carry the writer's process id, so the next
run removes those whose writer is gone (:func:`remove_stale`).
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

_TEMP = re.compile(r"^\..+\.tmp-(\d+)-[^.]+$")  # .<name>.tmp-<pid>-<random>


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    with temp_file(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def temp_file(dest: Path) -> Iterator[Path]:
    """``with temp_file(dest) as tmp:`` write ``tmp``; on a clean exit it is synced and renamed to ``dest``."""
    tmp = _temp_name(dest)
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, dest)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot write {dest.name} ({e.strerror or e})") from e
    finally:
        tmp.unlink(missing_ok=True)  # on any failure, Ctrl-C included; after the rename it is gone


@contextmanager
def building_dir(dest: Path) -> Iterator[Path]:
    """``with building_dir(dest) as tmp:`` fill ``tmp``; on a clean exit it becomes ``dest``.

    Stale temp entries beside ``dest`` are removed first. When another process
    publishes ``dest`` meanwhile, its copy is kept: both came from the same input.
    """
    remove_stale(dest.parent)
    tmp = _temp_name(dest)
    try:
        tmp.mkdir()
        yield tmp
        _publish(tmp, dest)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot write the cache ({e.strerror or e})") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, dest: Path) -> None:
    try:
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():  # not a lost race: a real failure
            raise


def remove_stale(directory: Path) -> None:
    """Remove temp entries in ``directory`` left by processes that no longer run."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match and not _alive(int(match.group(1))):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)


def _temp_name(dest: Path) -> Path:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot create the cache directory ({e.strerror or e})") from e
    # The random part keeps two writers in one process apart.
    return dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


def fsync(path: Path) -> None:
    """Flush ``path``'s data to disk, whichever process wrote it (memory-mapped writes included)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
