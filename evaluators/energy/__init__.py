"""The built-in energy model of a BNN accelerator (pure Python, no torch).

    from boolnas.evaluators.energy import estimate, load_profile
    report = estimate(make_plan(genotype, IMAGENET), load_profile("boolnet65nm"))
    report.total_uJ, report.compute_uJ, report.sram_uJ, report.dram_uJ, report.layers

Profiles live in conf/energy/*.yaml; see :mod:`evaluators.energy.profile` for the keys and
:mod:`evaluators.energy.model` for what is costed.
"""

from boolnas.evaluators.energy.model import estimate
from boolnas.evaluators.energy.profile import (
    UNIT_NAMES,
    HardwareProfile,
    ProfileError,
    UnitSpec,
    load_profile,
)
from boolnas.evaluators.energy.report import EnergyReport, LayerEnergy, StageFootprint

__all__ = [
    "estimate",
    "load_profile",
    "HardwareProfile",
    "ProfileError",
    "UnitSpec",
    "UNIT_NAMES",
    "EnergyReport",
    "LayerEnergy",
    "StageFootprint",
]
