"""Training-recipe knobs of a Budget: lr schedule, parameter groups, label smoothing, channels-last."""

from __future__ import annotations

import math

import pytest
import torch

from boolnas.evaluators.accuracy import proxy_task, train_genotype
from boolnas.evaluators.data import DataConfig, load_dataset
from boolnas.evaluators.training import Budget, lr_factor, make_optimizer, to_channels_last
from boolnas.space import get_preset, make_plan
from boolnas.space.builder import build
from boolnas.space.layers import BinaryConv2d

SYNTH = DataConfig.from_conf("synthetic", val_size=128, num_train=512, num_test=64)
TINY = Budget.from_conf("tiny", batch_size=32, train_subset=256, val_subset=None)


@pytest.fixture(scope="module")
def data():
    return load_dataset(SYNTH)


def test_lr_factor_without_warmup_is_a_cosine_to_zero() -> None:
    total = 40
    assert lr_factor(0, total, 0.0) == 1.0
    assert lr_factor(total // 2, total, 0.0) == pytest.approx(0.5)
    assert lr_factor(total, total, 0.0) == pytest.approx(0.0, abs=1e-12)
    values = [lr_factor(s, total, 0.0) for s in range(total + 1)]
    assert values == sorted(values, reverse=True)


def test_lr_factor_warms_up_linearly_then_decays() -> None:
    total, warmup = 100, 0.1  # 10 warm-up steps
    ramp = [lr_factor(s, total, warmup) for s in range(10)]
    assert ramp[0] == pytest.approx(1 / 11) and ramp == sorted(ramp)
    assert all(b - a == pytest.approx(1 / 11) for a, b in zip(ramp, ramp[1:]))
    assert lr_factor(10, total, warmup) == 1.0  # peak right after the ramp
    assert lr_factor(55, total, warmup) == pytest.approx(0.5)
    assert max(lr_factor(s, total, warmup) for s in range(total)) == 1.0


def test_optimizer_groups_latent_binary_weights_apart_from_real_parameters() -> None:
    model = build(make_plan(get_preset("boolnet18_k4"), proxy_task(load_dataset(SYNTH), TINY)))
    budget = Budget.from_conf("tiny", lr=0.004, real_lr_mult=2.5)
    opt = make_optimizer(model, budget)
    binary = {id(m.weight) for m in model.modules() if isinstance(m, BinaryConv2d)}
    assert binary
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert by_lr[0.004] == binary
    assert math.isclose(max(by_lr), 0.01) and by_lr[max(by_lr)] == {id(p) for p in model.parameters()} - binary


def test_optimizer_of_a_network_without_binary_weights_has_one_group() -> None:
    opt = make_optimizer(torch.nn.Linear(3, 2), Budget.from_conf("tiny", lr=0.01, real_lr_mult=3.0))
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.03)]


@pytest.mark.parametrize(("field", "value"), [("warmup", 1.0), ("warmup", -0.1), ("label_smoothing", 1.0),
                                              ("real_lr_mult", 0.0)])
def test_bad_recipe_values_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"budget.{field}"):
        Budget.from_conf("tiny", **{field: value})


def test_recipe_knobs_train_deterministically(data) -> None:
    budget = Budget(**{**TINY.__dict__, "warmup": 0.2, "real_lr_mult": 2.0, "label_smoothing": 0.1,
                       "progressive": False})
    a = train_genotype(get_preset("basenet18_k4"), data, budget, seed=1)[1]
    b = train_genotype(get_preset("basenet18_k4"), data, budget, seed=1)[1]
    assert not a.diverged and a.steps == 256 // 32
    assert a.val_accuracy == b.val_accuracy and a.history[-1]["loss"] == b.history[-1]["loss"]


def test_channels_last_budget_trains_a_bnn(data) -> None:
    """``model.to(memory_format=channels_last)`` refuses the BNN's 5-D buffers; the budget's
    channels_last converts the 4-D tensors only and trains the same network."""
    budget = Budget(**{**TINY.__dict__, "channels_last": True})
    model, result = train_genotype(get_preset("boolnet18_k4"), data, budget, seed=0)
    assert not result.diverged
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def test_to_channels_last_keeps_values() -> None:
    model = build(make_plan(get_preset("reactnet18"), proxy_task(load_dataset(SYNTH), TINY))).eval()
    x = torch.randn(2, 1, 28, 28)
    before = model(x)
    to_channels_last(model)
    assert torch.allclose(model(x.contiguous(memory_format=torch.channels_last)), before, atol=1e-5)
