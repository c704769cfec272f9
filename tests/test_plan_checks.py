"""Plan validation (space/plan_checks.py): one torch-free check that make_plan, the builder and
the energy model share, so a broken plan is refused by each of them with the same message."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import genotypes

from boolnas.evaluators.energy import LayerEnergy, estimate, load_profile
from boolnas.evaluators.energy.model import LayerRow
from boolnas.evaluators.energy.report import ROW_FIELDS
from boolnas.space import IMAGENET, PRESETS, Genotype, LayerSpec, Plan, Tap, Task, get_preset, make_plan
from boolnas.space.plan_checks import PlanError, validate

SMALL = Task(input_size=28, in_channels=1, num_classes=10, width_mult=0.25, stem="small")
PROFILE = load_profile("boolnet65nm")


def edited(plan: Plan, layer: str, changes: dict) -> Plan:
    """A new, unchecked plan: ``plan`` with the fields of ``layer`` replaced."""
    layers = [s._replace(**changes) if s.name == layer else s for s in plan.layers]
    return Plan(genotype=plan.genotype, task=plan.task, layers=tuple(layers), widths=plan.widths)


def basenet() -> Plan:
    return make_plan(get_preset("basenet18_k4"), SMALL)


# (layer, changes, message) of plans that break one invariant each
BROKEN = [
    ("stage1.block0.conv2", {"inputs": None}, r"stage1\.block0\.conv2.*residual"),  # inputs set below
    ("stage1.block0.conv1", {"join": "sum"}, r"'stage1\.block0\.conv1': unknown join 'sum'"),
    ("stage1.block0.conv1", {"act": "relu"}, r"'stage1\.block0\.conv1': unknown act 'relu'"),
    ("stage1.block0.conv1", {"w_bits": 32}, r"'stage1\.block0\.conv1': kind 'binconv' with w_bits=32"),
    ("stage1.block0.conv1", {"padding_mode": "zeros"}, r"zero-padded \(padding=1\) is not \+-1"),
    ("stage1.block0.conv1", {"out_binarizer": "tanh"}, r"unknown binarizer 'tanh'"),
    ("stage2.block0.conv1", {"in_slices": 2}, r"'stage2\.block0\.conv1': binary source of 4 slices used as an "
                                              r"operand of 2 slices"),
    ("stage1.block0.conv2", {"inputs": (Tap("stage1.block0.conv1", 0, 999), Tap("stem.binarize"))},
     r"outside the \d+ channels"),
    ("stage2.block0.conv1", {"inputs": (Tap("stage9.block0.conv1"),)}, r"reads 'stage9\.block0\.conv1', which is "
                                                                        r"not an earlier layer"),
    ("stage1.block0.conv2", {"name": "stage1.block0.conv1"}, r"the name is used twice"),
    ("head.fc", {"kind": "dense"}, r"'head\.fc': unknown kind 'dense'"),
]


def broken_plan(layer: str, changes: dict) -> Plan:
    plan = basenet()
    if changes.get("inputs", ()) is None:  # the residual of a join read from the wrong map
        changes = {"inputs": (plan[layer].inputs[0], Tap("stem.conv"))}
    return edited(plan, layer, changes)


@pytest.mark.parametrize(("layer", "changes", "message"), BROKEN, ids=[m for _, _, m in BROKEN])
def test_validate_and_the_energy_model_refuse_a_broken_plan(layer: str, changes: dict, message: str) -> None:
    plan = broken_plan(layer, changes)
    with pytest.raises(PlanError, match=message):
        validate(plan)
    with pytest.raises(PlanError, match=message):
        estimate(plan, PROFILE)


@pytest.mark.parametrize(("layer", "changes", "message"), BROKEN[:4], ids=[m for _, _, m in BROKEN[:4]])
def test_the_builder_refuses_a_broken_plan_with_the_same_message(layer: str, changes: dict, message: str) -> None:
    from boolnas.space.builder import PlanError as BuilderPlanError
    from boolnas.space.builder import build

    assert BuilderPlanError is PlanError
    with pytest.raises(PlanError, match=message):
        build(broken_plan(layer, changes))


def test_the_energy_model_refuses_the_plan_the_builder_test_refuses() -> None:
    """tests/test_builder.py's inconsistent plan: the residual of a join read from the stem."""
    plan = basenet()
    layers = list(plan.layers)
    i = next(i for i, s in enumerate(layers) if s.name == "stage1.block0.conv2")
    layers[i] = layers[i]._replace(inputs=(layers[i].inputs[0], Tap("stem.conv")))
    bad = Plan(genotype=plan.genotype, task=plan.task, layers=tuple(layers), widths=plan.widths)
    with pytest.raises(PlanError, match="stage1.block0.conv2.*residual"):
        estimate(bad, PROFILE)


@pytest.mark.parametrize("name", PRESETS)
def test_make_plan_returns_a_checked_plan(name: str) -> None:
    for task in (IMAGENET, SMALL):
        plan = make_plan(get_preset(name), task)
        assert plan.__dict__.get("_checked") is True
        assert validate(plan) is plan
        rebuilt = dataclasses.replace(plan)  # a new Plan object: checked again, and valid
        assert "_checked" not in rebuilt.__dict__
        assert validate(rebuilt) is rebuilt


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes())
def test_every_planned_genotype_is_valid(genotype: Genotype) -> None:
    for task in (IMAGENET, SMALL):
        plan = make_plan(genotype, task)
        assert validate(dataclasses.replace(plan)).layers == plan.layers


def test_plan_checks_and_the_energy_model_import_no_torch() -> None:
    code = ("import sys\n"
            "from boolnas.space.plan_checks import validate\n"
            "from boolnas.evaluators.energy import estimate, load_profile\n"
            "from boolnas.space import IMAGENET, get_preset, make_plan\n"
            "estimate(make_plan(get_preset('boolnet18_k4'), IMAGENET), load_profile('boolnet65nm'))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_layer_rows_carry_the_fields_of_layer_energy_in_order() -> None:
    """The model's row record, the report's column list and LayerEnergy stay in step."""
    assert LayerRow._fields == ROW_FIELDS == tuple(f.name for f in dataclasses.fields(LayerEnergy))
    report = estimate(make_plan(get_preset("boolnet18_k4"), IMAGENET), PROFILE)
    assert report.rows and all(type(row) is LayerRow for row in report.rows)
    for row, layer in zip(report.rows, report.layers, strict=True):
        assert row._asdict() == {k: v for k, v in layer.to_dict().items() if k != "total_uJ"}


def test_layer_spec_is_still_a_named_tuple() -> None:
    assert issubclass(LayerSpec, tuple) and "name" in LayerSpec._fields


def test_a_network_built_from_a_given_plan_equals_one_planned_inside() -> None:
    import torch

    from boolnas.evaluators.accuracy import build_for, build_network

    genotype = get_preset("boolnet18_k4")
    plan = make_plan(genotype, SMALL)
    torch.manual_seed(0)
    inside = build_for(genotype, SMALL).state_dict()
    torch.manual_seed(0)
    given_plan = build_network(genotype, SMALL, plan=plan)
    assert given_plan.plan is plan
    assert inside.keys() == given_plan.state_dict().keys()
    other = given_plan.state_dict()
    for key, value in inside.items():
        assert torch.equal(value, other[key]) if isinstance(value, torch.Tensor) else value == other[key], key
    with pytest.raises(ValueError, match="the plan given is of genotype"):
        build_for(get_preset("basenet18_k1"), SMALL, plan=plan)
    with pytest.raises(ValueError, match="the plan given is of genotype"):
        build_for(genotype, IMAGENET, plan=plan)
