"""``data=imagefolder``: a user's images on disk, one sub-folder per class.

Layouts of ``data.root``:

- ``train/<class>/*.png|jpg|jpeg`` plus optional ``val/<class>/...`` and ``test/<class>/...``;
  a missing val/ is carved from train/ (``data.val_size`` images, seeded), a missing test/ too
  when ``data.num_test`` > 0;
- ``<class>/*.png|jpg|jpeg``: one pool, split by a seeded permutation into validation
  (``data.val_size``), test (``data.num_test``) and training images.

Classes are the sorted folder names of train/ (or of the root); images may sit in nested
folders below a class folder. Hidden files and files of other types are skipped. An empty class,
an unreadable folder, a class in val/ or test/ that train/ lacks, and a corrupt image (when it is
decoded) stop with a message naming the folder or file.

Memory: a split is two numpy arrays (all relative paths in one byte buffer, plus offsets and
labels), a few dozen bytes per image and no Python object per file, so DataLoader workers
forked from the trainer share it instead of copying it page by page.
"""

from __future__ import annotations

import logging
import os
import random
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from boolnas.evaluators.data.config import DataConfig, DatasetError, check_dir
from boolnas.evaluators.data.transforms import ImageTransform, to_float

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")
STATS_IMAGES = 512  # training images that estimate the normalization (data.mean / data.std unset)
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def layout_hint(root: Path | str) -> str:
    return (f"expected one sub-folder per class in {root} ({root}/<class>/*.png|jpg|jpeg), or train/ "
            "(and optionally val/, test/) folders that hold the class folders")


@dataclass(frozen=True, eq=False)
class FileList:
    """Image files of one split and their labels. Paths relative to ``root`` are stored in one
    byte buffer ``blob`` with ``offsets`` (n + 1), so the list holds no Python object per file."""

    root: str
    blob: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> str:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return os.path.join(self.root, os.fsdecode(self.blob[lo:hi].tobytes()))

    def take(self, indices: np.ndarray) -> FileList:
        """The files at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        lo, hi = self.offsets[indices], self.offsets[indices + 1]
        lengths = hi - lo
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        blob = np.empty(int(offsets[-1]), dtype=np.uint8)
        for k, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
            blob[offsets[k]:offsets[k + 1]] = self.blob[a:b]
        return FileList(self.root, blob, offsets, self.labels[indices].copy())

    @classmethod
    def empty(cls, root: str) -> FileList:
        return cls(root, np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64))


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """The scanned tree: class names and the three splits."""

    root: str
    classes: tuple[str, ...]
    train: FileList
    val: FileList
    test: FileList
    layout: str  # "splits" (train/ val/ test/ folders) or "pool" (class folders in the root)

    def describe(self) -> str:
        return (f"imagefolder {self.root} ({self.layout}): {len(self.classes)} classes, train {len(self.train)}, "
                f"val {len(self.val)}, test {len(self.test)}")


# ------------------------------------------------------------------------------------ scanning
def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The visible entries of ``folder``, sorted by name; an unreadable folder is a DatasetError."""
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except PermissionError as exc:
        raise DatasetError(f"cannot read folder {folder}: {exc.strerror}; check its permissions "
                           "(the user running boolnas needs read and execute rights)") from None
    except OSError as exc:
        raise DatasetError(f"cannot read folder {folder}: {exc.strerror or exc}") from None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def class_folders(folder: Path) -> list[str]:
    """Names of the sub-folders of ``folder`` (sorted, hidden ones skipped)."""
    return [e.name for e in _entries(folder) if _is_dir(e)]


def _images_below(folder: Path, blob: bytearray, offsets: array, prefix: bytes) -> int:
    """Append the relative paths of the images below ``folder`` (recursively, sorted) to ``blob``."""
    count = 0
    for e in _entries(folder):
        if _is_dir(e):
            count += _images_below(Path(e.path), blob, offsets, prefix + os.fsencode(e.name) + b"/")
        elif e.name.lower().endswith(IMAGE_SUFFIXES):
            blob += prefix + os.fsencode(e.name)
            offsets.append(len(blob))
            count += 1
    return count


def scan_split(root: Path, folder: Path, classes: tuple[str, ...]) -> FileList:
    """The images of the class folders in ``folder`` (each must be one of ``classes`` and hold images)."""
    blob, offsets, labels = bytearray(), array("q", [0]), array("q")
    index = {c: i for i, c in enumerate(classes)}
    prefix = os.fsencode(os.path.relpath(folder, root)) + b"/" if folder != root else b""
    for name in class_folders(folder):
        if name not in index:
            raise DatasetError(f"class folder {folder / name} has no counterpart in {root / 'train'}: every class of "
                               "val/ and test/ must have training images; rename it or add it to train/")
        n = _images_below(folder / name, blob, offsets, prefix + os.fsencode(name) + b"/")
        if n == 0:
            raise DatasetError(f"class folder {folder / name} holds no images ({'/'.join(IMAGE_SUFFIXES)}); "
                               "add images or remove the folder")
        labels.extend([index[name]] * n)
    return FileList(str(root), np.frombuffer(bytes(blob), dtype=np.uint8).copy(),
                    np.asarray(offsets, dtype=np.int64), np.asarray(labels, dtype=np.int64))


