"""File I/O every part of aekit shares: atomic writes, JSON reading with shape checks, the log.

Nothing here imports torch, numpy or any other heavy library, so commands that only
read or write text (``aekit compare``, the report writer, the baseline cache) stay
light.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from aekit.errors import ConfigError, RunError, WriteError

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
        make_dirs(path.parent)
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
    """Write ``text`` to ``path`` as UTF-8, atomically (see :func:`atomic_write`).

    A file name that is not UTF-8 (held as surrogate escapes) is written as its own bytes.
    """
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", errors="surrogateescape"))


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
        make_dirs(directory)
        fd, probe = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise WriteError(f"{directory}: cannot write ({exc.strerror or exc})") from None


def remove_stale_temp_files(directory: str | Path, suffixes: tuple[str, ...] = (TEMP_SUFFIX,)) -> list[Path]:
    """Remove the temp files a killed aekit writer left in ``directory`` (not below it); returns what was removed.

    Only a file aekit can tell is its own goes: named as :func:`atomic_write` names
    them (``.<name>.<pid>.<8 random characters><suffix>``) by a process that no
    longer runs. Anything else, a user's ``.thesis.tmp`` included, is left alone,
    however old.
    """
    directory = Path(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:  # missing, or not ours to read: nothing to remove
        return []
    removed = []
    for entry in entries:
        pid = temp_file_pid(entry.name, suffixes)
        if pid is None or pid_alive(pid) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # a read-only directory: leave it, it harms nothing
    return removed


_TEMP_NAME = re.compile(r"\..+\.(\d+)\.[a-z0-9_]{8}(\.[a-z]+)")  # mkstemp's random part: 8 of [a-z0-9_]


def temp_file_pid(name: str, suffixes: tuple[str, ...] = (TEMP_SUFFIX,)) -> int | None:
    """The id of the process that made temp file ``name``, if aekit named it (:func:`atomic_write`); else ``None``."""
    match = _TEMP_NAME.fullmatch(name)
    return int(match.group(1)) if match and match.group(2) in suffixes else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: a number no process id can be
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


# --------------------------------------------------------------------------- paths

NAME_MAX = 255  # bytes in one path component, on every common Linux and macOS filesystem
PATH_MAX = 4096  # bytes in a whole path, its final NUL included (Linux)


def check_path(path: str | Path, what: str, params: tuple[str, ...] = ()) -> Path:
    """``path`` as a :class:`Path` if the system can name it, else a :class:`ConfigError` that says why.

    A component over :data:`NAME_MAX` bytes, a path of :data:`PATH_MAX` bytes or more, or
    a NUL byte would make every file call fail with ``ENAMETOOLONG`` or ``ValueError``.
    ``what`` names the path in the message (``"out"``, ``"run directory"``); ``params`` are the parameters it
    names (see :class:`~aekit.errors.AekitError`).
    """
    text = os.fspath(path)
    if "\0" in text:
        raise ConfigError(f"{what}: the path holds a NUL byte, which no file name can", params=params)
    size = len(os.fsencode(text))
    if size >= PATH_MAX:
        raise ConfigError(f"{what}: the path is {size} bytes long ({_clip(text)}); the system allows at most "
                          f"{PATH_MAX - 1}", params=params)
    for part in Path(text).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise ConfigError(f"{what}: a part of the path is {len(os.fsencode(part))} bytes long ({_clip(part)}); "
                              f"a file or directory name can have at most {NAME_MAX}", params=params)
    return Path(text)


def missing_dirs(path: str | Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first: what making it will create."""
    path, missing = Path(path), []
    try:
        while not path.exists() and path.parent != path:
            missing.append(path)
            path = path.parent
    except OSError:  # a parent we may not look into: making the path will fail there
        pass
    return missing


def make_dirs(path: str | Path) -> None:
    """Make directory ``path`` and its missing parents; an :class:`OSError` when the system refuses one.

    ``Path.mkdir(parents=True)`` recurses once per missing level, and a legal path can
    have 2,000 of them.
    """
    for directory in reversed(missing_dirs(path)):
        try:
            directory.mkdir()
        except FileExistsError:
            if not directory.is_dir():
                raise


def _clip(text: str, keep: int = 40) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]}...{text[-keep:]}"


# --------------------------------------------------------------------------- reading

def read_json(path: str | Path, what: str = "file") -> Any:
    """The JSON value in ``path``; a missing or unreadable file or bad JSON is a :class:`RunError`.

    ``what`` names the file's role in the message (``"run config"``, ``"evaluation"``).
    Bytes that are not UTF-8, strings that are not valid Unicode (a lone surrogate escape) and
    nesting too deep for the parser are bad JSON too.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunError(f"{path}: no {what} here") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        obj = json.loads(data.decode("utf-8"))
        # a lone surrogate would break every later print; one that stands for a byte of a file name is fine
        json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="surrogateescape")
    except UnicodeError as exc:
        raise RunError(f"{path}: the {what} {_bad_text(exc)}") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: the {what} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise RunError(f"{path}: the {what} is nested too deep to be one aekit wrote") from None
    return obj


def _bad_text(exc: UnicodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    return "holds a string that is not valid Unicode (a lone surrogate escape)"


def read_lines(path: str | Path) -> list[str | None]:
    """The lines of a text file, each decoded alone: a line that is not UTF-8 is ``None``, the others unharmed.

    A missing file has no lines; one that cannot be read is a :class:`RunError`.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = []
    for raw in data.splitlines():
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(None)
    return lines


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
