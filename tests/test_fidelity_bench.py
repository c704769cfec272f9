"""benchmarks/fidelity.py: the smoke run writes its tables and plot and resumes from its cache; the
long-training recipe really is >= 10x the proxy; the rank statistics and the drawn genotypes."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import fidelity  # noqa: E402

ROW_COLUMNS = [
    "name", "is_preset", "genotype", "proxy_acc_s0", "proxy_acc_s1", "proxy_acc_mean", "long_test_acc",
    "long_val_acc", "long_time_s", "proxy_time_s", "zc_naswot", "zc_grad_norm", "zc_snip", "params", "ops_proxy",
    "params_target", "ops_target",
]
SUMMARY_COLUMNS = ["predictor", "target", "kendall_tau", "tau_ci_low", "tau_ci_high", "spearman_rho", "rho_ci_low",
                   "rho_ci_high", "n"]


def _run(out: Path, *extra: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "fidelity.py"), "--quick", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == rc, proc.stderr[-3000:]
    return proc


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_quick_run_writes_tables_plot_and_resumes_from_its_cache(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert "12 measurements, 0 cached, 12 to run" in first.stderr
    for name in ("fidelity.csv", "fidelity_summary.csv", "fidelity.png", fidelity.RUNS_FILE):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "fidelity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = _read(tmp_path / "fidelity.csv")
    assert len(rows) == 3 and list(rows[0]) == ROW_COLUMNS
    assert [r["is_preset"] for r in rows] == ["True", "True", "False"]
    for r in rows:
        json.loads(r["genotype"])
        assert 0 <= float(r["long_test_acc"]) <= 1 and 0 <= float(r["proxy_acc_mean"]) <= 1

    summary = _read(tmp_path / "fidelity_summary.csv")
    assert list(summary[0]) == SUMMARY_COLUMNS
    assert summary[0]["predictor"] == "proxy_acc_mean" and summary[0]["target"] == "long_test_acc"
    assert summary[-1]["target"] == "proxy_acc_s1"  # seed-to-seed agreement
    taus = [float(s[k]) for s in summary for k in ("kendall_tau", "spearman_rho")]
    assert all(-1 <= t <= 1 for t in taus if not math.isnan(t))
    assert not math.isnan(float(summary[0]["kendall_tau"]))

    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "fidelity" and result["n_archs"] == 3 and result["measured"] == 12
    assert "Kendall tau" in first.stdout and "tau >= 0.6" in first.stdout

    second = _run(tmp_path)  # everything cached: no training at all
    assert "12 cached, 0 to run" in second.stderr and "trained 0 measurement(s)" in second.stderr
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert again["cached"] == 12 and again["measured"] == 0 and again["proxy_tau"] == result["proxy_tau"]
    assert _read(tmp_path / "fidelity.csv") == rows  # the same table, rebuilt from the cache


def test_long_recipe_is_at_least_ten_times_the_proxy() -> None:
    proxy = fidelity.load_budget(fidelity.CONF / "budget" / "proxy.yaml")
    long = fidelity.long_budget(proxy, fidelity.load_budget(fidelity.CONF / "budget" / "full.yaml"), 2)
    assert (long.resolution, long.width_mult) == (proxy.resolution, proxy.width_mult)
    assert long.progressive and long.eval_test and long.train_subset is None
    assert fidelity._images(long) / fidelity._images(proxy) >= 10


def test_rank_agreement() -> None:
    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    up = fidelity.rank_agreement(x, [1, 2, 3, 4, 5, 6], resamples=200)
    assert up["kendall_tau"] == pytest.approx(1) and up["tau_ci_low"] == pytest.approx(1) and up["n"] == 6
    down = fidelity.rank_agreement(x, [6, 5, 4, 3, 2, float("nan")], resamples=200)
    assert down["kendall_tau"] == pytest.approx(-1) and down["n"] == 5  # the NaN pair is dropped
    assert down["spearman_rho"] == pytest.approx(-1)
    assert math.isnan(fidelity.rank_agreement([1, 2], [1, 2])["kendall_tau"])  # too few


def test_sampled_genotypes_are_distinct_seeded_and_not_presets() -> None:
    a = fidelity.architectures(list(fidelity.PRESETS), 9, 0, fidelity.CONF / "space" / "boolnet.yaml")
    b = fidelity.architectures(list(fidelity.PRESETS), 9, 0, fidelity.CONF / "space" / "boolnet.yaml")
    assert len(a) == 16 and len({x.key for x in a}) == 16
    assert [x.key for x in a] == [x.key for x in b]
    assert [x.name for x in a[:7]] == list(fidelity.PRESETS) and not any(x.is_preset for x in a[7:])


def test_proxy_variants_add_a_cost_vs_fidelity_table_and_plot(tmp_path: Path) -> None:
    """Each --variant is measured per architecture and seed beside the default proxy, shares the
    long runs, and gets a row of fidelity_cost.csv with its compute relative to the default."""
    proxy, _ = fidelity.quick_setup()
    half = proxy.batch_size  # one batch instead of the quick proxy's two: half the compute
    spec = f"train_subset={half}"
    done = _run(tmp_path, "--variant", spec)
    assert "18 measurements, 0 cached, 18 to run" in done.stderr  # 12 + 3 archs x 2 seeds
    rows = _read(tmp_path / "fidelity_cost.csv")
    assert [r["variant"] for r in rows] == ["default", spec]
    assert float(rows[0]["compute"]) == 1.0 and math.isclose(float(rows[1]["compute"]), 0.5)
    assert [int(r["images_per_run"]) for r in rows] == [2 * half, half]
    assert all(int(r["runs"]) == 6 for r in rows)
    assert (tmp_path / "fidelity_cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["variants"]) == {"default", spec}
    # The default's own budget as a variant is not measured again: it shares the default's runs.
    same = _run(tmp_path, "--variant", spec, "--variant", f"train_subset={2 * half}")
    assert "18 measurements, 18 cached, 0 to run" in same.stderr
    again = _read(tmp_path / "fidelity_cost.csv")
    assert again[2]["kendall_tau"] == again[0]["kendall_tau"] and again[2]["compute"] == "1"
    entries = [json.loads(line) for line in (tmp_path / fidelity.RUNS_FILE).read_text().splitlines()]
    assert sum(e["kind"] == f"proxy:{spec}" for e in entries) == 6 and sum(e["kind"] == "long" for e in entries) == 3


@pytest.mark.parametrize("spec", ["train_subset", "no_such_key=3", "batch_size=-4"])
def test_bad_proxy_variant_exits_2_before_training(tmp_path: Path, spec: str) -> None:
    proc = _run(tmp_path, "--variant", spec, rc=2)
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / fidelity.RUNS_FILE).exists()
