"""boolnas-energy: clean JSON / tables on stdout, a chart for arch=all, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from boolnas.evaluators.energy.profile import PROFILE_DIR
from boolnas.space import PRESETS

REPO = Path(__file__).resolve().parents[1]
KEYS = {
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
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "boolnas.search.cli.energy", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=env,
    )


def test_all_presets_as_json_and_chart(tmp_path: Path) -> None:
    chart = tmp_path / "out" / "chart.html"
    out = run("arch=all", "format=json", f"chart={chart}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)  # stdout is exactly one JSON document
    assert [r["arch"] for r in rows] == list(PRESETS)
    for r in rows:
        assert set(r) == KEYS
        assert r["total_uJ"] == r["compute_uJ"] + r["sram_uJ"] + r["dram_uJ"]
        assert r["ops"] == r["flops"] + r["bops"] / 64
        assert (
            abs(sum(layer["total_uJ"] for layer in r["layers"]) - r["total_uJ"])
            < 1e-6 * r["total_uJ"]
        )
    assert chart.is_file() and "plotly" in chart.read_text()[:100_000]
    assert str(chart) in out.stderr
    # nothing else is written: no Hydra outputs/ or .hydra in the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_one_preset_table_and_another_profile(tmp_path: Path) -> None:
    out = run("arch=boolnet18_k4", "energy=horowitz45nm", "task=cifar10", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "profile horowitz45nm" in out.stdout and "stage4.block1.conv2" in out.stdout
    assert "total" in out.stdout and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_table_shows_the_shortcut_traffic_per_layer(tmp_path: Path) -> None:
    """xnornet18: each join's residual read on chip and from DRAM, in columns of its own; the
    per-block joins take their input from the delay line, the projection's join from DRAM."""
    out = run("arch=xnornet18", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split()[-4:] == ["shortcut", "SRAM", "shortcut", "DRAM"]
    cells = {ln.split()[0]: ln.split()[-2:] for ln in lines if ln.startswith("stage")}
    assert cells["stage1.block0.conv2"] == [f"{64 * 56 * 56 * 32:,}", "0"]
    assert cells["stage1.block0.conv1"] == ["0", "0"]
    assert cells["stage2.block0.conv2"] == [f"{128 * 28 * 28 * 32:,}", f"{128 * 28 * 28 * 32 - 192 * 8192:,}"]


def test_arch_file_and_profile_file(tmp_path: Path) -> None:
    arch = tmp_path / "mine.yaml"
    arch.write_text("genotype:\n  shortcut: binary\n  slices: 2\naccuracy: 0.5\n")
    profile = yaml.safe_load((PROFILE_DIR / "boolnet65nm.yaml").read_text())
    profile["name"] = "mychip"
    profile["sram"]["fm_buffer_kib"] = 1024
    chip = tmp_path / "mychip.yaml"
    chip.write_text(yaml.safe_dump(profile))
    out = run(f"arch={arch}", f"energy_file={chip}", "format=json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["arch"] == "mine" and set(row) == KEYS


def test_bad_input_fails_cleanly(tmp_path: Path) -> None:
    bad_arch = tmp_path / "bad.yaml"
    bad_arch.write_text("slices: 3\n")
    cases = [
        (["arch=resnet50"], "unknown preset 'resnet50'"),
        ([f"arch={bad_arch}"], "'slices'"),
        (["arch=bireal18", "format=xml"], "format=table or format=json"),
        (["arch=bireal18", "energy.sram.fm_buffer_kib=-1"], "'sram.fm_buffer_kib'"),
        (["arch=bireal18", "~energy.dram.access_pj"], "'dram.access_pj' is missing"),
        (["arch=bireal18", f"energy_file={tmp_path / 'absent.yaml'}"], "does not exist"),
    ]
    for args, message in cases:
        out = run(*args, cwd=tmp_path)
        assert out.returncode != 0, args
        assert message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and out.stdout == "", args
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
