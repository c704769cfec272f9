"""EnergyReport: per-layer and total energy of one plan on one hardware profile.

Energies are in microjoules (µJ) per inference of one image; bits are per inference.
The model (evaluators/energy/model.py) stores per-layer results as plain tuples and the
report turns them into :class:`LayerEnergy` objects only when asked, so scoring millions of
candidates does not pay for objects nobody reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from boolnas.evaluators.energy.profile import UNIT_NAMES

# Order of the per-layer row tuples written by the model.
ROW_FIELDS: tuple[str, ...] = (
    "name",
    "kind",
    "stage",
    "cycles",
    "bound_by",
    "compute_uJ",
    "sram_uJ",
    "dram_uJ",
    "sram_fm_read_bits",
    "sram_fm_write_bits",
    "sram_weight_bits",
    "dram_weight_bits",
    "dram_fm_bits",
    "fm_live_bits",
    "sram_residual_bits",
    "dram_residual_bits",
    "dram_fm_write_bits",
)


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one layer: compute, SRAM and DRAM (µJ), cycles and the bits it moves.

    ``bound_by`` is the unit type that sets the layer's cycles (the others wait, burning
    static power). ``fm_live_bits``: feature-map bits that must be held while the layer runs
    (its input, output, residuals and pass-through maps still needed later).
    The shortcut's traffic is also shown on its own: ``sram_residual_bits`` (the join's read of
    its residual map, part of ``sram_fm_read_bits``) and ``dram_residual_bits`` (the residual's
    spilled excess read back, part of ``dram_fm_bits``; 0 when it comes from the span's delay
    line). ``dram_fm_write_bits``: the layer's own output spilled (part of ``dram_fm_bits``).
    """

    name: str
    kind: str
    stage: int
    cycles: float
    bound_by: str
    compute_uJ: float
    sram_uJ: float
    dram_uJ: float
    sram_fm_read_bits: float
    sram_fm_write_bits: float
    sram_weight_bits: float
    dram_weight_bits: float
    dram_fm_bits: float
    fm_live_bits: float
    sram_residual_bits: float = 0.0
    dram_residual_bits: float = 0.0
    dram_fm_write_bits: float = 0.0

    @property
    def total_uJ(self) -> float:
        return self.compute_uJ + self.sram_uJ + self.dram_uJ

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["total_uJ"] = self.total_uJ
        return out


@dataclass(frozen=True)
class StageFootprint:
    """On-chip memory a stage needs: peak live feature-map bits and its largest layer's weights."""

    stage: int
    fm_bits: float
    weight_bits: float
    fm_fits: bool
    weights_fit: bool


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one inference of ``plan`` on ``profile`` (see :func:`estimate`).

    Totals: ``compute_uJ``, ``sram_uJ``, ``dram_uJ`` (and ``total_uJ``), ``cycles``; memory
    traffic in bits per level; op counts of the whole plan (``bops``, ``flops``, ``ops``);
    ``units_uJ``: compute energy per unit type; ``footprint``: per stage on-chip needs;
    ``host_layers``: layers the profile leaves to the host (not costed).
    """

    profile: str
    compute_uJ: float
    sram_uJ: float
    dram_uJ: float
    cycles: float
    sram_fm_bits: float
    sram_weight_bits: float
    dram_weight_bits: float
    dram_fm_bits: float
    bops: int
    flops: int
    units_uJ: tuple[float, ...]
    host_layers: tuple[str, ...]
    # raw model output, turned into objects on access (see the module docstring)
    stage_peaks: tuple[list[float], list[float], float, float] = field(repr=False, compare=False)
    rows: tuple[tuple[Any, ...], ...] = field(repr=False, compare=False)

    @property
    def total_uJ(self) -> float:
        return self.compute_uJ + self.sram_uJ + self.dram_uJ

    @property
    def ops(self) -> float:
        """FLOPs + BOPs / 64 (the BNN literature's convention)."""
        return self.flops + self.bops / 64

    @property
    def footprint(self) -> tuple[StageFootprint, ...]:
        """Per stage (0 stem .. 5 head, costed layers only): on-chip memory it needs."""
        fm, w, fm_buffer, w_buffer = self.stage_peaks
        return tuple(
            StageFootprint(
                stage=s,
                fm_bits=fm[s],
                weight_bits=max(w[s], 0.0),
                fm_fits=fm[s] <= fm_buffer,
                weights_fit=w[s] <= w_buffer,
            )
            for s in range(len(fm))
            if fm[s] >= 0
        )

    @property
    def layers(self) -> tuple[LayerEnergy, ...]:
        """Per-layer breakdown (costed layers, in plan order)."""
        return tuple(LayerEnergy(*row) for row in self.rows)

    def units(self) -> dict[str, float]:
        """Compute energy (µJ) per unit type."""
        return dict(zip(UNIT_NAMES, self.units_uJ, strict=True))

    def summary(self) -> dict[str, float]:
        """The headline numbers, JSON-friendly (what a search records per trial)."""
        return {
            "total_uJ": self.total_uJ,
            "compute_uJ": self.compute_uJ,
            "sram_uJ": self.sram_uJ,
            "dram_uJ": self.dram_uJ,
            "cycles": self.cycles,
            "bops": self.bops,
            "flops": self.flops,
            "ops": self.ops,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-friendly: totals, traffic, units, footprint and per-layer rows."""
        return {
            "profile": self.profile,
            **self.summary(),
            "sram_fm_bits": self.sram_fm_bits,
            "sram_weight_bits": self.sram_weight_bits,
            "dram_weight_bits": self.dram_weight_bits,
            "dram_fm_bits": self.dram_fm_bits,
            "units_uJ": self.units(),
            "footprint": [
                {
                    "stage": f.stage,
                    "fm_bits": f.fm_bits,
                    "weight_bits": f.weight_bits,
                    "fm_fits": f.fm_fits,
                    "weights_fit": f.weights_fit,
                }
                for f in self.footprint
            ],
            "host_layers": list(self.host_layers),
            "layers": [layer.to_dict() for layer in self.layers],
        }
