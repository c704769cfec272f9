"""The paper's energy table and a comparison of a profile against it.

BoolNet (Guo et al. 2021) reports compute / SRAM / DRAM energy (µJ per ImageNet inference)
of four networks on its accelerator (docs/bnn-background.md, section 4). ``boolnet65nm`` is calibrated
against these rows; tests assert the tolerances and docs/energy-model.md ("Calibration") shows the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from boolnas.evaluators.energy.model import estimate
from boolnas.evaluators.energy.profile import HardwareProfile
from boolnas.space.plan import make_plan
from boolnas.space.presets import get_preset
from boolnas.space.task import IMAGENET, Task

# preset -> (compute, SRAM, DRAM) in µJ, from the paper's energy table
PAPER_ENERGY_UJ: dict[str, tuple[float, float, float]] = {
    "bireal18": (67.4, 1581.2, 2250.8),
    "basenet18_k1": (46.9, 297.1, 269.2),
    "basenet18_k4": (47.1, 424.2, 269.2),
    "boolnet18_k4": (53.8, 478.8, 306.5),
}
PAPER_RATIO = ("bireal18", "boolnet18_k4", 4.6)  # the paper's headline: 4.6x less energy

COMPONENTS = ("compute", "sram", "dram", "total")


@dataclass(frozen=True)
class CalibrationRow:
    """Model vs paper for one network: µJ per component, relative error = model / paper - 1."""

    arch: str
    model: tuple[float, float, float, float]  # compute, sram, dram, total
    paper: tuple[float, float, float, float]

    @property
    def errors(self) -> tuple[float, float, float, float]:
        return tuple(m / p - 1.0 for m, p in zip(self.model, self.paper, strict=True))  # type: ignore[return-value]


def calibration(profile: HardwareProfile, task: Task = IMAGENET) -> list[CalibrationRow]:
    """The four reference networks costed on ``profile``, next to the paper's numbers."""
    rows = []
    for arch, (c, s, d) in PAPER_ENERGY_UJ.items():
        r = estimate(make_plan(get_preset(arch), task), profile)
        rows.append(
            CalibrationRow(
                arch=arch,
                model=(r.compute_uJ, r.sram_uJ, r.dram_uJ, r.total_uJ),
                paper=(c, s, d, c + s + d),
            )
        )
    return rows


def headline_ratio(profile: HardwareProfile, task: Task = IMAGENET) -> float:
    """Energy of bireal18 over boolnet18_k4 (the paper: 4.6)."""
    a, b, _ = PAPER_RATIO
    ea = estimate(make_plan(get_preset(a), task), profile).total_uJ
    eb = estimate(make_plan(get_preset(b), task), profile).total_uJ
    return ea / eb


def calibration_markdown(profile: HardwareProfile) -> str:
    """The calibration as a markdown table (µJ, model / paper, error)."""
    lines = [
        "| network | compute | SRAM | DRAM | total |",
        "|---|---|---|---|---|",
    ]
    for row in calibration(profile):
        cells = [
            f"{m:.1f} / {p:.1f} ({e * 100:+.1f} %)"
            for m, p, e in zip(row.model, row.paper, row.errors, strict=True)
        ]
        lines.append(f"| {row.arch} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Energy ratio bireal18 / boolnet18_k4: {headline_ratio(profile):.2f} "
        f"(paper {PAPER_RATIO[2]})."
    )
    return "\n".join(lines)