def scan_image_folder(cfg: DataConfig) -> ImageFolder:
    """Find the classes and images of ``cfg.root`` and carve the splits it lacks (seeded)."""
    root = _root(cfg)
    check_dir(root, layout_hint(root))
    top = class_folders(root)
    gen = torch.Generator().manual_seed(cfg.seed)
    if "train" in top:
        others = [n for n in top if n not in SPLITS]
        if others:
            raise DatasetError(f"{root} holds train/ and also {others}: either one sub-folder per class, or the "
                               "split folders train/ (val/, test/) only; move the other folders")
        classes = _classes(root / "train")
        train = scan_split(root, root / "train", classes)
        val = scan_split(root, root / "val", classes) if "val" in top else None
        test = scan_split(root, root / "test", classes) if "test" in top else None
        if val is None:
            train, val = _carve(train, cfg.val_size, gen, "data.val_size", root / "train")
        elif cfg.val_size:
            log.info("%s has a val/ folder: data.val_size is not used", root)
        if test is None:
            if cfg.num_test:
                train, test = _carve(train, cfg.num_test, gen, "data.num_test", root / "train")
            else:
                test = FileList.empty(str(root))
        folder = ImageFolder(str(root), classes, train, val, test, "splits")
    else:
        classes = _classes(root)
        pool = scan_split(root, root, classes)
        train, val = _carve(pool, cfg.val_size, gen, "data.val_size", root)
        train, test = _carve(train, cfg.num_test, gen, "data.num_test", root)
        folder = ImageFolder(str(root), classes, train, val, test, "pool")
    log.info("found %s", folder.describe())
    return folder


def check_image_folder(cfg: DataConfig) -> None:
    """Cheap checks (a few directory listings): the root exists and holds class or split folders."""
    root = _root(cfg)
    check_dir(root, layout_hint(root))
    top = class_folders(root)
    _classes(root / "train" if "train" in top else root)


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise DatasetError(f"data=imagefolder needs data.root=<dir>: {layout_hint('<dir>')}")
    return Path(cfg.root)


def _classes(folder: Path) -> tuple[str, ...]:
    classes = tuple(class_folders(folder))
    if len(classes) < 2:
        found = f"only the folder {classes[0]!r}" if classes else "no sub-folders"
        raise DatasetError(f"{folder} holds {found}: a classification data set needs at least two class "
                           f"folders; {layout_hint(folder.parent if folder.name == 'train' else folder)}")
    return classes


def _carve(files: FileList, n: int, gen: torch.Generator, key: str, where: Path) -> tuple[FileList, FileList]:
    """(rest, carved): ``n`` files drawn by a seeded permutation."""
    if n == 0:
        return files, FileList.empty(files.root)
    if n >= len(files):
        raise DatasetError(f"{key}={n} leaves no training images ({where} has {len(files)}); lower {key}")
    order = torch.randperm(len(files), generator=gen).numpy()
    return files.take(np.sort(order[n:])), files.take(np.sort(order[:n]))


# ------------------------------------------------------------------------------------ decoding
def open_image(path: str, channels: int, draft: int | None = None) -> Image.Image:
    """Decode ``path`` as a grey (1) or RGB (3) Pillow image; any failure names the file.

    ``draft``: let a JPEG decode at a reduced scale no smaller than this (much faster for large
    photos that are resized anyway).
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            if draft is not None and image.format == "JPEG":
                image.draft("L" if channels == 1 else "RGB", (draft, draft))
            image.load()
            return image.convert("L" if channels == 1 else "RGB")
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        raise DatasetError(f"cannot read image {path}: {_reason(exc, path)}; the file is corrupt or not a PNG/JPEG "
                           "image: replace or delete it") from None


def _reason(exc: BaseException, path: str) -> str:
    """Pillow's one-line reason, without the path it repeats."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.replace(f" {path!r}", "").replace(f" '{path}'", "").replace(path, "the file")


def image_geometry(path: str) -> tuple[int, int]:
    """(shorter side, channels) of the image at ``path``, read from its header."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            w, h = image.size
            return min(w, h), 1 if image.mode in GREY_MODES else 3
    except Exception as exc:
        raise DatasetError(f"cannot read image {path}: {_reason(exc, path)}; the file is corrupt or not a PNG/JPEG "
                           "image: replace or delete it") from None


def estimate_statistics(files: FileList, channels: int, size: int, seed: int,
                        n: int = STATS_IMAGES) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of pixels in [0, 1] over ``n`` seeded training
    images, as the evaluation transform shows them."""
    rng = random.Random(seed)
    picks = sorted(rng.sample(range(len(files)), min(n, len(files))))
    geometry = ImageTransform(size, (0.0,) * channels, (1.0,) * channels)
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    pixels = 0
    for i in picks:
        x = to_float(geometry.geometry(open_image(files.path(i), channels, draft=size), None)).double()
        total += x.sum((1, 2))
        squares += (x * x).sum((1, 2))
        pixels += x.shape[1] * x.shape[2]
    mean = total / pixels
    std = (squares / pixels - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)
