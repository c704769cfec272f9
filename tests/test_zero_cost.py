"""Zero-cost proxies: finite and positive on the presets, sensitive to how distinct the binary
codes are, and deterministic under a seed."""

from __future__ import annotations

import math

import pytest
import torch

from boolnas.evaluators.zero_cost import ZERO_COST_METRICS, gradient_scores, naswot, zero_cost_scores
from boolnas.space import PRESETS, Task, get_preset, make_plan
from boolnas.space.builder import PlanNetwork, build

TASK = Task(input_size=14, in_channels=1, num_classes=10, width_mult=0.25, stem="small")
BATCH = 16


def _net(preset: str, seed: int = 0) -> PlanNetwork:
    torch.manual_seed(seed)
    return build(make_plan(get_preset(preset), TASK))


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 1, TASK.input_size, TASK.input_size, generator=gen)
    return x, torch.randint(0, TASK.num_classes, (BATCH,), generator=gen)


@pytest.mark.parametrize("preset", PRESETS)
def test_scores_are_finite_and_gradient_scores_positive_on_every_preset(preset: str) -> None:
    scores = zero_cost_scores(_net(preset), *_batch())
    assert set(scores) == set(ZERO_COST_METRICS)
    assert all(math.isfinite(v) for v in scores.values()), scores
    assert scores["zc_grad_norm"] > 0 and scores["zc_snip"] > 0


@pytest.mark.parametrize("preset", ["bireal18", "reactnet18"])
def test_naswot_sees_the_codes_of_32bit_shortcut_networks(preset: str) -> None:
    """Bi-Real / ReActNet keep real maps between layers; their codes are the operands their convs
    binarize. Without those the kernel was all zeros and the score -inf."""
    plan = make_plan(get_preset(preset), TASK)
    assert not any(s.out_bits == 1 for s in plan), "the case this test guards: no binary layer outputs"
    assert math.isfinite(naswot(_net(preset), _batch()[0]))


def test_naswot_is_larger_when_the_binary_codes_are_more_distinct() -> None:
    """Same network: 16 distinct images against 16 near-copies of one image (their codes agree
    on most units, so the kernel is close to rank one)."""
    x, _ = _batch()
    near_copies = x[:1] + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    distinct = naswot(_net("basenet18_k1"), x)
    similar = naswot(_net("basenet18_k1"), near_copies)
    assert math.isfinite(distinct)
    assert distinct > similar + 10


def test_naswot_of_a_network_whose_codes_do_not_depend_on_the_image_is_minus_inf() -> None:
    """A zero BN scale in front of the stem's sign makes every binary map identical across
    images (K has equal entries, rank one): no distinct codes, the lowest possible score."""
    x, _ = _batch()
    net = _net("basenet18_k1")
    assert math.isfinite(naswot(net, x))
    with torch.no_grad():
        bn = net.layer("stem.binarize").bn
        bn.weight.zero_()
        bn.bias.zero_()
    assert naswot(net, x) == float("-inf")


def test_more_slices_give_more_distinct_codes() -> None:
    """k = 4 slices code each value at 5 levels instead of 2: more units tell images apart."""
    x, _ = _batch()
    assert naswot(_net("basenet18_k4"), x) > naswot(_net("basenet18_k1"), x)


def test_scores_are_deterministic_under_a_seed() -> None:
    x, y = _batch(3)
    first = zero_cost_scores(_net("boolnet18_k4", seed=5), x, y)
    second = zero_cost_scores(_net("boolnet18_k4", seed=5), x, y)
    assert first == second
    other = zero_cost_scores(_net("boolnet18_k4", seed=6), x, y)
    assert other != first  # the seed is what fixes them, not a constant


def test_gradient_scores_leave_no_gradients_behind() -> None:
    net = _net("reactnet18")
    gradient_scores(net, *_batch())
    assert all(p.grad is None for p in net.parameters())
