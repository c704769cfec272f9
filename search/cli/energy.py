"""boolnas-energy: per-layer and total energy of presets or arch files on a hardware profile.

stdout holds only the table or the JSON (one object per arch, a list for ``arch=all``); logs
and the path of the chart written for ``arch=all`` go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from boolnas.search.cli.support import guarded, quiet_interrupt_while_loading, run_cli
from boolnas.search.conf_dir import CONF_DIR

quiet_interrupt_while_loading()  # Ctrl-C while the modules load: one line, no import traceback

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from boolnas.evaluators.energy import EnergyReport, HardwareProfile, estimate, load_profile  # noqa: E402
from boolnas.space import PRESETS, Task, make_plan  # noqa: E402
from boolnas.space.arch_io import load_arch  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402

log = logging.getLogger("boolnas.energy")

FORMATS = ("table", "json")
JSON_KEYS = (
    "arch",
    "total_uJ",
    "compute_uJ",
    "sram_uJ",
    "dram_uJ",
    "bops",
    "flops",
    "ops",
    "cycles",
    "layers",
)


def report_json(arch: str, report: EnergyReport) -> dict[str, Any]:
    """The JSON object of one architecture: totals, op counts, cycles and per-layer rows."""
    return {
        "arch": arch,
        **{k: v for k, v in report.summary().items() if k in JSON_KEYS},
        "layers": [layer.to_dict() for layer in report.layers],
    }


def report_table(arch: str, report: EnergyReport, task: Task) -> str:
    """A fixed-width per-layer table with totals and the on-chip footprint per stage."""
    head = (
        f"{'layer':<24}{'kind':<9}{'cycles':>10} {'bound by':<12}{'compute':>9}{'SRAM':>9}"
        f"{'DRAM':>9}{'total':>9}{'SRAM FM bits':>15}{'SRAM W bits':>16}{'DRAM bits':>13}"
        f"{'shortcut SRAM':>15}{'shortcut DRAM':>15}"
    )
    lines = [
        f"== {arch} on {task.input_size}x{task.input_size}x{task.in_channels}, profile "
        f"{report.profile} (energy in uJ, bits per inference)",
        head,
        "-" * len(head),
    ]
    for r in report.layers:
        lines.append(
            f"{r.name:<24}{r.kind:<9}{r.cycles:>10,.0f} {r.bound_by:<12}{r.compute_uJ:>9.2f}"
            f"{r.sram_uJ:>9.2f}{r.dram_uJ:>9.2f}{r.total_uJ:>9.2f}"
            f"{r.sram_fm_read_bits + r.sram_fm_write_bits:>15,.0f}{r.sram_weight_bits:>16,.0f}"
            f"{r.dram_weight_bits + r.dram_fm_bits:>13,.0f}"
            f"{r.sram_residual_bits:>15,.0f}{r.dram_residual_bits:>15,.0f}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"{'total':<33}{report.cycles:>10,.0f} {'':<12}{report.compute_uJ:>9.2f}"
        f"{report.sram_uJ:>9.2f}"
        f"{report.dram_uJ:>9.2f}{report.total_uJ:>9.2f}{report.sram_fm_bits:>15,.0f}"
        f"{report.sram_weight_bits:>16,.0f}{report.dram_weight_bits + report.dram_fm_bits:>13,.0f}"
        f"{sum(r.sram_residual_bits for r in report.layers):>15,.0f}"
        f"{sum(r.dram_residual_bits for r in report.layers):>15,.0f}"
    )
    lines.append(
        "shortcut SRAM / DRAM: bits of the join's residual map read on chip / read back from DRAM "
        "(included in SRAM FM bits / DRAM bits; DRAM 0 when the shortcut waits in its span's delay line)"
    )
    lines.append(
        f"BOPs {report.bops:.4g}  FLOPs {report.flops:.4g}  OPs {report.ops:.4g}  "
        f"DRAM: weights {report.dram_weight_bits / 8 / 1024:,.0f} KiB, spilled maps "
        f"{report.dram_fm_bits / 8 / 1024:,.0f} KiB"
    )
    stages = "  ".join(
        f"{f.stage}: {f.fm_bits / 8 / 1024:,.0f}{'' if f.fm_fits else '!'} / "
        f"{f.weight_bits / 8 / 1024:,.0f}"
        f"{'' if f.weights_fit else '!'}"
        for f in report.footprint
    )
    lines.append(
        "on-chip KiB per stage (feature maps live / largest weights; ! exceeds the buffer): "
        + stages
    )
    if report.host_layers:
        lines.append(f"not costed (host, per profile scope): {', '.join(report.host_layers)}")
    return "\n".join(lines)


def summary_table(rows: list[tuple[str, EnergyReport]]) -> str:
    head = f"{'arch':<20}{'compute':>10}{'SRAM':>10}{'DRAM':>10}{'total uJ':>10}{'OPs':>11}"
    lines = [head, "-" * len(head)]
    for arch, r in rows:
        lines.append(
            f"{arch:<20}{r.compute_uJ:>10.1f}{r.sram_uJ:>10.1f}{r.dram_uJ:>10.1f}"
            f"{r.total_uJ:>10.1f}{r.ops:>11.4g}"
        )
    return "\n".join(lines)


def write_chart(path: Path, rows: list[tuple[str, EnergyReport]], profile: str) -> Path:
    """An interactive stacked bar chart (compute / SRAM / DRAM per arch), written atomically."""
    import plotly.graph_objects as go

    names = [arch for arch, _ in rows]
    fig = go.Figure()
    for label, attr in (("compute", "compute_uJ"), ("SRAM", "sram_uJ"), ("DRAM", "dram_uJ")):
        fig.add_bar(
            name=label,
            x=names,
            y=[getattr(r, attr) for _, r in rows],
            hovertemplate="%{x}<br>" + label + ": %{y:.1f} uJ<extra></extra>",
        )
    fig.update_layout(
        barmode="stack",
        title=f"Energy per inference, profile {profile}",
        yaxis_title="energy (uJ)",
        xaxis_title="architecture",
    )
    # plotly.js embedded: the chart works offline (about 4.7 MB)
    return write_text_atomic(path, fig.to_html(include_plotlyjs=True, full_html=True))


def _profile(cfg: DictConfig) -> HardwareProfile:
    if cfg.get("energy_file"):
        return load_profile(str(cfg.energy_file))
    return HardwareProfile.from_dict(OmegaConf.to_container(cfg.energy, resolve=True))


def _run(cfg: DictConfig) -> None:
    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is not supported; use format=table or format=json")
    profile = _profile(cfg)
    task = Task.from_dict(OmegaConf.to_container(cfg.task, resolve=True))
    ref = str(cfg.arch)
    chart = Path(str(cfg.chart))
    if ref == "all" and chart.is_dir():
        raise ValueError(f"chart={chart} is a directory; give the path of an .html file")
    archs = [load_arch(r) for r in (PRESETS if ref == "all" else [ref])]
    rows = [(name, estimate(make_plan(genotype, task), profile)) for name, genotype in archs]
    if fmt == "json":
        payload = [report_json(name, r) for name, r in rows]
        json.dump(payload if ref == "all" else payload[0], sys.stdout)
        sys.stdout.write("\n")
    else:
        for name, r in rows:
            print(report_table(name, r, task))
            print()
        if ref == "all":
            print(summary_table(rows))
    if ref == "all":
        path = write_chart(chart, rows, profile.name)  # an OSError names chart and the fix (search/cli/support.py)
        log.info("wrote the energy chart of %d architectures to %s", len(rows), path)


@hydra.main(config_path=CONF_DIR, config_name="energy_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg, output_key="chart")


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    run_cli(_hydra_main, "energy_cli", groups=("energy", "task"))


if __name__ == "__main__":
    main()
