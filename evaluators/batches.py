"""Where the training loop's batches come from: in-memory tensors or streamed DataLoaders.

Both feeds give the loop the same three things: each epoch's training batches (this process's
share of every global batch), the training images that re-estimate BatchNorm statistics (the
same on every process), and this process's contiguous share of a split to score.

- :class:`MemoryFeed` indexes the tensors of a :class:`~evaluators.data.Dataset` with one seeded
  generator (order and augmentation), exactly as the search's proxy has always trained.
- :class:`StreamFeed` reads a :class:`~evaluators.data.Streams` through DataLoaders with worker
  processes (``budget.data_workers``) and pinned memory on CUDA. Its sampler draws each epoch's
  order and a per-image augmentation seed from (seed, epoch), so the images of a global batch
  and their crops are the same for 1 or N processes, any number of workers, and after a resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

from boolnas.evaluators.data import Dataset, DatasetError, Streams
from boolnas.evaluators.data.streams import worker_message
from boolnas.evaluators.distributed import DistContext

if TYPE_CHECKING:
    from boolnas.evaluators.training import Budget

SPLITS = ("val", "test")


class Feed(Protocol):
    steps_per_epoch: int

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def calibration(self, batches: int) -> Iterator[torch.Tensor]: ...

    def scored(self, split: str, limit: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def generator_state(self) -> torch.Tensor | None: ...

    def set_generator_state(self, state: torch.Tensor) -> None: ...


def make_feed(data: Dataset | Streams, budget: Budget, seed: int, ctx: DistContext, device: torch.device) -> Feed:
    """The feed of ``data``: tensors are indexed, streams go through DataLoaders."""
    if isinstance(data, Dataset):
        return MemoryFeed(data, budget, seed, ctx)
    return StreamFeed(data, budget, seed, ctx, device)


def _check_batch(n_train: int, budget: Budget, ctx: DistContext) -> None:
    """Several processes need a whole global batch each step (else some would get no images)."""
    if ctx.active and n_train < budget.batch_size:
        raise ValueError(f"budget.batch_size={budget.batch_size} (the global batch) exceeds the {n_train} training "
                         f"images; lower it for a run on {ctx.world_size} processes")


def _shard(n: int, ctx: DistContext) -> range:
    """This process's contiguous share of ``n`` items."""
    return range(n * ctx.rank // ctx.world_size, n * (ctx.rank + 1) // ctx.world_size)


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 2-pixel-shift crop (replicate padding) and horizontal flip, per batch (in-memory data)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    dy, dx = (int(v) for v in torch.randint(0, 5, (2,), generator=gen))
    out = padded[:, :, dy:dy + h, dx:dx + w]
    flip = torch.rand(n, generator=gen) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)


