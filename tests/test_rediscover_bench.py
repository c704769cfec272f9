"""benchmarks/rediscover.py end to end on a tiny synthetic setting: both searches run through the
real CLI, and the analysis writes the hypervolume table, the summary and the plot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["data=synthetic", "data.num_train=256", "data.val_size=64", "data.num_test=64", "budget=tiny",
        "budget.train_subset=64", "budget.val_subset=64", "budget.batch_size=32", "budget.resolution=8",
        "budget.bn_recalibration=1", "zero_cost=false"]


def test_rediscover_runs_both_samplers_and_reports(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rediscover.py"), "--trials", "12",
                          "--studies", str(tmp_path / "studies"), "--out", str(tmp_path / "out"), *TINY],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "rediscover_hv.csv").open()))
    for sampler in ("tpe", "random"):
        hv = [float(r["hypervolume"]) for r in rows if r["sampler"] == sampler]
        assert len(hv) >= 12 and all(0 <= a <= b <= 1 for a, b in zip(hv, hv[1:]))  # never decreases
    summary = json.loads((tmp_path / "out" / "rediscover_summary.json").read_text())
    for run in summary["runs"].values():
        assert run["complete"] == 12 and set(run["presets"]) >= {"boolnet18_k4", "bireal18"}
        assert isinstance(run["boolnet_claim"]["found"], bool)
        for preset, by in run["dominated_presets"].items():
            mine = run["presets"][preset]
            assert all(any(m["number"] == n for m in run["front"]) for n in by)
            assert all(mine["energy_uJ"] >= m["energy_uJ"] and mine["accuracy"] <= m["accuracy"]
                       for m in run["front"] if m["number"] in by)
    for png in ("rediscover.png", "rediscover_front.png"):
        assert (tmp_path / "out" / png).stat().st_size > 10_000
    assert json.loads(out.stdout.strip().splitlines()[-1])["mean_final_hv"].keys() == {"tpe", "random"}
