"""The reports: what report.html shows (checked in headless Chromium), the front over every
objective, the combined report of several studies (boolnas-report study=a,b)."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from boolnas.search.conf_dir import CONF_DIR
from boolnas.search.config import SearchConfig
from boolnas.search.loop import run_search
from boolnas.search.objectives import columns, directions
from boolnas.search.pareto import knee_of
from boolnas.search.report import feasible_mask, over_budget_mask, study_results
from boolnas.search.report_figures import (
    label_size,
    layers_figure,
    log_ticks,
    parcoords_figure,
    pareto_figure,
    place_labels,
    to_pixels,
)

FAST = ["data=synthetic", "data.num_train=256", "data.val_size=64", "data.num_test=64", "budget=tiny",
        "budget.train_subset=64", "budget.val_subset=64", "budget.batch_size=32", "budget.resolution=8",
        "budget.bn_recalibration=1", "budget.num_threads=1", "zero_cost=false", "progress=false"]
LIMIT = 1000.0  # xnornet18, bireal18, reactnet18 and boolnet18_k4_star are over it: never trained
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def search(root: Path, *overrides: str) -> None:
    """A real search (real training, the search loop of boolnas-search), run in this process."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("search", overrides=[*FAST, f"results_dir={root}", *overrides])
    run_search(SearchConfig.from_cfg(OmegaConf.to_container(cfg, resolve=True)))


