"""How a candidate is scored: energy model, datasets, proxy training, full training.

Import-light: the energy model is re-exported lazily (it needs neither torch nor Hydra), and
the torch-based evaluators load only when imported themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boolnas.evaluators.energy import EnergyReport as EnergyReport
    from boolnas.evaluators.energy import HardwareProfile as HardwareProfile
    from boolnas.evaluators.energy import estimate as estimate
    from boolnas.evaluators.energy import load_profile as load_profile

_ENERGY = ("estimate", "load_profile", "HardwareProfile", "EnergyReport")
__all__ = list(_ENERGY)


def __getattr__(name: str) -> Any:
    if name in _ENERGY:
        import boolnas.evaluators.energy as energy

        return getattr(energy, name)
    raise AttributeError(f"module 'boolnas.evaluators' has no attribute {name!r}")
