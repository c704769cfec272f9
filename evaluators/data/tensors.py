"""Data sets held in memory as normalized float tensors: the search's proxies train from these
(indexing a tensor is the cheapest way to make a batch of small images)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from boolnas.evaluators.data.config import DatasetError
from boolnas.evaluators.memory import images_bytes, require

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Normalized float images (N, C, H, W) and int64 labels, split three ways."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    # resized copies by size: a search resizes the same data for every trial (~0.2 s each at 1 thread)
    _resized: dict[int, Dataset] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def input_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_train(self) -> int:
        return len(self.train_y)

    def resized(self, size: int) -> Dataset:
        """The same images area-resampled to ``size`` x ``size`` (cheap proxies train smaller)."""
        if size == self.input_size:
            return self
        if size in self._resized:
            return self._resized[size]
        self.require_memory_for(size)

        def resize(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.interpolate(x, size=(size, size), mode="area") if len(x) else x

        out = Dataset(self.name, resize(self.train_x), self.train_y, resize(self.val_x), self.val_y,
                      resize(self.test_x), self.test_y, self.num_classes)
        self._resized[size] = out
        return out

    def require_memory_for(self, size: int) -> None:
        """Refuse (:class:`~evaluators.memory.NotEnoughMemory`) a resize to ``size`` that cannot fit."""
        if size == self.input_size:
            return
        n = len(self.train_y) + len(self.val_y) + len(self.test_y)
        require(images_bytes(n, self.channels, size),
                f"resizing {self.name} to {size}x{size} ({n:,} images)", "lower budget.resolution")

    def describe(self) -> str:
        return (f"{self.name}: train {len(self.train_y)}, val {len(self.val_y)}, test {len(self.test_y)}, "
                f"{self.channels}x{self.input_size}x{self.input_size}, {self.num_classes} classes")


def normalize_images(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(pixel / 255 - mean) / std as float32, in two passes over the data (convert, then one
    fused multiply-add): loading runs at every start of boolnas-train."""
    x = torch.from_numpy(np.array(images, dtype=np.float32))
    s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    scale = (1.0 / (255.0 * s)).float()
    shift = (-torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1) / s).float()
    return torch.addcmul(shift, x, scale)


def validation_order(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) indices of a training set of ``n`` images: a seeded permutation,
    the same for the in-memory and the streamed data."""
    if val_size >= n:
        raise DatasetError(f"data.val_size={val_size} leaves no training images (the set has {n})")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:val_size], order[val_size:]


def split(name: str, train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, test_y: np.ndarray,
          classes: int, val_size: int, seed: int) -> Dataset:
    """The in-memory data set with its validation split carved from the training images."""
    val_idx, train_idx = validation_order(len(train_y), val_size, seed)
    ty = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    dataset = Dataset(name, train_x[train_idx], ty[train_idx], train_x[val_idx], ty[val_idx], test_x,
                      torch.from_numpy(np.asarray(test_y, dtype=np.int64)), classes)
    log.info("loaded %s", dataset.describe())
    return dataset
