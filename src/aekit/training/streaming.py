"""Images too large to hold on the training device: batches streamed from their memory-mapped file.

The trainer takes any source with ``__len__``, ``device`` and
``batches(batch_size, order=None, start=0)``. :class:`~aekit.training.trainer.Resident`
holds the images on the device; :class:`Streamed` reads them from a uint8 array
(the packed cache's ``np.memmap``, or any array) a few batches ahead, on a background
thread, so a set larger than memory trains without ever being loaded whole. Both give
the same batches in the same order, so a run is the same either way, to the bit.

:func:`data_sources` picks one of the two for each split, from the memory budget
(``data.max_memory``), and says which in one line.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Callable, Iterator

import numpy as np
import torch

from aekit.config import parse_bytes
from aekit.limits import ram_bytes
from aekit.training.trainer import Resident

CHUNK_BYTES = 4 << 20  # read per gather: enough rows to sort for locality, little enough to stay in cache
PREFETCH = 2  # chunks read ahead of the one being trained on
AUTO_SHARE = 0.5  # auto budget: this share of the RAM (and of a CUDA device's memory)


class Streamed:
    """Images read from a uint8 array ``(N, C, H, W)`` (an ``np.memmap`` or any ndarray) as batches are needed.

    A background thread gathers the rows of the next few batches (sorted by position, so
    a memory-mapped file is read in order, then put back in the batch order), into pinned
    memory on CUDA, and copies them to the device without blocking; the training step
    runs meanwhile. :meth:`batches` yields exactly what :meth:`Resident.batches` yields
    over the same images.

    Parameters
    ----------
    images : ndarray (N, C, H, W) uint8
    device : torch.device
        Where the batches go.
    """

    def __init__(self, images: np.ndarray, device: torch.device | str = "cpu"):
        self.images = images
        self._device = torch.device(device)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def device(self) -> torch.device:
        return self._device

    def batches(self, batch_size: int, order: torch.Tensor | None = None, start: int = 0) -> Iterator[torch.Tensor]:
        """Batches of ``batch_size`` images, in ``order`` (a permutation) or as stored, from image ``start``."""
        rows = np.arange(start, len(self.images)) if order is None else order[start:].cpu().numpy()
        row_bytes = max(1, int(np.prod(self.images.shape[1:])))
        per_chunk = batch_size * max(1, CHUNK_BYTES // (batch_size * row_bytes))  # whole batches per chunk
        chunks = [rows[i:i + per_chunk] for i in range(0, len(rows), per_chunk)]
        reader = _Prefetcher(self.images, chunks, self.device)
        try:
            for chunk in reader:  # (m, C, H, W) uint8 on the device
                for i in range(0, len(chunk), batch_size):
                    yield chunk[i:i + batch_size]
        finally:
            reader.close()


def gather(images: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[j] = images[rows[j]]``, reading ``images`` in ascending row order (a memory map reads forward)."""
    by_position = np.argsort(rows, kind="stable")
    out[by_position] = images[rows[by_position]]
    return out


