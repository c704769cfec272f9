"""Datasets held in memory as tensors: Fashion-MNIST (IDX), CIFAR-10 (python batches), synthetic.

A validation split is carved from the training set with a seeded permutation; the official test
split is kept apart for final reports. A missing or corrupt dataset raises :class:`DatasetError`
saying which files were expected where and how to get them.
"""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluators.memory import images_bytes, require
from space.records import record_from_mapping

log = logging.getLogger(__name__)

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = "test_batch"
DATASETS = ("fashion_mnist", "cifar10", "synthetic")
# Per-dataset normalization (mean, std) of pixel values in [0, 1].
NORMALIZATION = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


_CIFAR_ROOT_HINT = ("data=cifar10 needs data.root=<dir> holding the CIFAR-10 python batches "
                    f"({', '.join(CIFAR10_TRAIN)}, {CIFAR10_TEST}), e.g. the extracted cifar-10-batches-py/")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message says what was expected and how to get it."""


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, where, and how the validation split is carved."""

    name: str = "fashion_mnist"
    root: str | None = None  # None: the dataset's default location
    val_size: int = 5000
    seed: int = 0
    # synthetic only
    num_train: int = 2048
    num_test: int = 512
    input_size: int = 28
    channels: int = 1
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise DatasetError(f"data.name={self.name!r} is unknown; use one of {list(DATASETS)}")
        for field_name in ("val_size", "num_test", "seed"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DatasetError(f"data.{field_name} must be a non-negative integer, got {value!r}")
        for field_name in ("num_train", "input_size", "channels", "num_classes"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DatasetError(f"data.{field_name} must be a positive integer, got {value!r}")
        if self.root == "???":  # OmegaConf's marker of a required value left unset (conf/data/cifar10.yaml)
            object.__setattr__(self, "root", None)
        if self.root is not None and (not isinstance(self.root, str) or not self.root):
            raise DatasetError(f"data.root must be the path of a directory (or null), got {self.root!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        return record_from_mapping(cls, data, "data", DatasetError)


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


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load ``cfg.name`` into memory and carve the validation split."""
    if cfg.name == "fashion_mnist":
        train_x, train_y, test_x, test_y = _load_fashion_mnist(Path(cfg.root or FASHION_MNIST_ROOT))
        classes = 10
    elif cfg.name == "cifar10":
        if not cfg.root:
            raise DatasetError(_CIFAR_ROOT_HINT)
        train_x, train_y, test_x, test_y = _load_cifar10(Path(cfg.root))
        classes = 10
    else:
        return _synthetic(cfg)
    mean, std = NORMALIZATION[cfg.name]
    train_x, test_x = _normalize(train_x, mean, std), _normalize(test_x, mean, std)
    return _split(cfg.name, train_x, train_y, test_x, test_y, classes, cfg.val_size, cfg.seed)


def check_dataset(cfg: DataConfig) -> None:
    """Check, without reading them, that the files of ``cfg`` are where they are expected.

    Cheap (a few ``stat`` calls), so a search can refuse a wrong ``data.root`` before it creates
    its study; :func:`load_dataset` still checks the contents.
    """
    if cfg.name == "fashion_mnist":
        root = Path(cfg.root or FASHION_MNIST_ROOT)
        _check_dir(root, _fashion_hint(root))
        for stem in FASHION_MNIST_FILES.values():
            if not any(p.is_file() for p in (root / stem, root / f"{stem}.gz")):
                raise DatasetError(f"missing file {stem}[.gz] in {root}: {_fashion_hint(root)}")
    elif cfg.name == "cifar10":
        if not cfg.root:
            raise DatasetError(_CIFAR_ROOT_HINT)
        _check_cifar_files(Path(cfg.root))


def _check_dir(root: Path, hint: str) -> None:
    if root.exists() and not root.is_dir():
        raise DatasetError(f"dataset directory {root} is a file, not a directory: {hint}")
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist: {hint}")


# --------------------------------------------------------------------------- Fashion-MNIST
def _fashion_hint(root: Path) -> str:
    return (f"expected the four Fashion-MNIST IDX files ({', '.join(FASHION_MNIST_FILES.values())}, "
            f"optionally .gz) in {root}; install them with `apt-get install dataset-fashion-mnist` "
            f"(they go to {FASHION_MNIST_ROOT}) or point data.root=<dir> at a copy")


def _load_fashion_mnist(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    _check_dir(root, _fashion_hint(root))
    arrays = {}
    for key, stem in FASHION_MNIST_FILES.items():
        path = next((p for p in (root / stem, root / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            raise DatasetError(f"missing file {stem}[.gz] in {root}: {_fashion_hint(root)}")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"Fashion-MNIST {split} files in {root} disagree: images {images.shape}, labels {labels.shape}"
            )
        if labels.size and labels.max() >= 10:
            raise DatasetError(f"Fashion-MNIST {split} labels in {root} hold a class >= 10: the file is corrupt")
    return (arrays["train_images"][:, None], arrays["train_labels"],
            arrays["test_images"][:, None], arrays["test_labels"])


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzip), checking its header against its size."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"cannot read {path}: {exc}; the file is truncated or corrupt, reinstall it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: IDX header is truncated")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: its header promises {expected} bytes of data "
            f"{tuple(dims)}, the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


# --------------------------------------------------------------------------- CIFAR-10
class _Refused(pickle.UnpicklingError):
    """A dataset pickle names a Python object other than arrays (it could run code)."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtins only: a CIFAR batch must not run arbitrary code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("builtins", "bytes"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"refusing to load {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except _Refused as exc:
        raise DatasetError(f"CIFAR-10 batch {path} is not a dataset file: {exc} (a batch holds arrays only); "
                           "get the batches from the official cifar-10-python.tar.gz") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read CIFAR-10 batch {path}: {exc}; the file is truncated or corrupt") from None
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"CIFAR-10 batch {path} lacks data/labels of the expected shape: {exc}") from None
    if len(data) != len(labels):
        raise DatasetError(f"CIFAR-10 batch {path}: {len(data)} images but {len(labels)} labels")
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= 10)):
        raise DatasetError(f"CIFAR-10 batch {path} holds labels outside 0..9: the file is corrupt")
    return data, labels


def _check_cifar_files(root: Path) -> None:
    names = [*CIFAR10_TRAIN, CIFAR10_TEST]
    hint = f"expected the python batches ({', '.join(names)}), i.e. the extracted cifar-10-batches-py/ directory"
    _check_dir(root, hint)
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetError(f"missing CIFAR-10 file(s) {missing} in {root}: {hint}")


def _load_cifar10(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    _check_cifar_files(root)
    parts = [_read_cifar_batch(root / n) for n in CIFAR10_TRAIN]
    test_x, test_y = _read_cifar_batch(root / CIFAR10_TEST)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), test_x, test_y)


