"""boolnet65nm against the BoolNet paper's energy table, and the seven presets' order.

Run with -s to see the calibration table.
"""

from __future__ import annotations

import math

import pytest

from boolnas.evaluators.energy import estimate, load_profile
from boolnas.evaluators.energy.calibration import (
    PAPER_ENERGY_UJ,
    calibration,
    calibration_markdown,
    headline_ratio,
)
from boolnas.space import IMAGENET, PRESETS, get_preset, make_plan

PROFILE = load_profile("boolnet65nm")
ROWS = {row.arch: row for row in calibration(PROFILE)}

# Ascending energy; docs/energy-model.md ("The seven presets") explains the order.
EXPECTED_ORDER = (
    "basenet18_k1",
    "basenet18_k4",
    "boolnet18_k4",
    "boolnet18_k4_star",
    "xnornet18",
    "bireal18",
    "reactnet18",
)


def test_print_calibration_table() -> None:
    print()
    print(calibration_markdown(PROFILE))


@pytest.mark.parametrize("arch", sorted(PAPER_ENERGY_UJ))
def test_total_within_12_percent(arch: str) -> None:
    assert abs(ROWS[arch].errors[3]) <= 0.12, ROWS[arch]


@pytest.mark.parametrize("arch", sorted(PAPER_ENERGY_UJ))
@pytest.mark.parametrize("component", [0, 1, 2], ids=["compute", "sram", "dram"])
def test_component_within_25_percent(arch: str, component: int) -> None:
    assert abs(ROWS[arch].errors[component]) <= 0.25, ROWS[arch]


def test_headline_ratio() -> None:
    assert 4.1 <= headline_ratio(PROFILE) <= 5.1


def test_paper_structure_holds() -> None:
    """What the paper's table implies: BaseNet k=1 and k=4 load the same 3x3 weights, k=4 moves
    more on-chip data; 32-bit feature maps make DRAM dominate bireal18."""
    k1, k4 = ROWS["basenet18_k1"], ROWS["basenet18_k4"]
    assert k4.model[1] > 1.2 * k1.model[1]
    assert k4.model[2] < 1.1 * k1.model[2]
    bireal = ROWS["bireal18"]
    assert bireal.model[2] > bireal.model[1] > 10 * bireal.model[0]


def test_every_preset_has_an_energy_and_the_documented_order() -> None:
    totals = {}
    for name in PRESETS:
        r = estimate(make_plan(get_preset(name), IMAGENET), PROFILE)
        assert math.isfinite(r.total_uJ) and r.total_uJ > 0
        totals[name] = r.total_uJ
    assert tuple(sorted(totals, key=totals.get)) == EXPECTED_ORDER


# What the paper's table and the designs imply, independent of the accelerator's constants: the
# BoolNet family in order of its additions, the 1-bit designs below Bi-Real, fewer 32-bit maps
# (per-block shortcuts) below more, and RSign / RPReLU on top of Bi-Real.
PAPER_PAIRS = (
    ("basenet18_k1", "basenet18_k4"),
    ("basenet18_k4", "boolnet18_k4"),
    ("boolnet18_k4", "boolnet18_k4_star"),
    ("boolnet18_k4_star", "bireal18"),
    ("xnornet18", "bireal18"),
    ("bireal18", "reactnet18"),
)


def test_horowitz_profile_keeps_the_paper_order() -> None:
    """A generic 45 nm table keeps every order the paper implies. (Where xnornet18 falls among the
    BoolNet family is the calibrated accelerator's business: on this table it costs less than
    boolnet18_k4_star, whose dilated stage 4 makes the most SRAM traffic of all.)"""
    p = load_profile("horowitz45nm")
    totals = {n: estimate(make_plan(get_preset(n), IMAGENET), p).total_uJ for n in PRESETS}
    for cheaper, dearer in PAPER_PAIRS:
        assert totals[cheaper] < totals[dearer], (cheaper, dearer, totals)
