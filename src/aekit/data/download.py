"""Fetch a file from a list of mirrors: MD5 checked, written atomically.

A download goes to a hidden temp file in the destination directory and is
renamed into place only after its checksum matches, so an interrupted or
corrupt download never leaves a file that a later run would take for data.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from aekit.errors import DataError, DownloadError
from aekit.io import remove_stale_temp_files

MIRRORS_ENV = "AEKIT_MIRRORS"  # comma-separated base URLs replacing every source's mirrors
PART = ".part"  # a download in progress: .<name>.<pid>.<random>.part
TIMEOUT_S = 30.0  # per connect / read, not for the whole file
_CHUNK = 1 << 16


def mirrors_from_env() -> tuple[str, ...]:
    """The mirrors named in ``$AEKIT_MIRRORS``; empty when it is unset."""
    return tuple(url.strip() for url in os.environ.get(MIRRORS_ENV, "").split(",") if url.strip())


class _NetworkFailure(Exception):
    """A mirror could not deliver the file; the next one may."""


class _ChecksumMismatch(Exception):
    """A mirror delivered a file whose MD5 is not the expected one."""

    def __init__(self, url: str, got: str):
        super().__init__(url)
        self.url, self.got = url, got


def fetch(
    filename: str,
    md5: str,
    mirrors: Sequence[str],
    dest_dir: Path,
    *,
    progress: bool = False,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download ``filename`` from the first mirror that serves it intact.

    Mirrors are tried in order; a network failure or a bad checksum on one moves
    on to the next.

    Returns
    -------
    The path of the verified file, ``dest_dir / filename``.

    Raises
    ------
    DownloadError
        Every mirror failed for a network reason (the caller may fall back).
    DataError
        A mirror served a file with the wrong checksum and no other served a
        good one; nothing was cached.
    """
    dest = dest_dir / filename
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{dest_dir}: cannot create the download directory ({e.strerror or e})") from e
    remove_stale_temp_files(dest_dir, suffixes=(PART,))  # partial downloads of a killed process
    failures: list[str] = []
    mismatch: _ChecksumMismatch | None = None
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            _fetch_from(url, md5, dest, progress, timeout)
            return dest
        except _NetworkFailure as e:
            failures.append(f"{url}: {e}")
        except _ChecksumMismatch as e:
            mismatch = mismatch or e
    if mismatch is not None:
        raise DataError(
            f"{filename}: checksum mismatch from {mismatch.url} (expected md5 {md5}, got {mismatch.got}); "
            f"nothing was cached"
        )
    raise DownloadError(f"could not download {filename} ({'; '.join(failures) or 'no mirrors configured'})")


def _fetch_from(url: str, md5: str, dest: Path, progress: bool, timeout: float) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}.", suffix=PART)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot write there ({e.strerror or e})") from e
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, progress, timeout, dest.name)
        if got != md5:
            raise _ChecksumMismatch(url, got)
        os.replace(tmp, dest)
    except OSError as e:  # _stream turned network errors into _NetworkFailure: this one is local
        raise DataError(f"{dest.parent}: cannot write {dest.name} ({e.strerror or e})") from e
    finally:
        # On any failure, Ctrl-C included, the partial file goes; after the
        # rename there is nothing left to remove.
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stream(url: str, out, progress: bool, timeout: float, desc: str) -> str:
    """Copy the body at ``url`` into ``out``; return its MD5 hex digest."""
    from tqdm import tqdm  # imported here: only a download needs it

    digest = hashlib.md5()
    received = 0
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, http.client.HTTPException, ValueError) as e:  # ValueError: a malformed mirror URL
        raise _NetworkFailure(_reason(e)) from e
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not progress,
                  leave=False) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _NetworkFailure(_reason(e)) from e
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)  # an OSError here is the disk's, not the mirror's
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise _NetworkFailure(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e) or type(e).__name__
