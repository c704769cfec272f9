"""data=imagefolder: PNG / JPEG trees on disk, in memory and streamed, trained with the tiny and
full budgets; clear errors for corrupt images, empty classes and unreadable folders."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from boolnas.evaluators.accuracy import load_model, train_genotype
from boolnas.evaluators.data import DataConfig, DatasetError, load_dataset, open_streams, scan_image_folder
from boolnas.evaluators.data.transforms import ImageTransform, pad_random_crop, random_resized_crop
from boolnas.evaluators.training import Budget
from boolnas.space import get_preset

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("ankle", "bag", "coat", "dress")


def pattern(label: int, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """A grey image whose bright quadrant tells its class, plus noise: learnable in a few steps."""
    image = rng.integers(0, 60, (size, size)).astype(np.uint8)
    h = size // 2
    y, x = divmod(label, 2)
    image[y * h:(y + 1) * h, x * h:(x + 1) * h] += 180
    return image


def make_tree(root: Path, per_class: dict[str, int], *, size: int = 16, suffix: str = ".png",
              mode: str = "L", seed: int = 0) -> Path:
    """``root/<split>/<class>/<i>.png`` for each ``split -> count`` (or ``root/<class>/`` for split '')."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for label, name in enumerate(CLASSES):
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                image = Image.fromarray(pattern(label, rng, size))
                image.convert(mode).save(folder / f"{i:04d}{suffix}")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("images"), {"train": 48, "val": 8, "test": 8})


def folder_cfg(where: Path, **kw: object) -> DataConfig:
    return DataConfig.from_conf("imagefolder", **{"root": str(where), "val_size": 0, **kw})


# ------------------------------------------------------------------------------------ scanning
def test_split_folders_give_classes_labels_and_sizes(tree: Path) -> None:
    folder = scan_image_folder(folder_cfg(tree))
    assert folder.classes == CLASSES and folder.layout == "splits"
    assert (len(folder.train), len(folder.val), len(folder.test)) == (4 * 48, 4 * 8, 4 * 8)
    assert np.bincount(folder.train.labels).tolist() == [48] * 4
    i = int(np.flatnonzero(folder.train.labels == 2)[5])
    assert Path(folder.train.path(i)).parent.name == "coat" and Path(folder.train.path(i)).is_file()


def test_a_pool_of_class_folders_is_split_by_a_seeded_permutation(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"": 20})
    a = scan_image_folder(folder_cfg(root, val_size=10, num_test=6, seed=1))
    b = scan_image_folder(folder_cfg(root, val_size=10, num_test=6, seed=1))
    c = scan_image_folder(folder_cfg(root, val_size=10, num_test=6, seed=2))
    assert a.layout == "pool" and (len(a.train), len(a.val), len(a.test)) == (64, 10, 6)

    def paths(files) -> set[str]:
        return {files.path(i) for i in range(len(files))}

    assert paths(a.val) == paths(b.val) and paths(a.val) != paths(c.val)
    assert not (paths(a.train) & paths(a.val)) and not (paths(a.train) & paths(a.test))
    assert not (paths(a.val) & paths(a.test))
    assert len(paths(a.train) | paths(a.val) | paths(a.test)) == 80


def test_a_missing_val_folder_is_carved_from_train(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"train": 10})
    folder = scan_image_folder(folder_cfg(root, val_size=8))
    assert (len(folder.train), len(folder.val), len(folder.test)) == (32, 8, 0)
    with pytest.raises(DatasetError, match="data.val_size=40 leaves no training images"):
        scan_image_folder(folder_cfg(root, val_size=40))


def test_streamed_and_in_memory_images_are_the_same(tree: Path) -> None:
    """Both paths decode, resize and normalize alike (estimated statistics included)."""
    memory = load_dataset(folder_cfg(tree))
    streams = open_streams(folder_cfg(tree), augment=True)
    assert (streams.input_size, streams.channels, streams.num_classes) == (16, 1, 4)
    assert memory.train_x.shape == (192, 1, 16, 16) and memory.num_classes == 4
    for i in (0, 7, 31):
        x, y = streams.val[i]
        assert torch.allclose(x, memory.val_x[i], atol=1e-5) and y == int(memory.val_y[i])
    assert abs(float(memory.train_x.mean())) < 0.1 and abs(float(memory.train_x.std()) - 1) < 0.1
    a, _ = streams.train[(3, 12345)]
    b, _ = streams.train[(3, 12345)]
    assert torch.equal(a, b)  # an item's augmentation is a function of its seed


