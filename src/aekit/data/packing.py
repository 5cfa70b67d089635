"""Decode many image files on every core, straight into a packed file.

Files go to worker processes in chunks, in the order given (a folder's sorted
order, kind to the disk); each worker maps the packed images file itself and
writes every image into its slot, so pixels never travel back through a
pipe: a chunk's answer is only each file's header (size and colour, which the
caller needs to settle the set's size and channels) and the files that
failed. Small jobs (and ``workers=1``) run in this process, where starting a
pool would cost more than it saves.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache

import numpy as np

from aekit.data.decode import Decoding, Header, decode, failure_reason
from aekit.errors import DataError

SERIAL_BELOW = 64  # images; fewer than this decode in-process
_MAX_CHUNK = 256

Failure = tuple[int, str]  # (index into the file list, reason)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def unreadable(path: str, reason: str) -> DataError:
    """The error ``strict`` raises for the first file that cannot be read."""
    return DataError(f"{path}: cannot read this image ({reason}); without strict it would be skipped")


def decode_files(paths: list[str], slots: np.ndarray, images_path: str, decoding: Decoding, *, workers: int,
                 progress: bool, strict: bool, desc: str) -> tuple[list[Header | None], list[Failure]]:
    """Decode ``paths[i]`` into slot ``slots[i]`` of the uint8 ``(len(paths), C, H, W)`` file at ``images_path``.

    Returns
    -------
    headers : each file's ``(width, height, is_colour)``, ``None`` where it failed
    failures : ``(i, reason)`` for each file that failed, sorted
    """
    from tqdm import tqdm  # imported here: only packing shows this bar

    headers: list[Header | None] = [None] * len(paths)
    failures: list[Failure] = []
    workers = min(workers, math.ceil(len(paths) / SERIAL_BELOW))
    size = max(1, min(_MAX_CHUNK, math.ceil(len(paths) / (4 * max(workers, 1)))))
    chunks = [(start, paths[start:start + size], slots[start:start + size].tolist(), images_path, len(paths),
               decoding) for start in range(0, len(paths), size)]
    try:
        with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False) as bar:
            for start, (found, failed) in (_serial(chunks) if workers <= 1 else _parallel(chunks, workers)):
                if strict and failed:
                    raise unreadable(paths[failed[0][0]], failed[0][1])
                headers[start:start + len(found)] = found
                failures += failed
                bar.update(len(found))
    finally:
        _target.cache_clear()  # the serial path mapped the file in this process
    return headers, sorted(failures)


def _serial(chunks: list) -> Iterator[tuple[int, tuple]]:
    for chunk in chunks:
        yield chunk[0], _decode_chunk(*chunk)


def _parallel(chunks: list, workers: int) -> Iterator[tuple[int, tuple]]:
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_ignore_sigint) as pool:
        pending = {pool.submit(_decode_chunk, *chunk): chunk for chunk in chunks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk = pending.pop(future)
                    yield chunk[0], _result(future, chunk)
        finally:  # an error, strict's stop or Ctrl-C: drop the chunks not yet started
            for future in pending:
                future.cancel()


def _result(future, chunk: tuple):
    try:
        return future.result()
    except BrokenProcessPool as e:  # a decoder crashed the process outright (a segfault on a hostile file)
        paths = chunk[1]
        raise DataError(f"a decoding process died on one of {len(paths)} files from {paths[0]}; "
                        "move them out a few at a time to find it") from e


def _context():
    # fork: workers start in milliseconds with Pillow already imported. They run
    # only Pillow and numpy, so the usual hazard of forking a threaded parent
    # (a lock held by another thread) does not reach them.
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pool and removes the temp files."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _decode_chunk(start: int, paths: list[str], slots: list[int], images_path: str, n: int,
                  decoding: Decoding) -> tuple[list[Header | None], list[Failure]]:
    images = _target(images_path, n, decoding)
    headers, failed = [], []
    for i, (path, slot) in enumerate(zip(paths, slots), start):
        try:
            pixels, header = decode(path, decoding)
            images[slot] = pixels
        except Exception as e:  # noqa: BLE001 - whatever a broken file raises, it is the file's fault
            header = None
            failed.append((i, failure_reason(path, e)))
        headers.append(header)
    return headers, failed


@lru_cache(maxsize=1)
def _target(images_path: str, n: int, decoding: Decoding) -> np.ndarray:
    """The packed file mapped once per worker process, then reused for each of its chunks.

    Returned as a plain ndarray view of the map: writing an image into a
    ``np.memmap`` subclass costs a view finalisation per image.
    """
    width, height = decoding.size
    return np.memmap(images_path, np.uint8, "r+", shape=(n, decoding.channels, height, width)).view(np.ndarray)