class MemoryFeed:
    """Batches indexed from in-memory tensors; one seeded generator draws order and augmentation."""

    def __init__(self, data: Dataset, budget: Budget, seed: int, ctx: DistContext) -> None:
        self.data, self.budget, self.ctx = data, budget, ctx
        self.gen = torch.Generator().manual_seed(seed)
        self.n_train = min(budget.train_subset or len(data.train_y), len(data.train_y))
        _check_batch(self.n_train, budget, ctx)
        self.steps_per_epoch = max(1, self.n_train // budget.batch_size)  # drop the ragged last batch

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        b, ctx = self.budget.batch_size, self.ctx
        local = b // ctx.world_size
        order = torch.randperm(len(self.data.train_y), generator=self.gen)[:self.n_train]
        for i in range(self.steps_per_epoch):
            idx = order[i * b:(i + 1) * b]
            if ctx.active:
                idx = idx[ctx.rank * local:(ctx.rank + 1) * local]
            xb, yb = self.data.train_x[idx], self.data.train_y[idx]
            if self.budget.augment:
                xb = augment_batch(xb, self.gen)
            yield xb, yb

    def calibration(self, batches: int) -> Iterator[torch.Tensor]:
        b = self.budget.batch_size
        n = min(batches * b, len(self.data.train_y))
        for i in range(0, n, b):
            yield self.data.train_x[i:i + b]

    def scored(self, split: str, limit: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = (self.data.val_x, self.data.val_y) if split == "val" else (self.data.test_x, self.data.test_y)
        part = _shard(min(limit or len(y), len(y)), self.ctx)
        step = self.budget.batch_size * 2
        for i in range(part.start, part.stop, step):
            j = min(i + step, part.stop)
            yield x[i:j], y[i:j]

    def generator_state(self) -> torch.Tensor | None:
        return self.gen.get_state()

    def set_generator_state(self, state: torch.Tensor) -> None:
        self.gen.set_state(state)


class GlobalBatchSampler(Sampler[tuple[int, int]]):
    """This process's ``(index, augmentation seed)`` items of one epoch.

    The epoch's order is a permutation seeded by (seed, epoch), cut into ``steps`` global batches
    of ``batch_size``; process ``rank`` of ``world_size`` takes the ``rank``-th contiguous share of
    each. Every image's augmentation seed belongs to its position in the epoch, not to a process.
    """

    def __init__(self, n: int, steps: int, batch_size: int, seed: int, ctx: DistContext) -> None:
        self.n, self.steps, self.batch_size, self.seed, self.ctx = n, steps, batch_size, seed, ctx
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _positions(self) -> list[int]:
        local, used = self.batch_size // self.ctx.world_size, min(self.steps * self.batch_size, self.n)
        out: list[int] = []
        for step in range(self.steps):
            lo = step * self.batch_size + self.ctx.rank * local
            out.extend(range(lo, min(lo + local, used)))
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        used = min(self.steps * self.batch_size, self.n)
        order = torch.randperm(self.n, generator=gen)[:used].tolist()
        seeds = torch.randint(0, 2**62, (used,), generator=gen).tolist()
        for p in self._positions():
            yield order[p], seeds[p]

    def __len__(self) -> int:
        return len(self._positions())


class StreamFeed:
    """Batches read by DataLoaders (worker processes, pinned memory on CUDA) from :class:`Streams`."""

    def __init__(self, streams: Streams, budget: Budget, seed: int, ctx: DistContext, device: torch.device) -> None:
        self.streams, self.budget, self.ctx = streams, budget, ctx
        self.workers, self.pin = budget.data_workers, device.type == "cuda"
        n = len(streams.train)  # type: ignore[arg-type]
        self.n_train = min(budget.train_subset or n, n)
        _check_batch(self.n_train, budget, ctx)
        self.steps_per_epoch = max(1, self.n_train // budget.batch_size)
        self.sampler = GlobalBatchSampler(n, self.steps_per_epoch, budget.batch_size, seed, ctx)
        self.loader = DataLoader(streams.train, batch_size=budget.batch_size // ctx.world_size,
                                 sampler=self.sampler, num_workers=self.workers, pin_memory=self.pin,
                                 persistent_workers=self.workers > 0)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.set_epoch(epoch)
        yield from _checked(self.loader)

    def _loader(self, dataset: object, indices: range, batch_size: int) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=indices,  # type: ignore[arg-type]
                          num_workers=min(self.workers, max(1, len(indices) // batch_size)) if self.workers else 0,
                          pin_memory=self.pin)

    def calibration(self, batches: int) -> Iterator[torch.Tensor]:
        b = self.budget.batch_size
        n = min(batches * b, len(self.streams.train_plain))  # type: ignore[arg-type]
        for x, _ in _checked(self._loader(self.streams.train_plain, range(n), b)):
            yield x

    def scored(self, split: str, limit: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dataset = self.streams.val if split == "val" else self.streams.test
        n = len(dataset)  # type: ignore[arg-type]
        part = _shard(min(limit or n, n), self.ctx)
        if len(part):
            yield from _checked(self._loader(dataset, part, self.budget.batch_size * 2))

    def generator_state(self) -> torch.Tensor | None:
        return None  # the sampler derives everything from (seed, epoch)

    def set_generator_state(self, state: torch.Tensor) -> None:
        """Nothing to restore (see :meth:`generator_state`)."""


def _checked(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches; a data error in a worker is re-raised with its own one-line message
    (torch wraps it in the worker's traceback)."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except DatasetError as exc:
            raise DatasetError(worker_message(exc)) from None
        yield batch