def test_rgb_jpegs_of_mixed_sizes_become_batches_of_one_size(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a", {"train": 6}, size=20, suffix=".jpg", mode="RGB")
    make_tree(tmp_path / "a", {"train": 3}, size=36, suffix=".JPEG", mode="RGB", seed=1)  # other files, larger
    cfg = folder_cfg(root, input_size=24, val_size=4)
    streams = open_streams(cfg, augment=True)
    assert streams.channels == 3 and len(streams.train) + len(streams.val) == 4 * 9
    shapes = {tuple(streams.train[(i, i)][0].shape) for i in range(len(streams.train))}
    assert shapes == {(3, 24, 24)}
    assert load_dataset(cfg).train_x.shape[1:] == (3, 24, 24)


def test_large_images_get_the_imagenet_crops() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    crop = random_resized_crop(image, 64, random.Random(1))
    assert crop.size == (64, 64)
    assert random_resized_crop(image, 64, random.Random(1)).tobytes() == crop.tobytes()
    x = ImageTransform(64, (0.5,) * 3, (0.25,) * 3, augment=False)(image, None)
    assert x.shape == (3, 64, 64)
    shifted = pad_random_crop(torch.ones(1, 8, 8), 2, random.Random(3))
    assert shifted.shape == (1, 8, 8) and float(shifted.min()) in (0.0, 1.0)


# ------------------------------------------------------------------------------------ errors
def test_a_corrupt_png_names_the_file_in_memory_and_from_a_worker(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"train": 8})
    bad = root / "train" / "bag" / "0003.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated: a valid header, no image data
    cfg = folder_cfg(root, val_size=4, mean=(0.3,), std=(0.3,))
    with pytest.raises(DatasetError, match="cannot read image .*bag/0003.png") as info:
        load_dataset(cfg)
    assert "replace or delete it" in str(info.value)
    budget = Budget.from_conf("tiny", name="full", batch_size=4, lr=0.002, train_subset=None, val_subset=None,
                              stream=True, data_workers=1,
                              bn_recalibration=1)  # 7 steps of 4: every training image is read
    with pytest.raises(DatasetError) as info:
        train_genotype(get_preset("basenet18_k1"), open_streams(cfg), budget)
    message = str(info.value)
    assert message.startswith(f"cannot read image {bad}") and "\n" not in message  # not the worker's traceback


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"train": 4})
    (root / "train" / "empty").mkdir()
    (root / "train" / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match=r"class folder .*train/empty holds no images"):
        scan_image_folder(folder_cfg(root))


def test_a_val_class_without_training_images_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "data", {"train": 4, "val": 2})
    make_tree(tmp_path / "x", {"": 1})
    (tmp_path / "x" / "coat").rename(root / "val" / "hat")
    with pytest.raises(DatasetError, match="val/hat has no counterpart"):
        scan_image_folder(folder_cfg(root))


@pytest.mark.parametrize("setup", ["missing", "one_class", "file"])
def test_a_root_that_is_not_a_class_tree_says_what_is_expected(tmp_path: Path, setup: str) -> None:
    root = tmp_path / "data"
    if setup == "one_class":
        make_tree(tmp_path / "x", {"": 2})
        root.mkdir()
        (tmp_path / "x" / "bag").rename(root / "bag")
    elif setup == "file":
        root.write_text("not a folder")
    with pytest.raises(DatasetError, match="one sub-folder per class|at least two class folders"):
        scan_image_folder(folder_cfg(root))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their permissions")
def test_an_unreadable_folder_is_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"train": 2})
    locked = root / "train" / "coat"
    locked.chmod(0)
    try:
        with pytest.raises(DatasetError, match=f"cannot read folder {locked}.*permissions"):
            scan_image_folder(folder_cfg(root))
    finally:
        locked.chmod(0o755)


# ------------------------------------------------------------------------------------ training
def conf_budget(name: str, **overrides: object) -> Budget:
    data = yaml.safe_load((REPO / "conf" / "budget" / f"{name}.yaml").read_text())
    return Budget.from_dict({**data, **overrides})


def test_the_tiny_budget_learns_an_image_folder(tree: Path) -> None:
    budget = conf_budget("tiny", epochs=4, batch_size=16, num_threads=1)
    _, result = train_genotype(get_preset("bireal18"), load_dataset(folder_cfg(tree)), budget)
    assert not result.diverged and result.steps == 4 * (192 // 16)
    assert result.val_accuracy > 0.5  # four classes: chance is 0.25


CLI = [sys.executable, "-m", "boolnas.search.cli.train", "progress=false", "format=json"]


def test_the_full_budget_streams_an_image_folder_and_writes_the_model(tree: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = subprocess.run([*CLI, "arch=bireal18", "budget=full", "budget.epochs=2", "budget.batch_size=32",
                          "budget.width_mult=0.25", "budget.data_workers=1", "data=imagefolder", f"data.root={tree}",
                          f"run_dir={run_dir}"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["epochs"] == 2 and row["test_accuracy"] is not None and 0 <= row["test_accuracy"] <= 1
    assert "streaming imagefolder" in out.stderr
    model = load_model(run_dir / "model.pt")
    assert model.plan.task.num_classes == 4 and model.plan.task.input_size == 16


def test_the_cli_refuses_a_corrupt_image_with_one_line(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "images", {"train": 6})
    (root / "train" / "dress" / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = subprocess.run([*CLI, "arch=basenet18_k1", "budget=full", "budget.epochs=1", "budget.batch_size=8",
                          "budget.width_mult=0.25", "budget.data_workers=1", "data=imagefolder", f"data.root={root}",
                          "data.val_size=4", "data.mean=[0.3]", "data.std=[0.3]", f"run_dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"error: cannot read image {root}/train/dress/0002.png" in out.stderr


def test_a_budget_and_data_mismatch_is_refused(tree: Path) -> None:
    streams = open_streams(folder_cfg(tree), resolution=12)
    with pytest.raises(ValueError, match="streamed at 12x12"):
        train_genotype(get_preset("basenet18_k1"), streams, Budget.from_conf("tiny", resolution=14, stream=True))


@pytest.mark.parametrize(("fields", "message"), [
    ({"channels": 2}, "data.channels must be 1 .*, 3 .* or null"),
    ({"mean": "dark"}, "data.mean must be a list of numbers"),
    ({"std": [0.2, 0.0, 0.3]}, "data.std must hold positive numbers"),
    ({"root": None}, "needs data.root=<dir>"),
])
def test_bad_image_folder_settings_are_refused(tree: Path, fields: dict[str, object], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        scan_image_folder(folder_cfg(tree, **fields))


def test_normalization_of_the_wrong_length_is_refused(tree: Path) -> None:
    with pytest.raises(DatasetError, match="data.mean has 3 values but the images have 1 channel"):
        open_streams(folder_cfg(tree, mean=(0.5, 0.5, 0.5), std=(0.2,)))
