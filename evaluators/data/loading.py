"""Open a data set by its :class:`DataConfig`: in memory (:func:`load_dataset`, the search's proxies)
or streamed from its files (:func:`open_streams`, full training), with the same splits either way."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from boolnas.evaluators.data.cifar10 import CIFAR_ROOT_HINT, check_cifar10, load_cifar10
from boolnas.evaluators.data.config import DataConfig, DatasetError, per_channel
from boolnas.evaluators.data.fashion_mnist import FASHION_MNIST_ROOT, check_fashion_mnist, load_fashion_mnist
from boolnas.evaluators.data.imagefolder import (
    STATS_IMAGES,
    FileList,
    ImageFolder,
    check_image_folder,
    estimate_statistics,
    image_geometry,
    open_image,
    scan_image_folder,
)
from boolnas.evaluators.data.streams import ArrayImages, FolderImages, Streams
from boolnas.evaluators.data.synthetic import synthetic
from boolnas.evaluators.data.tensors import Dataset, normalize_images, split, validation_order
from boolnas.evaluators.data.transforms import ArrayTransform, ImageTransform
from boolnas.evaluators.memory import images_bytes, require

log = logging.getLogger(__name__)

# Per-dataset normalization (mean, std) of pixel values in [0, 1].
NORMALIZATION = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
PADDING = {"fashion_mnist": 2, "cifar10": 4, "synthetic": 2}  # random-crop padding of the array data sets


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load ``cfg.name`` into memory as normalized tensors and carve the validation split."""
    if cfg.name == "synthetic":
        return synthetic(cfg)
    if cfg.name == "imagefolder":
        return _folder_in_memory(cfg)
    train_x, train_y, test_x, test_y = _arrays(cfg)
    mean, std = _published_statistics(cfg, train_x.shape[1])
    train_x, test_x = normalize_images(train_x, mean, std), normalize_images(test_x, mean, std)
    return split(cfg.name, train_x, train_y, test_x, test_y, 10, cfg.val_size, cfg.seed)


def check_dataset(cfg: DataConfig) -> None:
    """Check, without reading them, that the files of ``cfg`` are where they are expected.

    Cheap (a few ``stat`` calls and directory listings), so a search can refuse a wrong
    ``data.root`` before it creates its study; loading still checks the contents.
    """
    if cfg.name == "fashion_mnist":
        check_fashion_mnist(Path(cfg.root or FASHION_MNIST_ROOT))
    elif cfg.name == "cifar10":
        if not cfg.root:
            raise DatasetError(CIFAR_ROOT_HINT)
        check_cifar10(Path(cfg.root))
    elif cfg.name == "imagefolder":
        check_image_folder(cfg)


def open_streams(cfg: DataConfig, *, resolution: int | None = None, augment: bool = True) -> Streams:
    """The splits of ``cfg`` as datasets read and transformed item by item (DataLoader workers).

    ``resolution``: the size batches have (None: the data's own); ``augment``: the data set's
    training augmentation (random crop and flip) on the training split.
    """
    if cfg.name == "imagefolder":
        return _folder_streams(cfg, resolution, augment)
    if cfg.name == "synthetic":
        data = synthetic(cfg)
        size = resolution or data.input_size
        ones = (0.0,) * data.channels, (1.0,) * data.channels  # already normalized
        train_tf = ArrayTransform(size, *ones, augment=augment, pad=PADDING["synthetic"])
        plain_tf = ArrayTransform(size, *ones)
        streams = Streams("synthetic", ArrayImages(data.train_x, data.train_y, None, train_tf),
                          ArrayImages(data.train_x, data.train_y, None, plain_tf),
                          ArrayImages(data.val_x, data.val_y, None, plain_tf),
                          ArrayImages(data.test_x, data.test_y, None, plain_tf),
                          data.num_classes, data.channels, size, *ones)
    else:
        train_x, train_y, test_x, test_y = _arrays(cfg)
        channels, size = int(train_x.shape[1]), resolution or int(train_x.shape[-1])
        mean, std = _published_statistics(cfg, channels)
        val_idx, train_idx = (t.numpy() for t in validation_order(len(train_y), cfg.val_size, cfg.seed))
        train_tf = ArrayTransform(size, mean, std, augment=augment, pad=PADDING[cfg.name])
        plain_tf = ArrayTransform(size, mean, std)
        streams = Streams(cfg.name, ArrayImages(train_x, train_y, train_idx, train_tf),
                          ArrayImages(train_x, train_y, train_idx, plain_tf),
                          ArrayImages(train_x, train_y, val_idx, plain_tf),
                          ArrayImages(test_x, test_y, None, plain_tf), 10, channels, size, mean, std)
    log.info("streaming %s", streams.describe())
    return streams


