"""Data sets: Fashion-MNIST (IDX), CIFAR-10 (python batches), image folders (PNG / JPEG, one
sub-folder per class) and synthetic, held in memory as tensors (:func:`load_dataset`, the search's
proxies) or streamed from their files through ``torch.utils.data`` (:func:`open_streams`, full
training with DataLoader workers).

A validation split is carved from the training set with a seeded permutation (the same one in
memory and streamed); the official test split is kept apart for final reports. A missing or
corrupt dataset raises :class:`DatasetError` saying which file or folder, what was expected and
how to fix it.
"""

from __future__ import annotations

from boolnas.evaluators.data.cifar10 import CIFAR10_TEST, CIFAR10_TRAIN
from boolnas.evaluators.data.config import DATASETS, DataConfig, DatasetError
from boolnas.evaluators.data.fashion_mnist import FASHION_MNIST_FILES, FASHION_MNIST_ROOT, read_idx
from boolnas.evaluators.data.imagefolder import IMAGE_SUFFIXES, ImageFolder, scan_image_folder
from boolnas.evaluators.data.loading import NORMALIZATION, check_dataset, load_dataset, open_streams
from boolnas.evaluators.data.streams import Streams
from boolnas.evaluators.data.tensors import Dataset

__all__ = [
    "CIFAR10_TEST", "CIFAR10_TRAIN", "DATASETS", "FASHION_MNIST_FILES", "FASHION_MNIST_ROOT", "IMAGE_SUFFIXES",
    "NORMALIZATION", "DataConfig", "Dataset", "DatasetError", "ImageFolder", "Streams", "check_dataset",
    "load_dataset", "open_streams", "read_idx", "scan_image_folder",
]
