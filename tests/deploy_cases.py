"""The networks the deployment tests run: every preset and 20 seeded random genotypes, small.

Parity and bit-exactness are about semantics, not size: the networks keep their structure
(every preset's genotype; random genotypes with choices mixed per stage, 1..2 blocks per
stage) on small tasks. ``SMALL`` (12x12, 3x3 stem) makes odd map sizes (12 -> 6 -> 3 -> 2, so
ceil-mode pooling of a partial window); ``IMAGENET_STEM`` (32x32) has the 7x7/2 stem and its
max-pool.

:func:`trained_like` gives a fresh network the state a training leaves: BatchNorm statistics
measured on data (not the init's mean 0 / variance 1), random BN scales of both signs, shifted
biases, RSign thresholds, PReLU slopes. With the init's statistics an exact tie (a binary conv
sum of 0 against a threshold of 0) is common, and the float simulation breaks it by rounding.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from boolnas.space import PRESETS, Genotype, Task, get_preset
from boolnas.space.builder import PlanNetwork
from boolnas.space.genotype import CHOICES, GLOBAL_FIELDS, NUM_STAGES, PER_STAGE_FIELDS, PER_TRANSITION_FIELDS

SMALL = Task(input_size=12, in_channels=1, num_classes=10, width_mult=0.25, stem="small")
IMAGENET_STEM = Task(input_size=32, in_channels=3, num_classes=10, width_mult=0.25, stem="imagenet")
RANDOM_GENOTYPES = 20


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a test module that imports this fixture (the parity and bit-exact
    numbers do not depend on it; the machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_genotype(seed: int) -> Genotype:
    """Every field drawn (per stage where it is per stage), 1..2 blocks per stage."""
    r = random.Random(seed)
    kwargs: dict = {}
    for name in PER_STAGE_FIELDS:
        kwargs[name] = tuple(r.randint(1, 2) if name == "blocks" else r.choice(CHOICES[name])
                             for _ in range(NUM_STAGES))
    for name in PER_TRANSITION_FIELDS:
        kwargs[name] = tuple(r.choice(CHOICES[name]) for _ in range(NUM_STAGES - 1))
    for name in GLOBAL_FIELDS:
        kwargs[name] = r.choice((0.5, 1.0)) if name == "width_mult" else r.choice(CHOICES[name])
    return Genotype(**kwargs)


def cases() -> list[tuple[str, Genotype, Task]]:
    """(id, genotype, task): every preset on both tasks, then the random genotypes (tasks alternating)."""
    out = [(f"{p}-small", get_preset(p), SMALL) for p in PRESETS]
    out += [(f"{p}-imagenet_stem", get_preset(p), IMAGENET_STEM) for p in PRESETS]
    out += [(f"random{i}", random_genotype(i), SMALL if i % 2 else IMAGENET_STEM) for i in range(RANDOM_GENOTYPES)]
    return out


def trained_like(net: PlanNetwork, seed: int = 0) -> PlanNetwork:
    """Measured BN statistics and randomized per-channel parameters; returns ``net`` in eval mode."""
    t = net.plan.task
    g = torch.Generator().manual_seed(seed)
    net.recalibrate_bn([torch.randn(32, t.in_channels, t.input_size, t.input_size, generator=g) for _ in range(2)])
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))  # both signs
                m.bias.add_(0.2 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.PReLU):
                m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))
            threshold = getattr(m, "threshold", None)
            if isinstance(threshold, nn.Parameter):  # RSign
                threshold.copy_(0.3 * torch.randn(threshold.shape, generator=g))
            for shift in ("shift_in", "shift_out"):  # RPReLU
                p = getattr(m, shift, None)
                if isinstance(p, nn.Parameter):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()