# ------------------------------------------------------------------------------------ helpers
def _arrays(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if cfg.name == "fashion_mnist":
        return load_fashion_mnist(Path(cfg.root or FASHION_MNIST_ROOT))
    if not cfg.root:
        raise DatasetError(CIFAR_ROOT_HINT)
    return load_cifar10(Path(cfg.root))


def _published_statistics(cfg: DataConfig, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = NORMALIZATION[cfg.name]
    return (per_channel(cfg.mean, channels, "mean") if cfg.mean else mean,
            per_channel(cfg.std, channels, "std") if cfg.std else std)


def _folder_geometry(cfg: DataConfig, folder: ImageFolder) -> tuple[int, int]:
    """(input size, channels) of an image folder: the config's, else the first training image's."""
    size, channels = cfg.input_size, cfg.channels
    if size is None or channels is None:
        first_size, first_channels = image_geometry(folder.train.path(0))
        size, channels = size or first_size, channels or first_channels
        log.info("image folder: %dx%d, %d channel(s), as its first image %s (set data.input_size / data.channels "
                 "to choose)", size, size, channels, folder.train.path(0))
    return size, channels


def _folder_statistics(cfg: DataConfig, folder: ImageFolder, channels: int,
                       size: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The configured normalization, else (for what is unset) the one estimated from training images."""
    if cfg.mean and cfg.std:
        return per_channel(cfg.mean, channels, "mean"), per_channel(cfg.std, channels, "std")
    mean, std = estimate_statistics(folder.train, channels, size, cfg.seed)
    log.info("normalization estimated from %d training images: mean %s, std %s (set data.mean and data.std "
             "to fix them)", min(len(folder.train), STATS_IMAGES), list(mean), list(std))
    return (per_channel(cfg.mean, channels, "mean") if cfg.mean else mean,
            per_channel(cfg.std, channels, "std") if cfg.std else std)


def _folder_streams(cfg: DataConfig, resolution: int | None, augment: bool) -> Streams:
    folder = scan_image_folder(cfg)
    native, channels = _folder_geometry(cfg, folder)
    size = resolution or native
    mean, std = _folder_statistics(cfg, folder, channels, size)
    train_tf = ImageTransform(size, mean, std, augment=augment)
    plain_tf = ImageTransform(size, mean, std)
    streams = Streams("imagefolder", FolderImages(folder.train, channels, train_tf),
                      FolderImages(folder.train, channels, plain_tf), FolderImages(folder.val, channels, plain_tf),
                      FolderImages(folder.test, channels, plain_tf), len(folder.classes), channels, size, mean, std)
    log.info("streaming %s", streams.describe())
    return streams


def _folder_in_memory(cfg: DataConfig) -> Dataset:
    """Every image of the folder decoded at the data's input size (small folders: search proxies)."""
    folder = scan_image_folder(cfg)
    size, channels = _folder_geometry(cfg, folder)
    n = len(folder.train) + len(folder.val) + len(folder.test)
    require(images_bytes(n, channels, size) * 5 // 4, f"holding the {n:,} images of {folder.root} in memory at "
            f"{channels}x{size}x{size}", "stream them instead (budget.stream=true) or lower data.input_size")
    mean, std = _folder_statistics(cfg, folder, channels, size)
    geometry = ImageTransform(size, mean, std)

    def decode(files: FileList) -> np.ndarray:
        out = np.empty((len(files), channels, size, size), dtype=np.uint8)
        for i in range(len(files)):
            image = np.asarray(geometry.geometry(open_image(files.path(i), channels, draft=size), None))
            out[i] = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        return out

    def tensors(files: FileList) -> tuple[torch.Tensor, torch.Tensor]:
        return normalize_images(decode(files), mean, std), torch.from_numpy(files.labels.copy())

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (tensors(f) for f in (folder.train, folder.val,
                                                                                   folder.test))
    data = Dataset("imagefolder", train_x, train_y, val_x, val_y, test_x, test_y, len(folder.classes))
    log.info("loaded %s", data.describe())
    return data

