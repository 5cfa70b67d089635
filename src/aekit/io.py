"""File I/O every part of aekit shares: atomic writes, JSON reading with shape checks, the log.

Nothing here imports torch, numpy or any other heavy library, so commands that only
read or write text (``aekit compare``, the report writer, the baseline cache) stay
light.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from aekit.errors import RunError, WriteError

Log = Callable[[str], None]


def log(message: str) -> None:
    """The default ``log`` of every function that reports progress: one line to stderr.

    Notices go to stderr so that they never mix with what a command prints on stdout.
    """
    print(message, file=sys.stderr)


def quiet(message: str) -> None:
    """A ``log`` that drops every message."""


def printable(text: str) -> str:
    r"""``text`` safe to write as UTF-8: bytes of a file name that are not UTF-8 shown as ``\xff``.

    Python gives such a name (``os.listdir``, ``os.fsdecode``) lone surrogates, which
    no UTF-8 file, JSON reader or web page accepts.
    """
    return os.fsencode(text).decode("utf-8", "backslashreplace")


# --------------------------------------------------------------------------- writing

def atomic_write(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)``, then rename the file over ``path``.

    Readers see the old file or the new one, never half of one. The data is flushed
    to disk (``fsync``) before the rename and the directory entry after it, so a
    power cut cannot leave a renamed but empty file. On any failure the temp file is
    removed; a failure of the disk (full, read-only, no permission) is a
    :class:`~aekit.errors.WriteError` naming ``path``. The temp file's name carries
    this process's id, so :func:`remove_stale_temp_files` can tell a killed writer's
    leftovers from a live one's.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        write(tmp)
        fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` and a newline to a text file; a disk failure is a :class:`WriteError`."""
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None


TEMP_SUFFIX = ".tmp"


def check_writable(directory: str | Path) -> None:
    """Raise :class:`WriteError` now if files cannot be made in ``directory`` (before slow work, not after)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise WriteError(f"{directory}: cannot write ({exc.strerror or exc})") from None


def remove_stale_temp_files(directory: str | Path, suffixes: tuple[str, ...] = (TEMP_SUFFIX,),
                            recursive: bool = False) -> list[Path]:
    """Remove the temp files a killed writer left in ``directory``; returns what was removed.

    A temp file is hidden (``.name.PID.xxxx.tmp``); it is stale when the process that
    made it no longer runs. One without a process id (an older aekit's) is stale after
    an hour.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    files = directory.rglob(".*") if recursive else directory.glob(".*")
    for path in files:
        if not path.is_file() or not path.name.endswith(suffixes) or not _stale(path):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass  # a read-only directory: leave it, it harms nothing
    return removed


def _stale(path: Path) -> bool:
    parts = path.name.split(".")  # ".name.PID.random.tmp": the random part has no dot
    pid = int(parts[-3]) if len(parts) >= 5 and parts[-3].isdigit() else None
    if pid is None:
        try:
            return time.time() - path.stat().st_mtime > 3600
        except OSError:
            return False
    return not pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, owned by someone else
    return True


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON with a final newline, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def fsync_file(path: str | Path) -> None:
    """Flush a file's data to disk, whichever process wrote it (memory-mapped writes included)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some systems cannot open a directory; the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- reading

def read_json(path: str | Path, what: str = "file") -> Any:
    """The JSON value in ``path``; a missing or unreadable file or bad JSON is a :class:`RunError`.

    ``what`` names the file's role in the message (``"run config"``, ``"evaluation"``).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunError(f"{path}: no {what} here") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: the {what} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:  # thousands of nested brackets: no file aekit writes is deeper than a few
        raise RunError(f"{path}: the {what} is nested too deep to be one aekit wrote") from None


def read_json_object(path: str | Path, what: str = "file", required: dict[str, type | tuple] | None = None) -> dict:
    """Like :func:`read_json`, but the value must be an object holding ``required`` keys of the given types."""
    obj = read_json(path, what)
    check_fields(obj, required or {}, f"{path}")
    return obj


def check_fields(obj: Any, required: dict[str, type | tuple], where: str) -> None:
    """Raise :class:`RunError` naming ``where`` and the field when ``obj`` lacks a key or has the wrong type."""
    if not isinstance(obj, dict):
        raise RunError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key, types in required.items():
        if key not in obj:
            raise RunError(f"{where}: field {key!r} is missing")
        if not isinstance(obj[key], types) or (isinstance(obj[key], bool) and bool not in _as_tuple(types)):
            raise RunError(f"{where}: field {key!r} should be {_type_names(types)}, got {obj[key]!r}")


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
             bool: "true or false", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(types))
