"""Data read on demand through ``torch.utils.data``: what streamed training (``budget.stream``)
iterates with DataLoader worker processes, so the trainer's memory does not grow with the data set.

Each split is a map-style dataset whose items are ``(index, seed)`` pairs (see
evaluators/batches.py): the seed drives that image's augmentation, so a crop does not depend on
which worker or which training process decodes the image. Fashion-MNIST and CIFAR-10 keep
their uint8 arrays (a quarter of the normalized floats; forked workers share them), image
folders keep only their file list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from boolnas.evaluators.data.config import DatasetError
from boolnas.evaluators.data.imagefolder import FileList, open_image
from boolnas.evaluators.data.transforms import ArrayTransform, ImageTransform

Item = tuple[int, int | None]


def _item(item: int | Item) -> tuple[int, random.Random | None]:
    if isinstance(item, tuple):
        i, seed = item
        return int(i), (random.Random(seed) if seed is not None else None)
    return int(item), None


class ArrayImages(TorchDataset):
    """Images of one split held as an array (N, C, H, W) and labels; ``indices`` picks the split's rows."""

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                 indices: np.ndarray | None, transform: ArrayTransform) -> None:
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels) if self.indices is None else len(self.indices)

    def __getitem__(self, item: int | Item) -> tuple[torch.Tensor, int]:
        i, rng = _item(item)
        j = i if self.indices is None else int(self.indices[i])
        return self.transform(self.images[j], rng), int(self.labels[j])


class FolderImages(TorchDataset):
    """Image files of one split, decoded (Pillow) and transformed when an item is read."""

    def __init__(self, files: FileList, channels: int, transform: ImageTransform) -> None:
        self.files, self.channels, self.transform = files, channels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int | Item) -> tuple[torch.Tensor, int]:
        i, rng = _item(item)
        image = open_image(self.files.path(i), self.channels, draft=self.transform.size)
        return self.transform(image, rng), int(self.files.labels[i])


@dataclass
class Streams:
    """The three splits as map-style datasets, plus ``train_plain``: the training images with the
    evaluation transform (BatchNorm re-estimation). ``input_size`` is the size batches have."""

    name: str
    train: TorchDataset
    train_plain: TorchDataset
    val: TorchDataset
    test: TorchDataset
    num_classes: int
    channels: int
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_train(self) -> int:
        return len(self.train)  # type: ignore[arg-type]

    def require_memory_for(self, size: int) -> None:
        """Nothing to check: streamed images are resized one batch at a time."""

    def describe(self) -> str:
        return (f"{self.name} (streamed): train {len(self.train)}, val {len(self.val)}, "  # type: ignore[arg-type]
                f"test {len(self.test)}, {self.channels}x{self.input_size}x{self.input_size}, "  # type: ignore[arg-type]
                f"{self.num_classes} classes")


def worker_message(exc: BaseException) -> str:
    """The message a :class:`DatasetError` raised in a DataLoader worker had: torch re-raises it
    in the trainer wrapped in the worker's whole traceback."""
    text = str(exc)
    marker = f"{DatasetError.__name__}: "
    k = text.rfind(marker)
    if "DataLoader worker" in text and k >= 0:
        return text[k + len(marker):].strip()
    return text