def report_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "boolnas.search.cli.report", f"results_dir={root}", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small real studies: 'two' (accuracy, energy; an energy limit), 'other' (the same
    objectives, random sampler, another limit) and 'three' (accuracy, energy, ops)."""
    root = tmp_path_factory.mktemp("reports")
    search(root, "study=two", "n_trials=9", f"constraints.max_energy_uJ={LIMIT}")
    search(root, "study=other", "n_trials=4", "sampler=random", "seed_presets=false",
           "constraints.max_energy_uJ=1500.0")
    search(root, "study=three", "n_trials=9", "objectives=[accuracy,energy_uJ,ops]")
    return root


def load(root: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / name / 'study.db'}")


# ------------------------------------------------------------------------- the figures
def test_untrained_trials_are_off_the_main_plot_and_limit_and_knee_are_marked(root: Path) -> None:
    r = study_results(load(root, "two"))
    fig = pareto_figure(r)
    infeasible = set(r.df.loc[over_budget_mask(r.df), "energy_uJ"].round(6))
    main = [t for t in fig.data if t.yaxis in (None, "y")]
    assert main and all(not infeasible & {round(x, 6) for x in t.x} for t in main)
    strip = [t for t in fig.data if t.yaxis == "y2"]
    assert len(strip) == 1 and {round(x, 6) for x in strip[0].x} == infeasible
    assert all(y >= 0.9 * min(r.df.loc[feasible_mask(r.df), "accuracy"]) for t in main for y in t.y)
    knee = [t for t in fig.data if t.name == f"knee (trial {r.knee})"]
    assert len(knee) == 1 and knee[0].x[0] == r.df.set_index("number").at[r.knee, "energy_uJ"]
    limits = [s for s in fig.layout.shapes if s.x0 == s.x1 == LIMIT]
    assert len(limits) == 1 and limits[0].yref == "paper"


def test_energy_axis_has_readable_ticks(root: Path) -> None:
    fig = pareto_figure(study_results(load(root, "two")))
    axis = fig.layout.xaxis
    assert axis.type == "log" and axis.tickvals and len(axis.tickvals) == len(axis.ticktext) >= 3
    lo, hi = 10 ** axis.range[0], 10 ** axis.range[1]
    for v, text in zip(axis.tickvals, axis.ticktext):
        assert lo <= v <= hi
        assert float(text.replace(",", "")) == v  # the label is the value itself, not a minor digit
        assert v / 10 ** math.floor(math.log10(v)) in (1, 2, 5)
    assert log_ticks(200, 4000) == ([200, 500, 1000, 2000], ["200", "500", "1,000", "2,000"])
    vals, _ = log_ticks(0.5, 2e6)  # a wide range: powers of ten only
    assert vals == [1, 10, 100, 1000, 1e4, 1e5, 1e6]
    vals, text = log_ticks(212, 240)  # narrower than one 1-2-3 step: values inside it
    assert len(vals) >= 2 and all(212 <= v <= 240 for v in vals) and all(t == f"{v:.3g}" for v, t in zip(vals, text))


def test_layers_are_stacked_compute_sram_dram_per_stage(root: Path) -> None:
    r = study_results(load(root, "two"))
    fig = layers_figure(r)
    assert [t.name for t in fig.data] == ["compute", "SRAM", "DRAM"] and fig.layout.barmode == "stack"
    assert fig.layout.showlegend is not False and len({t.marker.color for t in fig.data}) == 3
    members, stages = fig.data[0].x
    assert set(stages) <= {"stem", "stage1", "stage2", "stage3", "stage4", "head"} and "stage4" in stages
    totals: dict[str, float] = {}
    for t in fig.data:
        for member, y in zip(t.x[0], t.y):
            totals[member] = totals.get(member, 0.0) + y
    front = r.df[r.df["is_pareto"]]
    assert len(totals) == len(front)
    for number, energy in zip(front["number"], front["energy_uJ"]):
        member = next(m for m in totals if m.split()[0] == f"#{number}")
        assert totals[member] == pytest.approx(energy, rel=1e-3)  # the stages add up to the trial's energy


def test_three_objectives_front_knee_and_views(root: Path) -> None:
    study = load(root, "three")
    r = study_results(study)
    assert r.objectives == ("accuracy", "energy_uJ", "ops")
    front = r.df[r.df["is_pareto"]]
    mine = {tuple(float(v) for v in row) for row in front[columns(r.objectives)].values}
    optunas = {tuple(float(v) for v in t.values) for t in study.best_trials}
    assert mine == optunas  # the same front; Optuna also lists duplicates of reused trials
    assert len(front) == len(mine)
    rows = front[columns(r.objectives)].astype(float).values.tolist()
    assert r.knee == int(front.iloc[knee_of(rows, directions(r.objectives))]["number"])
    assert r.hv_label == "accuracy-energy hypervolume (2-D projection of the 3-objective front)"
    fig = pareto_figure(r)
    shown = [t for t in fig.data if t.name == "front over all 3 objectives"]
    assert len(shown) == 1 and shown[0].mode == "markers"  # no staircase: members may look dominated in 2-D
    labels = [d.label for d in parcoords_figure(r).data[0].dimensions]
    assert {"accuracy (maximize)", "energy_uJ (log, minimize)", "ops (minimize)", "slices", "shortcut"} <= set(labels)
    page = (root / "three" / "report.html").read_text()
    assert "2-D projection of the 3-objective front" in page and "ops (minimize)" in page


# ------------------------------------------------------------------------- chromium
def dump_dom(page: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]


def run_in_page(report: Path, tmp_path: Path, script: str) -> object:
    """Load a copy of ``report`` in Chromium, run ``script`` (a function body returning a JSON-able
    value) once the figures are drawn, and return its value, read back from the dumped DOM."""
    page = tmp_path / f"probe_{report.parent.name}.html"
    probe = (f"<script>window.addEventListener('load', function () {{ setTimeout(function () {{"
             f"var out = (function () {{ {script} }})();"
             f"var pre = document.createElement('pre'); pre.id = 'probe-result'; pre.textContent = JSON.stringify(out);"
             f"document.body.appendChild(pre); }}, 500); }});</script></body>")
    page.write_text(report.read_text().replace("</body>", probe))
    out = dump_dom(page, tmp_path)
    assert out.returncode == 0 and not console_errors(out.stderr), console_errors(out.stderr) or out.stderr[-2000:]
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', out.stdout, re.S)
    assert found, "the probe script did not run"
    return json.loads(html.unescape(found.group(1)))


@needs_chromium
def test_report_renders_in_headless_chromium(root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"  # control: the check does see a JavaScript error
    broken.write_text("<html><body><script>undefined_function_xyz();</script></body></html>")
    assert console_errors(dump_dom(broken, tmp_path).stderr)
    doms = {}
    for page in ("report.html", "pareto.html"):
        text = (root / "two" / page).read_text()
        assert text.count("plotly.js v") == 1, page  # plotly.js inlined once
        assert not re.search(r"<script[^>]+src=", text), page  # nothing fetched: works offline
        out = dump_dom(root / "two" / page, tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        assert not console_errors(out.stderr), console_errors(out.stderr)
        assert 'class="main-svg"' in out.stdout and "scatterlayer" in out.stdout, page
        doms[page] = out.stdout
    dom = doms["report.html"]
    assert dom.count('class="main-svg"') >= 4  # front, hypervolume, per-stage bars, parallel coordinates
    assert "Pareto front" in dom and "boolnet18_k4" in dom


@needs_chromium
def test_report_shows_setup_summary_and_new_elements(root: Path, tmp_path: Path) -> None:
    r = study_results(load(root, "two"))
    dom = dump_dom(root / "two" / "report.html", tmp_path).stdout
    assert "boolnas study two: synthetic data, tiny budget, boolnet65nm profile" in dom  # the title says it
    summary = dict(re.findall(r'<tr data-field="([^"]+)"><th>[^<]*</th><td>([^<]*)</td>', dom))
    assert list(summary) == ["Data (proxy)", "Budget (proxy training)", "Task (energy target)", "Energy profile",
                             "Sampler(s)", "Objectives", "Constraints", "Trials", "Pareto front", "Knee",
                             "Hypervolume"]
    assert summary["Data (proxy)"].startswith("synthetic: train 256, val 64, test 64")
    assert summary["Budget (proxy training)"].startswith("tiny: 1 epoch")
    assert summary["Task (energy target)"].startswith("3x224x224 input, 1000 classes")
    assert summary["Energy profile"].startswith("boolnet65nm")
    assert summary["Sampler(s)"].startswith("tpe")
    assert summary["Objectives"] == "accuracy (maximize), energy_uJ (minimize)"
    assert summary["Constraints"].startswith("energy &lt;= 1,000 uJ")
    over = int(over_budget_mask(r.df).sum())
    assert over >= 4  # four presets are over the limit
    assert re.fullmatch(rf"9 complete \(\d trained, .*{over} over the energy budget, not trained\), 0 failed, "
                        r"0 pruned, 0 running, 0 waiting", summary["Trials"]), summary["Trials"]
    assert summary["Knee"].startswith(f"trial {r.knee}")
    assert summary["Hypervolume"].split(":")[0] == f"{r.history()[-1][1]:.4f}"
    assert '{"COMPLETE"' not in dom and "{&quot;COMPLETE" not in dom  # no raw JSON any more
    # the front figure: knee, energy limit, the strip of untrained trials
    assert f"knee (trial {r.knee})" in dom and "energy limit 1,000 uJ" in dom
    assert "over energy budget (not trained)" in dom
    # stacked compute / SRAM / DRAM bars with a legend; parallel coordinates
    layers = dom[dom.index('id="layers"'):dom.index('id="parcoords"')]
    assert sorted(re.findall(r'class="legendtext"[^>]*>([^<]+)<', layers)) == ["DRAM", "SRAM", "compute"]
    parcoords = dom[dom.index('id="parcoords"'):dom.index('id="trials"')]
    assert "parcoords" in parcoords and ">accuracy (maximize)<" in parcoords and ">slices<" in parcoords
    # the trials table: sortable headers, a feasibility column
    head = re.search(r'<table class="sortable" id="trials"><thead><tr>(.*?)</tr>', dom).group(1)
    assert "feasibility" in re.findall(r'data-col="([^"]+)"', head)
    assert dom.count("<td>over budget (not trained)</td>") == over
    assert dom.count("<td>feasible</td>") == int(feasible_mask(r.df).sum())


@needs_chromium
def test_clicking_a_header_sorts_the_trials_table(root: Path, tmp_path: Path) -> None:
    script = """
      function column(name) {
        var heads = Array.prototype.slice.call(document.querySelectorAll('#trials th'));
        var i = heads.findIndex(function (h) { return h.dataset.col === name; });
        return Array.prototype.map.call(document.querySelectorAll('#trials tbody tr'),
                                        function (tr) { return tr.cells[i].textContent; });
      }
      function click(name) { document.querySelector('#trials th[data-col="' + name + '"]').click(); }
      var out = {before: column('energy_uJ')};
      click('energy_uJ'); out.asc = column('energy_uJ'); out.asc_state = column('state');
      click('energy_uJ'); out.desc = column('energy_uJ');
      click('preset'); out.preset = column('preset');
      out.aria = document.querySelector('#trials th[data-col="preset"]').getAttribute('aria-sort');
      return out;
    """
    out = run_in_page(root / "two" / "report.html", tmp_path, script)
    energy = [float(v.replace(",", "")) for v in out["asc"]]
    assert energy == sorted(energy) and energy != [float(v) for v in out["before"]]  # the click changed the order
    assert [float(v) for v in out["desc"]] == sorted(energy, reverse=True)
    named = [p for p in out["preset"] if p]
    assert named == sorted(named) and out["preset"][len(named):] == [""] * (len(out["preset"]) - len(named))
    assert out["aria"] == "ascending"


def boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def test_crowded_labels_are_placed_apart() -> None:
    """Seven labels on nearly the same spot (as when untrained presets all score chance accuracy)
    and markers around them: no two label boxes overlap, none covers a marker or leaves the area."""
    names = ["xnornet18", "bireal18", "reactnet18", "basenet18_k1", "basenet18_k4", "boolnet18_k4",
             "boolnet18_k4_star"]
    anchors = [(400 + 6 * (i % 3), 300 + 2 * i, n) for i, n in enumerate(names)]
    markers = [(x, y) for x, y, _ in anchors] + [(380, 280), (440, 330)]
    area = (80.0, 60.0, 800.0, 560.0)
    boxes = []
    for (x, y, text), (dx, dy) in zip(anchors, place_labels(anchors, markers, area)):
        w, h = label_size(text)
        boxes.append((x + dx - w / 2, y + dy - h / 2, x + dx + w / 2, y + dy + h / 2))
    for i, a in enumerate(boxes):
        assert area[0] <= a[0] and a[2] <= area[2] and area[1] <= a[1] and a[3] <= area[3]
        assert not any(boxes_overlap(a, b) for b in boxes[i + 1:]), boxes
        assert not any(boxes_overlap(a, (mx - 5, my - 5, mx + 5, my + 5)) for mx, my in markers)


@needs_chromium
def test_labels_are_drawn_where_placed_and_do_not_overlap(root: Path, tmp_path: Path) -> None:
    """In Chromium: the rendered labels do not overlap, each sits where place_labels put it
    relative to its point, and is no larger than label_size's estimate (so the layout holds)."""
    script = """
      var gd = document.getElementById('pareto'), fl = gd._fullLayout;
      var svg = gd.querySelector('.main-svg').getBoundingClientRect();
      return Array.prototype.map.call(gd.querySelectorAll('g.annotation'), function (g) {
        var a = fl.annotations[+g.getAttribute('data-index')];
        var b = g.querySelector('.annotation-text-g').getBoundingClientRect();
        var out = {text: g.textContent, box: [b.left - svg.left, b.top - svg.top, b.right - svg.left,
                                              b.bottom - svg.top]};
        if (a.showarrow) {
          out.point = [a.x, a.y]; out.offset = [a.ax, a.ay];
          out.anchor = [fl.xaxis._offset + fl.xaxis.l2p(a.x), fl.yaxis._offset + fl.yaxis.l2p(a.y)];
        }
        return out;
      });
    """
    for name in ("two", "three"):
        labels = run_in_page(root / name / "report.html", tmp_path, script)
        r = study_results(load(root, name))
        fig = pareto_figure(r)
        trained_presets = {p for p in r.df.loc[feasible_mask(r.df), "preset"] if p}
        texts = " ".join(lab["text"] for lab in labels)
        assert trained_presets and all(p in texts for p in trained_presets), texts
        assert "knee" in texts
        for i, a in enumerate(labels):
            assert not any(boxes_overlap(a["box"], b["box"]) for b in labels[i + 1:]), (name, a, labels)
        for lab in (x for x in labels if "point" in x):
            assert to_pixels(fig, 10 ** lab["point"][0], lab["point"][1]) == pytest.approx(lab["anchor"], abs=1.5)
            x0, y0, x1, y1 = lab["box"]
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            assert centre == pytest.approx((lab["anchor"][0] + lab["offset"][0], lab["anchor"][1] + lab["offset"][1]),
                                           abs=2.0)
            w, h = label_size(lab["text"])
            assert x1 - x0 <= w and y1 - y0 <= h, (lab, w, h)


