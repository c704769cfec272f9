"""The boolnas-bench table's exact Pareto front (energy vs reference accuracy), the presets marked.

Issue 14, item 5. Reads only ``table.csv`` (benchmarks/bench_table.py): the 108 genotypes of
conf/space/bench.yaml and the seven literature presets, each with its accuracy at the reference
fidelity (4x the proxy's training images, seed 0) and its exact energy on the ImageNet task.
Writes ``front.png`` (every genotype, the front as a step line, the presets labelled) and
``front.json``: the front's members, and for each preset the cheapest genotype of the subspace
that is at least as accurate (how much energy the subspace saves at the preset's accuracy).

    .venv/bin/python benchmarks/bench_front.py                        # boolnet65nm energy
    .venv/bin/python benchmarks/bench_front.py --profile horowitz45nm

Presets are reference points outside the subspace (most have several blocks per stage and
32-bit parts the subspace fixes otherwise), so the front is computed over the subspace only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)
from _plots import pyplot, save_png, shown_path  # noqa: E402

from boolnas.search.pareto import front  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402

DEFAULT_TABLE = REPO / "benchmarks" / "results" / "bench" / "table.csv"
ACCURACY = "acc_f4_s0"  # the reference fidelity (benchmarks/bench_table.py)
ENERGY_COLUMN = {"boolnet65nm": "energy_uJ", "horowitz45nm": "energy_uJ_horowitz45nm"}
DESIGN = ("shortcut", "placement", "slices", "downsample", "feature_reuse", "stem")  # the table's choice columns


@dataclass(frozen=True)
class Point:
    name: str
    accuracy: float
    energy_uJ: float
    is_preset: bool
    design: dict[str, str]


def load_points(path: Path, energy_column: str) -> list[Point]:
    if not path.is_file():
        raise FileNotFoundError(f"no table at {path}: run benchmarks/bench_table.py first (or give --table)")
    points = []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            try:
                acc, energy = float(row[ACCURACY]), float(row[energy_column])
            except KeyError as exc:
                raise ValueError(f"{path}: no column {exc}; is it a boolnas-bench table?") from None
            except ValueError:
                continue  # not measured at the reference fidelity (an unfinished campaign)
            points.append(Point(row["name"], acc, energy, row["is_preset"] == "True",
                                {k: row.get(k, "") for k in DESIGN}))
    if not any(not p.is_preset for p in points):
        raise ValueError(f"{path}: no genotype of the subspace is measured at the reference fidelity")
    return points


def pareto_members(points: Sequence[Point]) -> list[Point]:
    """The subspace's non-dominated genotypes, by increasing energy."""
    genotypes = [p for p in points if not p.is_preset]
    return [genotypes[i] for i in front([(p.accuracy, p.energy_uJ) for p in genotypes])]


def preset_standing(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Per preset: the cheapest subspace genotype at least as accurate, and the energy it saves."""
    genotypes = [p for p in points if not p.is_preset]
    out = []
    for preset in (p for p in points if p.is_preset):
        rivals = [g for g in genotypes if g.accuracy >= preset.accuracy]
        best = min(rivals, key=lambda g: g.energy_uJ, default=None)
        out.append({
            "preset": preset.name, "accuracy": preset.accuracy, "energy_uJ": preset.energy_uJ,
            "cheapest_as_accurate": best.name if best else None,
            "its_accuracy": best.accuracy if best else None,
            "its_energy_uJ": best.energy_uJ if best else None,
            "energy_ratio": preset.energy_uJ / best.energy_uJ if best else None,
        })
    return out


def plot(points: Sequence[Point], members: Sequence[Point], path: Path, profile: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.6))
    genotypes = [p for p in points if not p.is_preset]
    ax.scatter([p.energy_uJ for p in genotypes], [p.accuracy for p in genotypes], s=14, color="0.6",
               label=f"subspace genotypes ({len(genotypes)})")
    ax.step([m.energy_uJ for m in members], [m.accuracy for m in members], where="post", color="C0", lw=1.8,
            marker="o", markersize=5, label=f"exact Pareto front ({len(members)} members)")
    presets = [p for p in points if p.is_preset]
    ax.scatter([p.energy_uJ for p in presets], [p.accuracy for p in presets], s=60, marker="D", color="C3",
               zorder=3, label="literature presets (outside the subspace)")
    for p in presets:
        ax.annotate(p.name, (p.energy_uJ, p.accuracy), textcoords="offset points", xytext=(6, -3), fontsize=8,
                    color="C3")
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per ImageNet inference (µJ, {profile})")
    ax.set_ylabel("accuracy at the reference fidelity (Fashion-MNIST, 4x proxy)")
    ax.set_title("boolnas-bench: the exact accuracy-energy front of the table", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=140)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--profile", default="boolnet65nm", choices=sorted(ENERGY_COLUMN))
    ap.add_argument("--out", type=Path, default=None, help="default: the table's folder")
    args = ap.parse_args(argv)
    args.out = args.out or args.table.parent
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        points = load_points(args.table, ENERGY_COLUMN[args.profile])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    members = pareto_members(points)
    suffix = "" if args.profile == "boolnet65nm" else f"_{args.profile}"
    summary = {
        "benchmark": "bench_front", "table": shown_path(args.table), "profile": args.profile, "accuracy": ACCURACY,
        "genotypes": sum(not p.is_preset for p in points),
        "front": [asdict(m) for m in members],
        "presets": preset_standing(points),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / f"front{suffix}.json", json.dumps(summary, indent=2) + "\n")
    plot(points, members, args.out / f"front{suffix}.png", args.profile)
    print(f"front: {len(members)} of {summary['genotypes']} genotypes ({args.profile})")
    for m in members:
        print(f"  {m.energy_uJ:>9.1f} µJ  {m.accuracy:.4f}  {m.name}  {m.design}")
    for s in summary["presets"]:
        cheaper = (f"{s['cheapest_as_accurate']} ({s['its_accuracy']:.4f}, {s['its_energy_uJ']:.1f} µJ): "
                   f"{s['energy_ratio']:.2f}x less energy" if s["cheapest_as_accurate"] else "no genotype as accurate")
        print(f"  preset {s['preset']:<18} {s['accuracy']:.4f} at {s['energy_uJ']:>8.1f} µJ; {cheaper}")
    return summary


if __name__ == "__main__":
    main()
