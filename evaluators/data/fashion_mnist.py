"""Fashion-MNIST from its four IDX files (raw or gzip), read as uint8 arrays with checked headers."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from boolnas.evaluators.data.config import DatasetError, check_dir

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def fashion_hint(root: Path) -> str:
    return (f"expected the four Fashion-MNIST IDX files ({', '.join(FASHION_MNIST_FILES.values())}, "
            f"optionally .gz) in {root}; install them with `apt-get install dataset-fashion-mnist` "
            f"(they go to {FASHION_MNIST_ROOT}) or point data.root=<dir> at a copy")


def check_fashion_mnist(root: Path) -> None:
    """The four files are there (a few ``stat`` calls; their contents are checked when read)."""
    check_dir(root, fashion_hint(root))
    for stem in FASHION_MNIST_FILES.values():
        if not any(p.is_file() for p in (root / stem, root / f"{stem}.gz")):
            raise DatasetError(f"missing file {stem}[.gz] in {root}: {fashion_hint(root)}")


def load_fashion_mnist(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training images (N, 1, 28, 28) uint8 and labels, then the same for the test split."""
    check_dir(root, fashion_hint(root))
    arrays = {}
    for key, stem in FASHION_MNIST_FILES.items():
        path = next((p for p in (root / stem, root / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            raise DatasetError(f"missing file {stem}[.gz] in {root}: {fashion_hint(root)}")
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