# ------------------------------------------------------------------------- the command line
def test_report_cli_regenerates_the_files(root: Path) -> None:
    (root / "two" / "trials.csv").unlink()
    out = report_cli(root, "study=two")
    assert out.returncode == 0, out.stderr
    assert (root / "two" / "trials.csv").is_file()
    assert out.stdout.strip() == str(root / "two" / "report.html")


@needs_chromium
def test_combined_report_overlays_the_studies(root: Path, tmp_path: Path) -> None:
    out = report_cli(root, "study=two,other")
    assert out.returncode == 0, out.stderr
    combined = root / "two+other" / "report.html"
    assert out.stdout.split() == [str(root / "two" / "report.html"), str(root / "other" / "report.html"),
                                  str(combined)]
    assert "constraints.max_energy_uJ: 1000.0 -> 1500.0" in out.stderr  # warned, not refused
    dom = dump_dom(combined, tmp_path).stdout
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', dom)
    assert {"two: front", "other: front", "two", "other"} <= set(legend), legend
    assert 'id="warnings"' in dom and "constraints.max_energy_uJ" in dom
    assert "energy limit 1,000 uJ (two)" in legend and "energy limit 1,500 uJ (other)" in legend
    assert '<a href="../two/report.html">two</a>' in dom


def test_combined_report_refuses_studies_with_different_objectives(root: Path) -> None:
    refused = report_cli(root, "study=two,three")
    assert refused.returncode == 2 and "different objectives" in refused.stderr
    assert not (root / "two+three").exists()
