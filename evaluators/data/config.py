"""Which data set, where, and how its splits are carved: :class:`DataConfig` (conf/data/*.yaml)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from boolnas.space.fields import INTEGER, field_value, is_number, one_of
from boolnas.space.records import FromConf, record_from_mapping

DATASETS = ("fashion_mnist", "cifar10", "synthetic", "imagefolder")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message says what was expected and how to get it."""


@dataclass(frozen=True)
class DataConfig(FromConf):
    """Which dataset, where, and how the validation (and test) splits are carved.

    ``input_size`` / ``channels``: the generated images of ``synthetic``; for ``imagefolder`` the
    size images are resized and center-cropped to and their colour (1 grey, 3 RGB), None taking
    both from the first training image. ``num_test``: test images of ``synthetic``, and the test
    images an ``imagefolder`` without a test/ folder carves from its training images.
    ``mean`` / ``std``: per-channel normalization of pixels in [0, 1]; None: the published
    statistics (Fashion-MNIST, CIFAR-10) or, for ``imagefolder``, estimated from training images.

    Values come from conf/data/*.yaml (data sets chosen in code start from one: :meth:`from_conf`).
    The defaults below are those of keys some data set's file leaves out because that data set
    does not use them (fashion_mnist.yaml and cifar10.yaml set none of the synthetic-only sizes,
    imagefolder.yaml neither ``num_train`` nor ``num_classes``, synthetic.yaml no ``mean`` / ``std``),
    so the settings a study records stay as they were.
    """

    CONF_GROUP: ClassVar[str] = "data"

    name: str
    root: str | None  # None: the dataset's default location
    val_size: int
    seed: int
    num_train: int = 2048  # synthetic only
    num_test: int = 512
    input_size: int | None = 28
    channels: int | None = 1
    num_classes: int = 10  # synthetic only
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        one_of(self.name, "data.name", DATASETS, DatasetError)
        for field_name in ("val_size", "num_test", "seed"):
            field_value(getattr(self, field_name), f"data.{field_name}", INTEGER, low=0, error=DatasetError)
        for field_name in ("num_train", "input_size", "channels", "num_classes"):
            optional = field_name in ("input_size", "channels") and self.name == "imagefolder"
            field_value(getattr(self, field_name), f"data.{field_name}", INTEGER, low=1, optional=optional,
                        expected="a positive integer", error=DatasetError)
        if self.name == "imagefolder" and self.channels not in (None, 1, 3):
            raise DatasetError(f"data.channels must be 1 (grey), 3 (RGB) or null (as the images) for "
                               f"data=imagefolder, got {self.channels!r}")
        if self.root == "???":  # OmegaConf's marker of a required value left unset (conf/data/cifar10.yaml)
            object.__setattr__(self, "root", None)
        if self.root is not None and (not isinstance(self.root, str) or not self.root):
            raise DatasetError(f"data.root must be the path of a directory (or null), got {self.root!r}")
        for field_name in ("mean", "std"):
            object.__setattr__(self, field_name, _statistic(field_name, getattr(self, field_name)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        return record_from_mapping(cls, data, "data", DatasetError)


def _statistic(name: str, value: Any) -> tuple[float, ...] | None:
    """``mean`` / ``std`` as a tuple of finite floats (one per channel, or one for all); std > 0."""
    if value is None:
        return None
    if is_number(value):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise DatasetError(f"data.{name} must be a list of numbers (one per channel) or null, got {value!r}")
    out = []
    for v in value:
        if not is_number(v) or not math.isfinite(v) or (name == "std" and v <= 0):
            what = "positive numbers" if name == "std" else "finite numbers"
            raise DatasetError(f"data.{name} must hold {what} (pixel values scaled to [0, 1]), got {list(value)!r}")
        out.append(float(v))
    return tuple(out)


def per_channel(values: tuple[float, ...], channels: int, name: str) -> tuple[float, ...]:
    """``values`` for each of ``channels`` (a single value broadcast); refuse another length."""
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise DatasetError(f"data.{name} has {len(values)} values but the images have {channels} channel(s); "
                           f"give {channels} values or one")
    return values


def check_dir(root: Path, hint: str) -> None:
    """Refuse a dataset folder that is missing or a file, with ``hint`` (what was expected)."""
    if root.exists() and not root.is_dir():
        raise DatasetError(f"dataset directory {root} is a file, not a directory: {hint}")
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist: {hint}")