# --------------------------------------------------------------------------- synthetic
def _synthetic(cfg: DataConfig) -> Dataset:
    """Class templates plus noise: learnable in a few steps, for tests and smoke runs."""
    n = cfg.num_train + cfg.val_size + cfg.num_test
    require(images_bytes(n, cfg.channels, cfg.input_size),
            f"data=synthetic at {cfg.channels}x{cfg.input_size}x{cfg.input_size} ({n:,} images)",
            "lower data.input_size or data.num_train / data.num_test / data.val_size")
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.channels, cfg.input_size, cfg.input_size)
    templates = torch.randn(cfg.num_classes, *shape, generator=gen)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, cfg.num_classes, (n,), generator=gen)
        return templates[y] + 0.8 * torch.randn(n, *shape, generator=gen), y

    train_x, train_y = draw(cfg.num_train + cfg.val_size)
    test_x, test_y = draw(cfg.num_test)
    n_val = cfg.val_size
    return Dataset("synthetic", train_x[n_val:], train_y[n_val:], train_x[:n_val], train_y[:n_val],
                   test_x, test_y, cfg.num_classes)


# --------------------------------------------------------------------------- helpers
def _normalize(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(pixel / 255 - mean) / std as float32, in two passes over the data (convert, then one
    fused multiply-add): loading runs at every start of boolnas-train."""
    x = torch.from_numpy(np.array(images, dtype=np.float32))
    s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    scale = (1.0 / (255.0 * s)).float()
    shift = (-torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1) / s).float()
    return torch.addcmul(shift, x, scale)


def _split(name: str, train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, test_y: np.ndarray,
           classes: int, val_size: int, seed: int) -> Dataset:
    if val_size >= len(train_y):
        raise DatasetError(f"data.val_size={val_size} leaves no training images (the set has {len(train_y)})")
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(seed))
    ty = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    val_idx, train_idx = order[:val_size], order[val_size:]
    dataset = Dataset(name, train_x[train_idx], ty[train_idx], train_x[val_idx], ty[val_idx], test_x,
                      torch.from_numpy(np.asarray(test_y, dtype=np.int64)), classes)
    log.info("loaded %s", dataset.describe())
    return dataset
