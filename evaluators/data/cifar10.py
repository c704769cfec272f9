"""CIFAR-10 from its python batches, unpickled by a loader that accepts arrays only (no code)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from boolnas.evaluators.data.config import DatasetError, check_dir

CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = "test_batch"
CIFAR_ROOT_HINT = ("data=cifar10 needs data.root=<dir> holding the CIFAR-10 python batches "
                   f"({', '.join(CIFAR10_TRAIN)}, {CIFAR10_TEST}), e.g. the extracted cifar-10-batches-py/")


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


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels of one python batch."""
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


def check_cifar10(root: Path) -> None:
    """The six batches are there (``stat`` calls only)."""
    names = [*CIFAR10_TRAIN, CIFAR10_TEST]
    hint = f"expected the python batches ({', '.join(names)}), i.e. the extracted cifar-10-batches-py/ directory"
    check_dir(root, hint)
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetError(f"missing CIFAR-10 file(s) {missing} in {root}: {hint}")


def load_cifar10(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training images (N, 3, 32, 32) uint8 and labels, then the same for the test batch."""
    check_cifar10(root)
    parts = [read_cifar_batch(root / n) for n in CIFAR10_TRAIN]
    test_x, test_y = read_cifar_batch(root / CIFAR10_TEST)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), test_x, test_y)
