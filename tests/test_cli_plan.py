"""boolnas-plan: clean JSON on stdout, clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from boolnas.space import PRESETS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "boolnas.search.cli.plan", *args], capture_output=True,
                          text=True, timeout=120)


def test_all_presets_as_json() -> None:
    out = run("arch=all", "format=json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["arch"] for r in rows] == list(PRESETS)
    assert all(r["ops"] == r["flops"] + r["bops"] / 64 for r in rows)


def test_arch_yaml_file_and_small_task(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("genotype:\n  slices: 2\n  shortcut: binary\naccuracy: 0.9\n")
    out = run(f"arch={path}", "task=fashion_mnist", "format=json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["arch"] == "mine" and row["genotype"]["slices"] == 2


def test_unknown_preset_fails_cleanly() -> None:
    out = run("arch=resnet50")
    assert out.returncode == 2
    assert "unknown preset 'resnet50'" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_malformed_arch_yaml_names_the_field(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("slices: 5\n")
    out = run(f"arch={path}")
    assert out.returncode == 2
    assert "'slices'" in out.stderr and "Traceback" not in out.stderr
