"""What is searched: genotype, task, plan, BNN layers, network builder, presets, sampling.

space/ imports neither evaluators/ nor search/, and imports torch only in the builder and
layer modules (loaded lazily here), so planning stays cheap and torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boolnas.space.genotype import CHOICES, NUM_STAGES, Genotype
from boolnas.space.plan import LayerSpec, Plan, Tap, make_plan
from boolnas.space.presets import PRESETS, get_preset, preset_of
from boolnas.space.task import FASHION_MNIST, IMAGENET, Task

if TYPE_CHECKING:
    from boolnas.space.builder import build as build
    from boolnas.space.sampling import sample as sample

__all__ = [
    "CHOICES", "NUM_STAGES", "Genotype", "LayerSpec", "Plan", "Tap", "make_plan", "PRESETS",
    "get_preset", "preset_of", "Task", "IMAGENET", "FASHION_MNIST", "build", "sample",
]


def __getattr__(name: str) -> Any:
    # torch-heavy and optuna-facing entry points load on first use.
    if name == "build":
        from boolnas.space.builder import build

        return build
    if name == "sample":
        from boolnas.space.sampling import sample

        return sample
    raise AttributeError(f"module 'space' has no attribute {name!r}")
