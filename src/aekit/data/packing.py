"""Probe and decode many image files on every core, straight into a packed file.

Files go to worker processes in chunks; each worker maps the packed images
file itself and writes its images into their slots, so pixels never travel
back through a pipe: a chunk's answer is only the list of files that failed.
Small jobs (and ``workers=1``) run in this process, where starting a pool
would cost more than it saves.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache

import numpy as np

from aekit.data.decode import Decoding, decode, failure_reason, probe
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


def probe_files(paths: list[str], *, workers: int, progress: bool, strict: bool,
                desc: str) -> tuple[list[tuple[int, int, bool] | None], list[Failure]]:
    """Read every file's header: ``(width, height, is_colour)`` per file, ``None`` where it failed."""
    found: list[tuple[int, int, bool] | None] = [None] * len(paths)
    failures: list[Failure] = []
    for start, (results, failed) in _run(_probe_chunk, paths, (), workers, progress, desc):
        found[start:start + len(results)] = results
        _collect(failed, failures, paths, strict)
    return found, failures


def decode_files(paths: list[str], images_path: str, decoding: Decoding, *, workers: int, progress: bool,
                 strict: bool, desc: str) -> list[Failure]:
    """Decode ``paths[i]`` into slot ``i`` of the ``(len(paths), C, H, W)`` uint8 file at ``images_path``."""
    failures: list[Failure] = []
    target = (images_path, len(paths), decoding)
    for _, failed in _run(_decode_chunk, paths, target, workers, progress, desc):
        _collect(failed, failures, paths, strict)
    try:
        return sorted(failures)
    finally:
        _target.cache_clear()  # the serial path mapped the file in this process


def unreadable(path: str, reason: str) -> DataError:
    """The error ``strict`` raises for the first file that cannot be read."""
    return DataError(f"{path}: cannot read this image ({reason}); without strict it would be skipped")


def _collect(failed: list[Failure], failures: list[Failure], paths: list[str], strict: bool) -> None:
    if strict and failed:
        i, reason = min(failed)
        raise unreadable(paths[i], reason)
    failures.extend(failed)


def _run(task: Callable, paths: list[str], extra: tuple, workers: int, progress: bool,
         desc: str) -> Iterator[tuple[int, object]]:
    """Run ``task(start, chunk, *extra)`` over chunks of ``paths``; yield ``(start, result)`` as each ends."""
    from tqdm import tqdm  # imported here: only packing shows this bar

    workers = min(workers, math.ceil(len(paths) / SERIAL_BELOW))
    size = max(1, min(_MAX_CHUNK, math.ceil(len(paths) / (4 * max(workers, 1)))))
    chunks = [(start, paths[start:start + size]) for start in range(0, len(paths), size)]
    with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        results = _serial(task, chunks, extra) if workers <= 1 else _parallel(task, chunks, extra, workers)
        for start, chunk_size, result in results:
            bar.update(chunk_size)
            yield start, result


def _serial(task: Callable, chunks: list, extra: tuple) -> Iterator[tuple[int, int, object]]:
    for start, chunk in chunks:
        yield start, len(chunk), task(start, chunk, *extra)


def _parallel(task: Callable, chunks: list, extra: tuple, workers: int) -> Iterator[tuple[int, int, object]]:
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_ignore_sigint) as pool:
        pending = {pool.submit(task, start, chunk, *extra): (start, len(chunk)) for start, chunk in chunks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    start, n = pending.pop(future)
                    yield start, n, _result(future, chunks, start, n)
        finally:  # an error, strict's stop or Ctrl-C: drop the chunks not yet started
            for future in pending:
                future.cancel()


def _result(future, chunks: list, start: int, n: int):
    try:
        return future.result()
    except BrokenProcessPool as e:  # a decoder crashed the process outright (a segfault on a hostile file)
        chunk = next(c for s, c in chunks if s == start)
        raise DataError(f"a decoding process died on one of {n} files from {chunk[0]}; "
                        "move the files out one by one to find it, or report it") from e


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


def _probe_chunk(start: int, paths: list[str]) -> tuple[list, list[Failure]]:
    results, failed = [], []
    for i, path in enumerate(paths, start):
        try:
            results.append(probe(path))
        except Exception as e:  # noqa: BLE001 - whatever a broken file raises, it is the file's fault
            results.append(None)
            failed.append((i, failure_reason(path, e)))
    return results, failed


def _decode_chunk(start: int, paths: list[str], images_path: str, n: int, decoding: Decoding) -> list[Failure]:
    images = _target(images_path, n, decoding)
    failed = []
    for i, path in enumerate(paths, start):
        try:
            images[i] = decode(path, decoding)
        except Exception as e:  # noqa: BLE001 - as above
            failed.append((i, failure_reason(path, e)))
    return failed


@lru_cache(maxsize=1)
def _target(images_path: str, n: int, decoding: Decoding) -> np.memmap:
    """The packed file mapped once per worker process, then reused for each of its chunks."""
    width, height = decoding.size
    return np.memmap(images_path, np.uint8, "r+", shape=(n, decoding.channels, height, width))
