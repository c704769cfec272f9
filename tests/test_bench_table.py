"""boolnas-bench: the campaign's smoke run (table, energies, resume from its cache) and the replay
harness on a small table (no training, deterministic, refuses an incomplete table)."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from boolnas.evaluators.energy import estimate, load_profile
from boolnas.space import IMAGENET, make_plan
from boolnas.space.sampling import enumerate_space

REPO = Path(__file__).resolve().parents[1]
BENCH_SPACE = REPO / "conf" / "space" / "bench.yaml"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _bench(out: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_table.py"), "--quick", "--limit", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_subspace_enumerates_the_product_choices() -> None:
    genotypes = enumerate_space(yaml.safe_load(BENCH_SPACE.read_text()))
    assert len(genotypes) == len({g.key() for g in genotypes}) == 108  # 3 shortcut designs x 3 x 3 x 2 x 2
    assert {(g.shortcut[0], g.placement[0]) for g in genotypes} == {
        ("binary", "per_block"), ("fp32", "per_conv"), ("fp32", "per_block")}
    assert {g.slices[0] for g in genotypes} == {1, 2, 4}


def test_quick_campaign_writes_the_table_and_resumes(tmp_path: Path) -> None:
    first = _bench(tmp_path)
    assert "3 architectures, 15 measurements, 0 cached or skipped, 15 to run" in first.stderr
    rows = _read(tmp_path / "table.csv")
    assert [r["is_preset"] for r in rows] == ["False", "False", "True"]
    for r in rows:
        for col in ("acc_f0.25_s0", "acc_f1_s0", "acc_f1_s1", "acc_f4_s0"):
            assert 0 <= float(r[col]) <= 1, col
        # more training images, more steps; the loss sum covers every step
        assert int(r["steps_f0.25_s0"]) < int(r["steps_f1_s0"]) < int(r["steps_f4_s0"])
        assert float(r["loss_sum_f4_s0"]) > float(r["loss_sum_f1_s0"]) > 0
        assert float(r["energy_uJ"]) > 0 and float(r["energy_uJ_horowitz45nm"]) > 0
        assert abs(float(r["energy_compute_uJ"]) + float(r["energy_sram_uJ"]) + float(r["energy_dram_uJ"])
                   - float(r["energy_uJ"])) < 1e-4 * float(r["energy_uJ"])  # 6 significant digits in the CSV
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["threads"] == 1 and meta["complete_genotypes"] == 2 and meta["reference_fidelity"] == "f4"
    again = _bench(tmp_path)  # a rerun (or a resumed kill) trains nothing that is in the cache
    assert "15 cached or skipped, 0 to run" in again.stderr
    assert _read(tmp_path / "table.csv") == rows


def _table(path: Path, noise: float) -> None:
    """Every genotype of the bench subspace with made-up accuracies (the reference a function of
    the choices, the proxy the reference plus ``noise``) and the model's energy."""
    rng = random.Random(0)
    profile = load_profile("boolnet65nm")
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["name", "is_preset", "genotype", "acc_f0.25_s0", "acc_f1_s0", "acc_f4_s0",
                                           "steps_f0.25_s0", "steps_f1_s0", "steps_f4_s0", "energy_uJ"])
        w.writeheader()
        for g in enumerate_space(yaml.safe_load(BENCH_SPACE.read_text())):
            truth = 0.6 + 0.05 * g.slices[0] + 0.03 * g.feature_reuse[0] + rng.uniform(0, 0.02)
            w.writerow({"name": g.key(), "is_preset": False, "genotype": json.dumps(g.to_dict()),
                        "acc_f0.25_s0": truth - 0.1 + rng.gauss(0, 2 * noise), "acc_f1_s0": truth + rng.gauss(0, noise),
                        "acc_f4_s0": truth, "steps_f0.25_s0": 64, "steps_f1_s0": 256, "steps_f4_s0": 1024,
                        "energy_uJ": estimate(make_plan(g, IMAGENET), profile).total_uJ})


def _replay(table: Path, out: Path, *extra: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "replay.py"), "--table", str(table), "--out",
                           str(out), "--jobs", "1", *extra], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == rc, proc.stderr[-3000:]
    return proc


