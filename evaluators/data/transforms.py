"""The few image transforms streamed training needs, written on Pillow and torch (torchvision's
wheel does not load against the CPU torch build used here).

Every random choice draws from a ``random.Random`` passed in per image, seeded by the sampler
from (seed, epoch, position): an image gets the same crop and flip whatever the number of
DataLoader workers or training processes, and a resumed run sees the augmentations it would
have seen without the interruption.

Two pipelines: :class:`ArrayTransform` for images held as arrays (Fashion-MNIST, CIFAR-10,
synthetic) and :class:`ImageTransform` for decoded image files (``data=imagefolder``).
Augmentation per data set: a random crop of the zero-padded image (``pad`` pixels) and a
horizontal flip for small images; for images of 64 pixels or more the random-resized crop
(scale 0.08-1, aspect 3/4-4/3) and flip of ImageNet training, and resize to size/0.875 + center
crop for evaluation.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from PIL import Image

LARGE = 64  # images at least this large get the ImageNet recipe (random-resized crop, resize + center crop)
EVAL_CROP = 0.875  # eval: resize the shorter side to size / 0.875, then center-crop size
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3 / 4, 4 / 3)


def pad_for(size: int) -> int:
    """Padding of the random crop of small images: an eighth of the side (4 px at 32, 3 at 28)."""
    return max(1, size // 8)


# --------------------------------------------------------------------------------- tensors
def pad_random_crop(x: torch.Tensor, pad: int, rng: random.Random) -> torch.Tensor:
    """A random ``H x W`` window of ``x`` (C, H, W) zero-padded by ``pad`` on every side."""
    _, h, w = x.shape
    dy, dx = rng.randint(0, 2 * pad), rng.randint(0, 2 * pad)
    return F.pad(x, (pad, pad, pad, pad))[:, dy:dy + h, dx:dx + w]


def random_flip(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Mirror ``x`` (C, H, W) left-right with probability 1/2."""
    return x.flip(-1) if rng.random() < 0.5 else x


def area_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (C, H, W) area-resampled to ``size`` x ``size`` (the in-memory datasets' ``resized``)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x[None], size=(size, size), mode="area")[0]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean) / std per channel, ``x`` (C, H, W) in [0, 1]."""
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1)
    return (x - m) / s


def to_float(image: Image.Image | np.ndarray) -> torch.Tensor:
    """A Pillow image or a uint8 array (C, H, W) as a float tensor (C, H, W) in [0, 1]."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[None]
    elif not isinstance(image, np.ndarray):  # Pillow: (H, W, C)
        a = a.transpose(2, 0, 1)
    return torch.from_numpy(np.array(a, dtype=np.float32)).div_(255.0)  # one copy, writable


# --------------------------------------------------------------------------------- Pillow
def resize_shorter(image: Image.Image, size: int) -> Image.Image:
    """Scale ``image`` so that its shorter side is ``size`` (bilinear, antialiased)."""
    from PIL import Image

    w, h = image.size
    if min(w, h) == size:
        return image
    scale = size / min(w, h)
    return image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    if (w, h) == (size, size):
        return image
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def random_resized_crop(image: Image.Image, size: int, rng: random.Random) -> Image.Image:
    """A random region of 8-100 % of the area and aspect 3/4-4/3, resized to ``size`` x ``size``
    (the ImageNet training crop); falls back to the central region of clamped aspect."""
    from PIL import Image

    w, h = image.size
    area = w * h
    log_lo, log_hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    for _ in range(10):
        target = area * rng.uniform(*RRC_SCALE)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
            return image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
    ratio = w / h
    if ratio < RRC_RATIO[0]:
        cw, ch = w, round(w / RRC_RATIO[0])
    elif ratio > RRC_RATIO[1]:
        cw, ch = round(h * RRC_RATIO[1]), h
    else:
        cw, ch = w, h
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))


# --------------------------------------------------------------------------------- pipelines
@dataclass(frozen=True)
class ArrayTransform:
    """An image held as an array (C, H, W) -> a normalized float tensor (C, size, size).

    uint8 pixels are scaled to [0, 1] and normalized with ``mean`` / ``std``; float images
    (``synthetic``) are taken as already normalized. Training (``augment``): random crop of the
    zero-padded image (``pad``) and horizontal flip.
    """

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False
    pad: int = 2

    def __call__(self, image: np.ndarray | torch.Tensor, rng: random.Random | None) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            x = image.float()
            raw = False
        else:
            x, raw = to_float(image), True
        x = area_resize(x, self.size)
        if self.augment and rng is not None:
            if raw:
                x = random_flip(pad_random_crop(x, self.pad, rng), rng)
            else:  # normalized already: pad with the image's own border, not with an arbitrary value
                _, h, w = x.shape
                dy, dx = rng.randint(0, 2 * self.pad), rng.randint(0, 2 * self.pad)
                x = F.pad(x[None], (self.pad,) * 4, mode="replicate")[0, :, dy:dy + h, dx:dx + w]
                x = random_flip(x, rng)
        return normalize(x, self.mean, self.std) if raw else x.contiguous()


@dataclass(frozen=True)
class ImageTransform:
    """A decoded image file -> a normalized float tensor (channels, size, size).

    Small images (< 64 px): shorter side resized to ``size``, center crop, then (``augment``)
    random crop of the zero-padded image and flip. Large: (``augment``) random-resized crop and
    flip, else shorter side to ``size / 0.875`` and center crop.
    """

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False

    def geometry(self, image: Image.Image, rng: random.Random | None) -> Image.Image:
        """The cropped and resized image (size x size), before conversion to a tensor."""
        if self.size >= LARGE:
            if self.augment and rng is not None:
                return random_resized_crop(image, self.size, rng)
            return center_crop(resize_shorter(image, round(self.size / EVAL_CROP)), self.size)
        return center_crop(resize_shorter(image, self.size), self.size)

    def __call__(self, image: Image.Image, rng: random.Random | None) -> torch.Tensor:
        x = to_float(self.geometry(image, rng))
        if self.augment and rng is not None:
            if self.size < LARGE:
                x = pad_random_crop(x, pad_for(self.size), rng)
            x = random_flip(x, rng)
        return normalize(x, self.mean, self.std)
