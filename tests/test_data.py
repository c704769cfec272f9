"""Datasets: loading, splits, and clear errors for missing or corrupt files."""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from boolnas.evaluators.data import (
    FASHION_MNIST_FILES,
    FASHION_MNIST_ROOT,
    DataConfig,
    DatasetError,
    load_dataset,
    read_idx,
)

HAVE_FASHION = Path(FASHION_MNIST_ROOT, "train-images-idx3-ubyte.gz").is_file()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_fashion_dir(root: Path, n_train: int = 120, n_test: int = 40, compress: bool = False) -> Path:
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    write_idx(root / (FASHION_MNIST_FILES["train_images"] + suffix), rng.integers(0, 256, (n_train, 28, 28)), compress)
    write_idx(root / (FASHION_MNIST_FILES["train_labels"] + suffix), rng.integers(0, 10, n_train), compress)
    write_idx(root / (FASHION_MNIST_FILES["test_images"] + suffix), rng.integers(0, 256, (n_test, 28, 28)), compress)
    write_idx(root / (FASHION_MNIST_FILES["test_labels"] + suffix), rng.integers(0, 10, n_test), compress)
    return root


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_from_a_user_directory(tmp_path: Path, compress: bool) -> None:
    root = str(make_fashion_dir(tmp_path, compress=compress))
    data = load_dataset(DataConfig.from_conf("fashion_mnist", root=root, val_size=20))
    assert data.train_x.shape == (100, 1, 28, 28) and data.val_x.shape == (20, 1, 28, 28)
    assert data.test_x.shape == (40, 1, 28, 28) and data.num_classes == 10
    assert abs(float(data.train_x.mean())) < 1.5  # normalized


def test_validation_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    root = str(make_fashion_dir(tmp_path))
    a = load_dataset(DataConfig.from_conf("fashion_mnist", root=root, val_size=30, seed=1))
    b = load_dataset(DataConfig.from_conf("fashion_mnist", root=root, val_size=30, seed=1))
    c = load_dataset(DataConfig.from_conf("fashion_mnist", root=root, val_size=30, seed=2))
    assert (a.val_x == b.val_x).all() and not (a.val_x == c.val_x).all()
    train_rows = {row.numpy().tobytes() for row in a.train_x}
    assert not any(row.numpy().tobytes() in train_rows for row in a.val_x)


@pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install dataset-fashion-mnist")
def test_installed_fashion_mnist_has_the_official_sizes() -> None:
    data = load_dataset(DataConfig.from_conf("fashion_mnist"))
    assert len(data.train_y) + len(data.val_y) == 60000 and len(data.test_y) == 10000


def test_missing_directory_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset-fashion-mnist") as info:
        load_dataset(DataConfig.from_conf("fashion_mnist", root=str(tmp_path / "nowhere")))
    assert "does not exist" in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    root = make_fashion_dir(tmp_path)
    (root / FASHION_MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte"):
        load_dataset(DataConfig.from_conf("fashion_mnist", root=str(root)))


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_idx_file_is_reported(tmp_path: Path, compress: bool) -> None:
    root = make_fashion_dir(tmp_path, compress=compress)
    path = root / (FASHION_MNIST_FILES["train_images"] + (".gz" if compress else ""))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="truncated|corrupt"):
        load_dataset(DataConfig.from_conf("fashion_mnist", root=str(root)))


def test_not_an_idx_file(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"hello world")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(path)


def test_cifar10_batches_and_code_free_unpickling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 10))}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_dataset(DataConfig.from_conf("cifar10", root=str(tmp_path), val_size=5))
    assert data.train_x.shape == (45, 3, 32, 32) and data.test_x.shape == (10, 3, 32, 32)

    class Evil:
        def __reduce__(self):  # would run a shell command if unpickled naively
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DatasetError, match="refusing"):
        load_dataset(DataConfig.from_conf("cifar10", root=str(tmp_path), val_size=5))
    assert (tmp_path / "victim").is_dir()


def test_cifar10_without_root_says_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="data.root"):
        load_dataset(DataConfig.from_conf("cifar10"))


def test_unknown_dataset_and_bad_sizes() -> None:
    with pytest.raises(DatasetError, match="unknown"):
        DataConfig.from_conf("fashion_mnist", name="mnist")
    with pytest.raises(DatasetError, match="val_size"):
        DataConfig.from_conf("fashion_mnist", val_size=-1)


def test_synthetic_is_deterministic() -> None:
    a = load_dataset(DataConfig.from_conf("synthetic", val_size=16, num_train=32, num_test=8))
    b = load_dataset(DataConfig.from_conf("synthetic", val_size=16, num_train=32, num_test=8))
    assert (a.train_x == b.train_x).all() and a.train_x.shape == (32, 1, 28, 28)


def test_resized_copies_are_made_once_per_size(tmp_path: Path) -> None:
    """A search resizes its data for every trial: the copy is kept, and it holds area-averaged pixels."""
    data = load_dataset(DataConfig.from_conf("fashion_mnist", root=str(make_fashion_dir(tmp_path)),
                                             val_size=20))
    small = data.resized(14)
    assert data.resized(14) is small and data.resized(28) is data
    assert small.train_x.shape[-2:] == (14, 14) and len(small.train_y) == len(data.train_y)
    assert np.allclose(small.train_x[0, 0, 0, 0].item(), data.train_x[0, 0, :2, :2].mean().item(), atol=1e-6)
    assert data.resized(7) is not small and data.resized(7).train_x.shape[-1] == 7
