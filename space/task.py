"""Task: what a genotype is instantiated for (input, classes, width, stem style)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from boolnas.space.fields import EXPECTED, INTEGER, NUMBER, field_value
from boolnas.space.records import FromConf, record_from_mapping

STEM_STYLES = ("imagenet", "small")


@dataclass(frozen=True)
class Task(FromConf):
    """Input size and channels, number of classes, a width multiplier and the stem style.

    ``imagenet``: 7x7/2 conv + 3x3/2 max-pool (224 -> 56). ``small``: 3x3/1 conv, no pool,
    for 28x28 and 32x32 inputs. ``width_mult`` multiplies the genotype's own width (the proxy
    task uses it to shrink networks for cheap training; the target task keeps 1.0).

    Every field is required: the named tasks are conf/task/*.yaml (:meth:`from_conf`).
    """

    CONF_GROUP: ClassVar[str] = "task"

    input_size: int
    in_channels: int
    num_classes: int
    width_mult: float
    stem: str

    def __post_init__(self) -> None:
        for name in ("input_size", "in_channels", "num_classes", "width_mult"):
            field_value(getattr(self, name), f"task field '{name}'", NUMBER if name == "width_mult" else INTEGER,
                        low=0, low_open=True, high=math.inf, high_open=True, template=EXPECTED)
        object.__setattr__(self, "width_mult", float(self.width_mult))
        if self.stem not in STEM_STYLES:
            raise ValueError(f"task field 'stem': {self.stem!r} is not allowed; allowed values: {list(STEM_STYLES)}")
        if self.stem == "imagenet" and self.input_size < 32:
            raise ValueError(
                f"task field 'input_size': {self.input_size} is too small for the 'imagenet' stem "
                "(it divides the input by 32); use stem: small"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return record_from_mapping(cls, data, "task")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


IMAGENET = Task.from_conf("imagenet")  # the paper's target task, where energy is costed
CIFAR = Task.from_conf("cifar10")
FASHION_MNIST = Task.from_conf("fashion_mnist")
