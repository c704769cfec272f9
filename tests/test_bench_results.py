"""The committed boolnas-bench results are reproducible from the table alone, and the docs say
what the files say.

The replay and the front read only ``benchmarks/results/bench/table.csv`` and train nothing, so
they are rerun here and compared with the committed summaries; the tables of the bench section
(docs/results.md) and of the multi-fidelity section (docs/search.md) are parsed and checked cell by
cell against the files they quote.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "results" / "bench"
RUN_DEPENDENT = {"wall_s", "seconds_total", "table", "jobs"}  # machine and invocation, not results


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return value


def _run(script: str, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _section(page: str, title: str) -> str:
    """The text of the docs page ``page`` from the heading ``title`` to the next heading of the same or a higher
    level."""
    text = (REPO / "docs" / page).read_text()
    start = text.index(title)
    level = title.split(" ")[0]
    nxt = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(title):], flags=re.M)
    return text[start: start + len(title) + (nxt.start() if nxt else len(text))]


def _rows(section: str, header_start: str) -> list[list[str]]:
    """The body rows of the markdown table whose header starts with ``header_start``, as cells."""
    lines = section.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    assert rows, f"no rows under {header_start!r}"
    return rows


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", cell.replace(",", ""))]


@pytest.mark.slow
def test_the_committed_replay_is_reproduced_from_the_table_alone(tmp_path: Path) -> None:
    _run("replay.py", "--out", str(tmp_path), "--jobs", "2")
    fresh = json.loads((tmp_path / "replay.json").read_text())
    committed = json.loads((BENCH / "replay.json").read_text())
    assert _without(fresh, RUN_DEPENDENT) == _without(committed, RUN_DEPENDENT)
    assert (tmp_path / "replay.csv").read_text() == (BENCH / "replay.csv").read_text()


def test_the_committed_front_is_reproduced_from_the_table_alone(tmp_path: Path) -> None:
    _run("bench_front.py", "--out", str(tmp_path))
    fresh = json.loads((tmp_path / "front.json").read_text())
    committed = json.loads((BENCH / "front.json").read_text())
    assert _without(fresh, RUN_DEPENDENT) == _without(committed, RUN_DEPENDENT)
    assert len(committed["front"]) >= 3 and len(committed["presets"]) == 7


def test_the_readme_bench_tables_match_the_files() -> None:
    section = _section("results.md", "## boolnas-bench")
    for image in re.findall(r"\]\(\.\./(benchmarks/results/bench/[^)]+)\)", section):
        assert (REPO / image).is_file(), image

    front = json.loads((BENCH / "front.json").read_text())
    presets = {p["preset"]: p for p in front["presets"]}
    rows = _rows(section, "| preset |")
    assert {r[0] for r in rows} == set(presets)
    for r in rows:
        p = presets[r[0]]
        assert r[3] == f"`{p['cheapest_as_accurate']}`", r
        assert _numbers(r[1])[0] == round(p["accuracy"], 4) and _numbers(r[6])[0] == round(p["energy_ratio"], 2), r

    with (BENCH / "fidelity.csv").open() as fh:
        fidelity = {(r["predictor"], r["target"]): r for r in csv.DictReader(fh)}
    rows = _rows(section, "| predictor |")
    assert len(rows) == len(fidelity)
    for r in rows:
        names = re.findall(r"`([^`]+)`", r[0])
        f = fidelity[(names[0], names[1] if len(names) > 1 else "acc_f4_s0")]
        tau, low, high = _numbers(r[2])[:3]
        assert (tau, low, high) == tuple(round(float(f[k]), 2) for k in ("kendall_tau", "tau_ci_low", "tau_ci_high")), r
        assert _numbers(r[3])[0] == round(float(f["spearman_rho"]), 2), r

    replay = json.loads((BENCH / "replay.json").read_text())["samplers"]
    gp = json.loads((BENCH / "replay_gp.json").read_text())["samplers"]
    rows = _rows(section, "| sampler |")
    assert [r[0] for r in rows] == [*replay, "gp"]
    for r in rows:
        s = replay.get(r[0]) or gp[r[0]]
        shown = _numbers(r[1])
        final = s["regret_final"]
        expected = [s["regret_at_evals"][m]["median"] for m in ("20", "50")]
        expected += [final[k] for k in ("median", "q1", "q3")]
        assert shown == [round(x, 4) for x in expected], r
        assert _numbers(r[2])[0] == s["evals"] and _numbers(r[3])[0] == s["distinct_median"], r


def test_the_readme_multi_fidelity_table_matches_the_replay() -> None:
    section = _section("search.md", "## Multi-fidelity search")
    summary = json.loads((BENCH / "replay_mf.json").read_text())["samplers"]
    rows = _rows(section, "| strategy |")
    assert {r[0] for r in rows} == set(summary) - {"random"}
    for r in rows:
        s = summary[r[0]]
        assert _numbers(r[1])[0] == s["evals"] and _numbers(r[2])[0] == round(s["regret_final"]["median"], 4), r
        reach = s["compute_to_random_final"]
        assert r[3] == reach["reached"], r
        if "ratio_to_random" in reach:
            assert _numbers(r[4])[0] == round(reach["ratio_to_random"], 2), r
        else:
            assert r[4] == "", r