def test_replay_on_a_small_table_is_exact_and_reproducible(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    _table(table, noise=0.0)  # the search sees the reference: its reported front only improves
    args = ("--samplers", "tpe", "random", "--seeds", "3", "--evals", "40")
    _replay(table, tmp_path / "a", *args)
    summary = json.loads((tmp_path / "a" / "replay.json").read_text())
    assert summary["genotypes"] == 108 and set(summary["samplers"]) == {"tpe", "random"}
    assert 0 < summary["exact_hv"] < 1
    assert 0 <= summary["samplers"]["tpe"]["wilcoxon_vs_random_final"] <= 1
    curves = _read(tmp_path / "a" / "replay.csv")
    for sampler in ("tpe", "random"):
        med = [float(r["median_regret"]) for r in curves if r["sampler"] == sampler]
        assert len(med) == 40 and all(0 <= m <= summary["exact_hv"] for m in med)
        assert all(b <= a + 1e-12 for a, b in zip(med, med[1:], strict=False))
    assert (tmp_path / "a" / "replay.png").read_bytes()[:4] == b"\x89PNG"
    # the same table and arguments give the same curves: the summary is reproducible from the CSV alone
    _replay(table, tmp_path / "b", *args)
    assert (tmp_path / "b" / "replay.csv").read_text() == (tmp_path / "a" / "replay.csv").read_text()


def test_replay_refuses_an_incomplete_table(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    _table(table, noise=0.01)
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:-5]) + "\n")
    proc = _replay(table, tmp_path / "out", "--seeds", "1", "--evals", "5", rc=2)
    assert "lacks 5 genotype(s)" in proc.stderr and "Traceback" not in proc.stderr


def test_replay_of_the_multi_fidelity_scheduler_counts_each_rungs_compute(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    _table(table, noise=0.01)
    _replay(table, tmp_path, "--samplers", "random", "--asha", "random", "--seeds", "3", "--evals", "30")
    summary = json.loads((tmp_path / "replay.json").read_text())
    asha = summary["samplers"]["random+asha"]
    assert asha["seeds"] == 3 and "compute_to_random_final" in asha
    reach = asha["compute_to_random_final"]
    assert reach["random_compute_median"] > 0 and reach["target_regret"] >= 0
    # rung costs are the table's f0.25 / f1 / f4 steps: 64, 256, 1024 per new training
    curves = [r for r in _read(tmp_path / "replay.csv") if r["sampler"] == "random+asha"]
    steps = [float(r["median_steps"]) for r in curves]
    assert steps[0] == 64 and all(b >= a for a, b in zip(steps, steps[1:], strict=False))
    assert steps[-1] < 30 * 256  # 30 trials, most of them at the cheap rung


def test_replay_of_energy_aware_proposals(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    _table(table, noise=0.01)
    _replay(table, tmp_path, "--samplers", "random", "--ehvi", "random", "--asha-ehvi", "random", "--seeds", "2",
            "--evals", "25")
    summary = json.loads((tmp_path / "replay.json").read_text())
    assert set(summary["samplers"]) == {"random", "random+ehvi", "random+asha+ehvi"}
    curves = [r for r in _read(tmp_path / "replay.csv") if r["sampler"] == "random+ehvi"]
    med = [float(r["median_regret"]) for r in curves]
    assert len(med) == 25 and all(0 <= m <= summary["exact_hv"] for m in med)


def test_replay_with_two_rungs_promoted_by_the_training_loss_sum(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    _table(table, noise=0.01)
    rows = _read(table)
    rng = random.Random(1)
    for r in rows:  # loss sums that order the genotypes unlike the f0.25 accuracies
        for f, steps in (("f0.25", 64), ("f1", 256), ("f4", 1024)):
            r[f"loss_sum_{f}_s0"] = steps * (2.5 - 2 * float(r["acc_f4_s0"])) + rng.gauss(0, 1)
    with table.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    sys.path.insert(0, str(REPO / "benchmarks"))
    import replay

    from boolnas.search.objective import training_loss_sum

    entries = replay.load_table(table, "f1")
    lookup = replay.TableLookup(entries, "f1", by_budget=True)
    row = rows[3]
    key = json.loads(row["genotype"])
    genotype = next(g for g in enumerate_space(yaml.safe_load(BENCH_SPACE.read_text())) if g.to_dict() == key)

    class Budget:
        train_subset = 2048  # the f0.25 rung

    _, result = lookup(genotype, None, Budget())
    # the search records the table's loss sum of that rung, as it would a real training's
    assert training_loss_sum(result.history) == pytest.approx(float(row["loss_sum_f0.25_s0"]))
    assert result.steps == 64

    _replay(table, tmp_path / "out", "--samplers", "random", "--asha", "random", "--set", "scheduler.rungs=[0.25,1]",
            "scheduler.rank_by=loss_sum", "--seeds", "2", "--evals", "20")
    summary = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert set(summary["samplers"]) == {"random", "random+asha(loss)"}
    curves = [r for r in _read(tmp_path / "out" / "replay.csv") if r["sampler"] == "random+asha(loss)"]
    steps = [float(r["median_steps"]) for r in curves]
    assert max(b - a for a, b in zip(steps, steps[1:], strict=False)) <= 256  # two rungs: nothing at f4
