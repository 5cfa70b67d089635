"""Many processes with the standard engine: torchrun's environment and DistributedDataParallel.

``torchrun --nproc-per-node N -m aekit train ...`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`join` joins them into one process
group (gloo on CPU, NCCL on CUDA). The trainer then splits every global batch (the
configured ``batch_size``) among the ranks, averages the gradients with DDP, and adds
up the metrics; rank 0 alone writes the run directory.

How a global batch is split: with the seeded permutation ``perm`` that one process
would use, rank ``r`` takes the positions ``r, r+W, r+2W, ...`` (``perm[r::W]``), in
local batches of ``B/W``; so local batch ``k`` of every rank lies inside global batch
``k``, and together the ranks see exactly the batches one process would. Each rank's
loss is weighted by its share of the global batch, so DDP's average of the gradients
is the gradient of the global batch's mean loss.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from aekit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class World:
    """Where a process stands among those training together (rank 0 of 1: alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all ranks (in place; no-op alone)."""
        if self.distributed:
            torch.distributed.all_reduce(tensor)
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true on any rank (a collective: every rank must call it at the same point)."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([float(flag)], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order."""
        if not self.distributed:
            return [obj]
        out = [None] * self.size
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def main_first(self, fn):
        """``fn()`` on rank 0, then on the others (rank 0 fills caches, downloads; the others read them)."""
        if self.main:
            result = fn()
            self.barrier()
            return result
        self.barrier()
        return fn()

    def lost_peer(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a collective failing because another process is gone (not a bug of ours)."""
        if not self.distributed:
            return False
        dist_error = getattr(torch.distributed, "DistError", ())
        signs = ("gloo", "NCCL", "Connection reset", "Broken pipe")
        return isinstance(exc, dist_error) or any(s in str(exc) for s in signs)

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``module`` in DistributedDataParallel (itself when alone)."""
        if not self.distributed:
            return module
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def env_world() -> World:
    """The world torchrun describes in the environment (alone when it describes none)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


_JOINED = []  # process groups aekit made (and so leaves); a caller's own group is left alone


def join(device_name: str) -> tuple[World, torch.device]:
    """Join torchrun's process group if there is one; ``(world, the device to train on)``.

    With many processes the device is ``cuda:LOCAL_RANK`` on CUDA (NCCL), the CPU
    otherwise (gloo). Alone, it is ``device_name`` resolved as usual.
    """
    from aekit.training.trainer import resolve_device

    world = env_world()
    if not world.distributed:
        return world, resolve_device(device_name)
    if device_name == "mps":
        raise ConfigError("train.device: many processes run on cpu or cuda, not mps")
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if device_name == "cuda" and not use_cuda:
        resolve_device("cuda")  # the usual one-line error
    device = torch.device("cuda", world.local_rank) if use_cuda else torch.device("cpu")
    if not torch.distributed.is_initialized():
        if use_cuda:
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
        _JOINED.append(True)
    return world, device


def leave(world: World, ok: bool = True) -> None:
    """Leave the process group :func:`join` made (none when alone or when the caller made it).

    After a clean run every rank first waits for the others (rank 0 may still be writing),
    so none tears the group down under another; after an error it leaves at once (the
    others may be stuck in a collective, and torchrun stops them when this process ends).
    """
    if world.distributed and _JOINED and torch.distributed.is_initialized():
        if ok:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        _JOINED.clear()


def check_batch(batch_size: int, world: World) -> None:
    if world.distributed and batch_size % world.size:
        raise ConfigError(f"train.batch_size: the global batch of {batch_size} must split evenly among the "
                          f"{world.size} processes; use a multiple of {world.size}")


def launch(nproc: int, argv: list[str]) -> int:
    """``aekit train --nproc N ...``: run ``torchrun --standalone --nproc-per-node N -m aekit train ...``.

    torchrun is started in this process (its own code, not ours); each worker gets
    ``OMP_NUM_THREADS`` = this machine's cores / N unless it is set. A worker that fails
    ends the others (torchrun does that); this prints which one, in one line, under the
    worker's own error line.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from aekit.errors import AekitError

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    args = parse_args(["--standalone", "--nproc-per-node", str(nproc), "--module", "aekit", "train", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        # the first to fail, not the ones torchrun then stopped with SIGTERM
        rank, failure = min(exc.failures.items(), key=lambda kv: (kv[1].signal_name() == "SIGTERM",
                                                                  kv[1].timestamp, kv[0]))
        how = f"was killed by signal {failure.signal_name()}" if failure.exitcode < 0 else \
            f"exited with code {failure.exitcode}"
        err = AekitError(f"process {rank} of {nproc} {how}, so the others were stopped; a run that saved a "
                         "checkpoint continues with: aekit train --resume RUN --nproc N")
        err.exit_code = failure.exitcode if 0 < failure.exitcode < 128 else 1
        raise err from None
    return 0
