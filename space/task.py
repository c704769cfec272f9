"""Task: what a genotype is instantiated for (input, classes, width, stem style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from boolnas.space.fields import EXPECTED, INTEGER, NUMBER, field_value
from boolnas.space.records import record_from_mapping

STEM_STYLES = ("imagenet", "small")


@dataclass(frozen=True)
class Task:
    """Input size and channels, number of classes, a width multiplier and the stem style.

    ``imagenet``: 7x7/2 conv + 3x3/2 max-pool (224 -> 56). ``small``: 3x3/1 conv, no pool,
    for 28x28 and 32x32 inputs. ``width_mult`` multiplies the genotype's own width (the proxy
    task uses it to shrink networks for cheap training; the target task keeps 1.0).
    """

    input_size: int = 224
    in_channels: int = 3
    num_classes: int = 1000
    width_mult: float = 1.0
    stem: str = "imagenet"

    def __post_init__(self) -> None:
        for name in ("input_size", "in_channels", "num_classes", "width_mult"):
            field_value(getattr(self, name), f"task field '{name}'", NUMBER if name == "width_mult" else INTEGER,
                        low=0, low_open=True, allow_nan=True, template=EXPECTED)
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


IMAGENET = Task(input_size=224, in_channels=3, num_classes=1000, width_mult=1.0, stem="imagenet")
CIFAR = Task(input_size=32, in_channels=3, num_classes=10, width_mult=1.0, stem="small")
FASHION_MNIST = Task(input_size=28, in_channels=1, num_classes=10, width_mult=1.0, stem="small")
