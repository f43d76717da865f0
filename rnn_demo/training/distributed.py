"""Training on several processes with PyTorch's own engine: ``torchrun`` and ``DistributedDataParallel``.

``torchrun --nproc_per_node N -m train ...`` starts N copies of the same command with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` (and the rendezvous address) in their environment;
:func:`ranks_from_environment` reads them, and without them everything is one process, as before.

What the ranks share, and how the loop keeps them in step:

* the batch: ``--batch-size`` is the global batch, its contiguous streams divided among the ranks
  (:func:`local_rows`), so N processes train the model one process trains with the same flags;
* the gradient: ``DistributedDataParallel`` averages it over the ranks in every backward;
* the clock: each step's time is the slowest rank's (:meth:`Ranks.slowest`), so every rank agrees
  when a ``--time-budget`` is spent and all of them stop at the same step;
* decisions only rank 0 takes (stop early on ``--patience``) reach the others by broadcast;
* rank 0 alone logs, evaluates and writes; the state it saves holds every rank's carried hidden
  state and random-number state (:meth:`Ranks.gathered`), so ``--resume`` continues under torchrun.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import distributed as dist

from rnn_demo.training.config import TrainingError

# torchrun's variables (torch.distributed.run); MASTER_ADDR and MASTER_PORT come with them.
ENVIRONMENT = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def backend(self, device: torch.device) -> str:
        """nccl between GPUs, gloo between CPU processes."""
        return "nccl" if device.type == "cuda" else "gloo"

    def start(self, device: torch.device, timeout_seconds: float) -> None:
        """Join the process group (a no-op for one process). ``timeout_seconds`` bounds how long a
        collective waits for a rank that does not come, so no rank hangs for ever."""
        if not self.distributed:
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(
                self.backend(device),
                rank=self.rank,
                world_size=self.world_size,
                timeout=datetime.timedelta(seconds=timeout_seconds),
                **({"device_id": device} if device.type == "cuda" else {}),
            )
        except (RuntimeError, ValueError) as error:
            raise TrainingError(f"rank {self.rank} could not join the other ranks: {first_line(error)}") from None

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    # ---- what the ranks exchange (each is the identity for one process) -----------------------

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks."""
        if not self.distributed:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def total(self, value: int) -> int:
        """The sum of an integer over the ranks."""
        return int(self._reduced(value, "SUM"))

    def slowest(self, seconds: float) -> float:
        """The largest of the ranks' ``seconds``: one clock for all of them."""
        return self._reduced(seconds, "MAX")

    def _reduced(self, value: float, operation: str) -> float:
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, operation))
        return float(tensor.item())

    def from_main(self, flag: bool) -> bool:
        """Rank 0's ``flag``, on every rank."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=self._device())
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())

    def gathered(self, value):
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        if not self.distributed:
            return [value]
        values = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def ranks_from_environment(environ: Mapping[str, str] | None = None) -> Ranks:
    """The ranks torchrun set, or one process when it did not start this one."""
    environ = os.environ if environ is None else environ
    present = [name for name in ENVIRONMENT if name in environ]
    if not present:
        return Ranks()
    if len(present) < len(ENVIRONMENT):
        missing = ", ".join(name for name in ENVIRONMENT if name not in environ)
        raise TrainingError(f"{', '.join(present)} set but not {missing}: start several processes with torchrun")
    try:
        rank, local_rank, world_size = (int(environ[name]) for name in ENVIRONMENT)
    except ValueError:
        shown = ", ".join(f"{name}={environ[name]!r}" for name in ENVIRONMENT)
        raise TrainingError(f"torchrun's variables are not whole numbers: {shown}") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise TrainingError(f"RANK={rank} does not fit WORLD_SIZE={world_size}")
    return Ranks(rank=rank, world_size=world_size, local_rank=local_rank)


def local_rows(batch_size: int, ranks: Ranks, micro_batches: int = 1) -> slice:
    """The rows (streams) of the global batch that this rank trains on: a contiguous block."""
    parts = ranks.world_size * micro_batches
    if batch_size % parts:
        accumulation = f" x {micro_batches} micro-batches" if micro_batches > 1 else ""
        raise TrainingError(
            f"--batch-size {batch_size} must divide evenly among {ranks.world_size} rank"
            f"{'s' if ranks.world_size > 1 else ''}{accumulation}: use a multiple of {parts}"
        )
    share = batch_size // ranks.world_size
    return slice(ranks.rank * share, (ranks.rank + 1) * share)


def first_line(error: BaseException) -> str:
    """What an error says, in one line: collective errors carry pages of C++ context, a source
    location first and advice on debugging after it."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0])  # "[.../gloo/transport/tcp/pair.cc:537] "
    return text.split(" This is typically caused by")[0].rstrip()
