"""Memory a run needs, checked before it allocates.

A setting too large for the machine (``budget.resolution=20000``, ``data.input_size=100000``,
a huge batch) is refused with a message naming the setting, instead of an allocator traceback
or, worse, the kernel's OOM killer once Linux's overcommit let the allocation through. The
figures are lower bounds (the dataset's exact float32 size; every layer's output for one batch,
stored once), so a run that fits is never refused.
"""

from __future__ import annotations

from pathlib import Path

import torch

FLOAT_BYTES = 4
MEMINFO = Path("/proc/meminfo")


class NotEnoughMemory(ValueError):
    """The run cannot fit in this machine's available memory."""


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Free memory of ``device`` (CUDA: free device memory; CPU: Linux's MemAvailable), or None
    where it cannot be read (then nothing is refused)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:,.1f} GiB"


def require(nbytes: int, what: str, fix: str, device: torch.device | str = "cpu") -> None:
    """Raise :class:`NotEnoughMemory` when ``nbytes`` exceeds the memory ``device`` has free."""
    free = available_bytes(device)
    if free is not None and nbytes > free:
        raise NotEnoughMemory(f"{what} needs at least {gib(nbytes)} of memory and this machine has "
                              f"{gib(free)} available; {fix}")


def images_bytes(n: int, channels: int, size: int) -> int:
    """float32 bytes of ``n`` images of ``channels`` x ``size`` x ``size``."""
    return n * channels * size * size * FLOAT_BYTES
