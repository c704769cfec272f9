"""Data-parallel training on torch.distributed: the process group, the DDP wrapper and the few
collectives the training loop needs.

One training process per device (``torchrun --nproc_per_node=N``): gloo on CPU, NCCL on CUDA.
Every process holds the whole model; each step every process trains on its share of the same
global batch (``budget.batch_size`` / world size) and DDP averages the gradients, so N processes
take the steps one process would take with that global batch. Only rank 0 logs, checkpoints and
writes results; every process resumes from the same checkpoint.

Only the training loop (evaluators/training.py) and its command line (search/cli/train.py) use
this module: the rest of boolnas never sees a process group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from boolnas.space.fields import INTEGER, field_value

log = logging.getLogger(__name__)

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")  # set by torchrun for every process it starts
ATTEMPT_ENV = "TORCHELASTIC_RESTART_COUNT"  # torchrun: how often it has restarted the processes


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run: ``rank`` of ``world_size`` processes,
    ``local_rank`` of ``local_world_size`` on its machine (its CUDA device index), in torchrun's
    ``attempt`` (0, then 1, 2, ... after restarts). The default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    attempt: int = 0

    def __post_init__(self) -> None:
        for name in ("rank", "world_size", "local_rank", "local_world_size", "attempt"):
            least = 1 if name.endswith("world_size") else 0
            field_value(getattr(self, name), f"distributed {name}", INTEGER, low=least,
                        expected=f"an integer >= {least}")
        if self.rank >= self.world_size:
            raise ValueError(f"distributed rank {self.rank} is not below the world size {self.world_size}")

    @property
    def active(self) -> bool:
        """More than one process: DDP, sharded batches, collectives."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, checkpoints and writes results."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> DistContext:
        """The context torchrun describes in ``env`` (RANK, WORLD_SIZE, LOCAL_RANK); a single
        process when they are absent. Called by the command line with ``os.environ``."""
        if "WORLD_SIZE" not in env:
            return cls()
        try:
            values = {k.lower(): int(env.get(k, "1" if k.endswith("WORLD_SIZE") else "0")) for k in ENV_KEYS}
            values["attempt"] = int(env.get(ATTEMPT_ENV, "0"))
        except ValueError:
            shown = {k: env.get(k) for k in (*ENV_KEYS, ATTEMPT_ENV)}
            raise ValueError(f"torch.distributed environment {shown} does not hold integers; start the training "
                             "with torchrun, which sets them") from None
        return cls(**values)


SINGLE = DistContext()


def backend_for(device: torch.device) -> str:
    """NCCL between CUDA devices, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def start(ctx: DistContext, device: torch.device, timeout_s: float = 1800.0) -> None:
    """Join the process group of ``ctx`` (rendezvous from torchrun's MASTER_ADDR / MASTER_PORT)."""
    if not ctx.active or dist.is_initialized():
        return
    from torch.distributed.rendezvous import rendezvous

    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=timeout_s)
    store, _, _ = next(rendezvous("env://", ctx.rank, ctx.world_size, timeout=timeout))
    store.set_timeout(timeout)
    # torchrun keeps one key-value store across its restarts: under a prefix of their own, the
    # restarted processes cannot read the addresses the dead ones published (and fail to connect)
    store = dist.PrefixStore(f"boolnas/attempt{ctx.attempt}", store)
    dist.init_process_group(backend_for(device), store=store, rank=ctx.rank, world_size=ctx.world_size,
                            timeout=timeout)
    log.info("process group: %d processes, %s backend%s", ctx.world_size, backend_for(device),
             f" (torchrun restart {ctx.attempt})" if ctx.attempt else "")


def stop() -> None:
    """Leave the process group (a no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else itself."""
    if not ctx.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_sum(ctx: DistContext, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sums of ``values`` over all processes (``values`` itself for one process)."""
    if not ctx.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def mean_of(ctx: DistContext, value: torch.Tensor) -> float:
    """The mean over all processes of a scalar tensor (its value for one process)."""
    if not ctx.active:
        return float(value)
    t = value.detach().double().reshape(1)
    dist.all_reduce(t)
    return float(t) / ctx.world_size


def spread(ctx: DistContext, value: float, device: torch.device) -> float:
    """Largest minus smallest ``value`` over all processes (0 for one process)."""
    if not ctx.active:
        return 0.0
    t = torch.tensor([value, -value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0]) + float(t[1])


def same_everywhere(ctx: DistContext, value: int, device: torch.device) -> bool:
    """Whether every process holds the same ``value`` (True for one process)."""
    return spread(ctx, float(value), device) == 0.0


def broadcast_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Give every process rank 0's buffers (BatchNorm statistics), so all score the same network."""
    if not ctx.active:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