class _Prefetcher:
    """Iterates over ``chunks`` (arrays of row indices) as device tensors, read by a daemon thread ahead."""

    def __init__(self, images: np.ndarray, chunks: list[np.ndarray], device: torch.device):
        self.images, self.chunks, self.device = images, chunks, device
        self.cuda = device.type == "cuda"
        self.queue: queue.Queue = queue.Queue(maxsize=PREFETCH)
        self.stop = threading.Event()
        if self.cuda:
            rows = max((len(c) for c in chunks), default=0)
            # PREFETCH + 2 buffers: those queued, the one being filled, the one whose copy may still run
            self.pinned = [torch.empty((rows, *images.shape[1:]), dtype=torch.uint8, pin_memory=True)
                           for _ in range(PREFETCH + 2)]
            self.copied: list[torch.cuda.Event | None] = [None] * len(self.pinned)
            self.stream = torch.cuda.Stream(device)
        self.thread = threading.Thread(target=self._read, name="aekit-prefetch", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for k, rows in enumerate(self.chunks):
                item = self._to_device(k, rows) if self.cuda else torch.from_numpy(
                    gather(self.images, rows, np.empty((len(rows), *self.images.shape[1:]), np.uint8)))
                if not self._put(item):
                    return
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the training thread, which raises it
            self._put(exc)

    def _to_device(self, k: int, rows: np.ndarray):
        slot = k % len(self.pinned)
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()  # its last copy to the device has finished: the buffer is free
        host = self.pinned[slot][:len(rows)]
        gather(self.images, rows, host.numpy())
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            on_device = host.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        self.copied[slot] = done
        return on_device, done

    def _put(self, item) -> bool:
        """Queue ``item`` (waiting for room); ``False`` once the reader is told to stop."""
        self.queue.put(item)  # close() empties the queue, so this never waits for ever
        return not self.stop.is_set()

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if self.cuda:
                item, done = item
                compute = torch.cuda.current_stream(self.device)
                compute.wait_event(done)  # the training step waits for the copy on the device, not here
                item.record_stream(compute)  # its memory is not reused before the step is done with it
            yield item

    def close(self) -> None:
        """Stop the reader: a put it is waiting in goes through, and the next one sees ``stop``."""
        self.stop.set()
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.01)


# --------------------------------------------------------------------------- resident or streamed

def memory_budget(max_memory: str, device: torch.device) -> tuple[int, str]:
    """The bytes of images that may be held on ``device``, and where that figure comes from.

    ``max_memory`` is ``data.max_memory``: ``auto`` is :data:`AUTO_SHARE` of the RAM,
    and on CUDA of the GPU's memory too when that is less; an amount is taken as given.
    """
    given = parse_bytes(max_memory, "data.max_memory")
    if given is not None:
        return given, f"--max-memory {max_memory}"
    budget, what = int(AUTO_SHARE * ram_bytes()), "the RAM"
    if device.type == "cuda":
        gpu = int(AUTO_SHARE * torch.cuda.get_device_properties(device).total_memory)
        if gpu < budget:
            budget, what = gpu, "the GPU's memory"
    return budget, f"auto: {AUTO_SHARE:.0%} of {what}; set it with --max-memory"


def data_sources(data, device: torch.device, max_memory: str = "auto",
                 log: Callable[[str], None] = lambda _: None) -> tuple[Resident | Streamed, Resident | Streamed]:
    """The training and test sources for ``data`` (an :class:`~aekit.data.ImageData`) on ``device``.

    A split is held on the device (:class:`Resident`) when it fits the budget of
    :func:`memory_budget`, the training split first; otherwise it streams
    (:class:`Streamed`). ``log`` gets one line saying which and why.
    """
    budget, why = memory_budget(max_memory, device)
    train_bytes, test_bytes = data.x_train.nbytes, data.x_test.nbytes
    hold_train = train_bytes <= budget
    hold_test = test_bytes <= budget - (train_bytes if hold_train else 0)
    sources = [Resident(torch.from_numpy(x).to(device)) if hold else Streamed(x, device)
               for x, hold in ((data.x_train, hold_train), (data.x_test, hold_test))]
    if hold_train and hold_test:
        log(f"data: the images ({_size(train_bytes + test_bytes)}) fit the memory budget ({_size(budget)}, {why}), "
            f"so they are held on {device}")
    else:
        streamed = " and ".join(name for name, hold in (("training", hold_train), ("test", hold_test)) if not hold)
        size = _size((0 if hold_train else train_bytes) + (0 if hold_test else test_bytes))
        where = getattr(data.x_train, "filename", None)
        reason = f"{why} always streams" if budget == 0 else \
            f"they do not fit the memory budget ({_size(budget)}, {why})"
        log(f"data: the {streamed} images ({size}) stream batch by batch from "
            f"{'the memory-mapped ' + str(where) if where else 'memory'}, read ahead by a background thread, as "
            f"{reason}")
    return sources[0], sources[1]


def _size(nbytes: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.3g} {unit}"
    return f"{nbytes} B"
