"""The report pages: one self-contained HTML file each (plotly.js inlined once, no network).

A study's report.html opens with a short setup summary (data, budget, task, energy profile,
samplers, objectives, constraints, trials by state, front, knee, hypervolume), then the
figures of search/report_figures.py, a trials table sortable by clicking a header (a few lines
of inline JavaScript) and the full configuration. The combined report of several studies puts
their summaries side by side and overlays their fronts and hypervolume histories.
"""

from __future__ import annotations

import html
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from boolnas.search.objectives import columns, directions
from boolnas.search.report import GENOTYPE_FIELDS, StudyResults, feasible_mask, over_budget_mask
from boolnas.search.report_figures import (
    combined_pareto_figure,
    energy_text,
    hv_figure,
    layers_figure,
    parcoords_figure,
    pareto_figure,
    setup_tag,
)

STATES = (("COMPLETE", "complete"), ("FAIL", "failed"), ("PRUNED", "pruned"), ("RUNNING", "running"),
          ("WAITING", "waiting"))

STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222} h1{font-size:1.5em} h2{margin-top:1.6em}
table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 5px;text-align:left;white-space:nowrap}
table.summary th{background:#f3f5f7;vertical-align:top}
table.summary td{white-space:normal;min-width:16em;max-width:60em}
table.sortable th{cursor:pointer;background:#f3f5f7;position:sticky;top:0;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
tr.pareto{background:#fde2e2} tr.knee{background:#fdf0b8} tr.infeasible{color:#8a8f96}
p.caption{max-width:72em;font-size:13px;color:#444} pre{background:#f5f5f5;padding:1em;font-size:12px}
div.warning{border:2px solid #c77700;background:#fff4e0;padding:.6em 1em;max-width:72em}
div.warning pre{background:none;padding:0;margin:.3em 0}
"""

# Click a header to sort the table by that column (again: the other way). Numbers sort as numbers
# (a cell's data-sort holds the raw value), text as text, empty cells always last; ties keep order.
SORTER_JS = """
(function () {
  function key(cell) {
    var s = cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : cell.textContent.trim();
    if (s === '') return null;
    var n = Number(s);
    return isNaN(n) ? s.toLowerCase() : n;
  }
  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : (a > b ? 1 : 0);
    return typeof a === 'number' ? -1 : 1;
  }
  function sortBy(th) {
    var body = th.closest('table').tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.prototype.map.call(body.rows, function (tr, i) { return [key(tr.cells[col]), i, tr]; });
    rows.sort(function (a, b) {
      if (a[0] === null || b[0] === null) return ((a[0] === null) - (b[0] === null)) || a[1] - b[1];
      return (asc ? 1 : -1) * compare(a[0], b[0]) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
  }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.addEventListener('click', function () { sortBy(th); });
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sortBy(th); });
  });
  window.boolnasSortBy = sortBy;
})();
"""


# ------------------------------------------------------------------------------ pages
def study_page(r: StudyResults) -> str:
    """report.html of one study."""
    title = f"boolnas study {r.name}: {setup_tag(r.config)}"
    body = [f"<h1>{html.escape(title)}</h1>",
            _summary_table([r], "summary"),
            "<h2>Accuracy vs energy</h2>", _figure(pareto_figure(r), "pareto"), _caption(pareto_caption(r)),
            f"<h2>{html.escape(r.hv_label[0].upper() + r.hv_label[1:])}</h2>",
            _figure(hv_figure([(r.name, r.history())], r.ref_energy, r.hv_label), "hypervolume"),
            _caption(hv_caption([r], r.ref_energy)),
            "<h2>Energy of the front members per stage</h2>", _figure(layers_figure(r), "layers"),
            _caption("Per front member (by energy) and stage: compute, SRAM and DRAM energy on the target task "
                     "(hover: the stage's total per part). Stages follow the layer names of the plan: stem, "
                     "stage1..stage4, head."),
            "<h2>Genotype choices vs objectives</h2>", _figure(parcoords_figure(r), "parcoords"),
            _caption("One line per trained trial (over-budget trials are left out: they were never trained); red "
                     "lines are front members. Drag along an axis to filter; drag an axis title to reorder."),
            "<h2>Trials</h2>", _caption("Click a column header to sort (click again to reverse)."),
            trials_table(r.df, r),
            "<h2>Configuration</h2>",
            f"<pre>{html.escape(yaml.safe_dump(r.config, sort_keys=False))}</pre>"]
    return _page(title, body)


def figure_page(fig: Any, r: StudyResults) -> str:
    """pareto.html: the accuracy-energy figure alone, with its caption."""
    title = f"boolnas study {r.name}: accuracy vs energy ({setup_tag(r.config)})"
    return _page(title, [_figure(fig, "pareto"), _caption(pareto_caption(r))])


def combined_page(all_results: Sequence[StudyResults], warnings: Sequence[str], out_dir: Path,
                  own_reports: Mapping[str, Path] | None = None) -> str:
    """The combined report of several studies: summaries side by side, overlaid fronts and
    hypervolume histories (one common reference energy), all trials in one table."""
    names = [r.name for r in all_results]
    title = f"boolnas studies {' vs '.join(names)}"
    ref = max(r.ref_energy for r in all_results)
    label = all_results[0].hv_label
    body = [f"<h1>{html.escape(title)}</h1>"]
    if warnings:
        items = "".join(f"<pre>{html.escape(w)}</pre>" for w in warnings)
        body.append(f'<div class="warning" id="warnings"><b>Warning: these studies were run with different '
                    f'settings; compare their fronts with care.</b>{items}</div>')
    links = []
    for name in names:
        target = (own_reports or {}).get(name)
        if target is not None:
            rel = os.path.relpath(Path(target), Path(out_dir))
            links.append(f'<a href="{html.escape(Path(rel).as_posix())}">{html.escape(name)}</a>')
    if links:
        body.append(f"<p>Each study's own report: {', '.join(links)}.</p>")
    combined = pd.concat([r.df.assign(study=r.name) for r in all_results], ignore_index=True)
    knees = {(r.name, r.knee) for r in all_results}
    body += [_summary_table(all_results, "summary"),
             "<h2>Fronts: accuracy vs energy</h2>", _figure(combined_pareto_figure(all_results), "pareto"),
             _caption("Each study in its own colour: its trained trials (faint), its front"
                      + (f" over all {len(all_results[0].objectives)} objectives (markers: with more than two "
                         "objectives a front member can look dominated in this accuracy-energy view)"
                         if len(all_results[0].objectives) > 2 else " (staircase)")
                      + " and its knee (star). Over-budget trials (never trained) are left out; dashed: energy "
                        "limits."),
             f"<h2>{html.escape(label[0].upper() + label[1:])}</h2>",
             _figure(hv_figure([(r.name, r.history(ref)) for r in all_results], ref, label), "hypervolume"),
             _caption(hv_caption(all_results, ref)),
             "<h2>Trials</h2>", _caption("Click a column header to sort (click again to reverse)."),
             trials_table(combined, all_results[0], knees=knees, study_column=True)]
    for r in all_results:
        body += [f"<h2>Configuration of {html.escape(r.name)}</h2>",
                 f"<pre>{html.escape(yaml.safe_dump(r.config, sort_keys=False))}</pre>"]
    return _page(title, body)


def _page(title: str, body: Sequence[str]) -> str:
    from plotly.offline import get_plotlyjs

    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n<script>{get_plotlyjs()}</script></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{SORTER_JS}</script>\n</body></html>\n")


def _figure(fig: Any, div_id: str) -> str:
    return fig.to_html(include_plotlyjs=False, full_html=False, div_id=div_id, config={"displaylogo": False})


def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>'


# ---------------------------------------------------------------------------- captions
def pareto_caption(r: StudyResults) -> str:
    multi = len(r.objectives) > 2
    n = len(r.objectives)
    parts = [f"Each point is a trained trial (hover: every objective and the full genotype). Red: the front over "
             f"{', '.join(r.objectives)}" + (f", drawn as markers, not as a staircase: with {n} objectives a front "
                                             "member can look dominated in this accuracy-energy view" if multi else "")
             + f". Gold star: the knee of the front{f' (over all {n} objectives)' if multi else ''}. "
             "Blue rings: the literature presets."]
    if r.max_energy is not None:
        parts.append(f"Dashed line: the energy limit ({energy_text(r.max_energy)} uJ).")
    else:
        parts.append("No energy limit is configured (constraints.max_energy_uJ: null).")
    over = r.df[over_budget_mask(r.df)]
    if not over.empty:
        presets = [p for p in over["preset"] if p]
        parts.append(f"Strip below the plot: {len(over)} trial(s) over the energy budget, recorded with accuracy 0 "
                     "and never trained" + (f" (presets among them: {', '.join(presets)})" if presets else "")
                     + "; they are on neither the front nor the accuracy axis.")
    return " ".join(parts)


def hv_caption(all_results: Sequence[StudyResults], ref: float) -> str:
    n = len(all_results[0].objectives)
    text = (f"Area dominated by the accuracy-energy front of the trained trials finished so far, inside the box from "
            f"accuracy 0 to 1 and energy 0 to {energy_text(ref)} uJ, as a fraction of the box.")
    if n > 2:
        text += (f" The study has {n} objectives; this is the 2-D accuracy-energy projection of its front "
                 "(the other objectives do not enter it).")
    if len(all_results) > 1:
        text += " All studies are measured against the same reference energy, the largest of theirs."
    return text


# ----------------------------------------------------------------------------- summary
def summary(r: StudyResults) -> list[tuple[str, str]]:
    """(field, text) rows of a study's setup summary."""
    cfg = r.config
    df = r.df
    counts = df["state"].value_counts().to_dict()
    done = int(counts.get("COMPLETE", 0))
    ok = feasible_mask(df)
    reused = int((ok & df["reused_from"].notna()).sum())
    details = [f"{int(ok.sum()) - reused} trained"]
    if reused:
        details.append(f"{reused} reusing a duplicate's result")
    over = int(over_budget_mask(df).sum())
    if over:
        details.append(f"{over} over the energy budget, not trained")
    states = [f"{done} complete ({', '.join(details)})" if done else "0 complete"]
    states += [f"{int(counts.get(s, 0))} {word}" for s, word in STATES[1:]]
    front = df[df["is_pareto"]].sort_values("energy_uJ")
    history = r.history()
    rows = [("Data (proxy)", describe_data(cfg.get("data") or {})),
            ("Budget (proxy training)", describe_budget(cfg.get("budget") or {})),
            ("Task (energy target)", describe_task(cfg.get("task") or {})),
            ("Energy profile", describe_energy(cfg.get("energy") or {})),
            ("Sampler(s)", describe_samplers(df, cfg)),
            ("Objectives", ", ".join(f"{o} ({d})" for o, d in zip(r.objectives, directions(r.objectives)))),
            ("Constraints", (f"energy <= {energy_text(r.max_energy)} uJ (candidates above it are not trained)"
                             if r.max_energy is not None else "none")),
            ("Trials", ", ".join(states)),
            ("Pareto front", f"{len(front)} member(s) over {', '.join(r.objectives)}"
                             + (f": trials {', '.join(str(int(n)) for n in front['number'])}" if len(front) else "")),
            ("Knee", describe_knee(r)),
            ("Hypervolume", f"{history[-1][1] if history else 0.0:.4f}: {r.hv_label} (reference: accuracy 0, "
                            f"{energy_text(r.ref_energy)} uJ)")]
    if r.rungs:
        rows.append(("Multi-fidelity", "; ".join(a.describe() for a in r.rungs)))
    if len(r.variants) > 1:
        rows.append(("Settings variants", f"{len(r.variants)}: trials were measured under {len(r.variants)} "
                                          "settings (allow_changed); see trials.csv's variant column"))
    return rows


def _summary_table(all_results: Sequence[StudyResults], table_id: str) -> str:
    per_study = [summary(r) for r in all_results]
    head = ""
    if len(all_results) > 1:
        names = "".join(f"<th>{html.escape(r.name)}</th>" for r in all_results)
        head = f"<thead><tr><th></th>{names}</tr></thead>"
    rows = []
    for i, (field, _) in enumerate(per_study[0]):
        cells = "".join(f"<td>{html.escape(s[i][1]) if i < len(s) else ''}</td>" for s in per_study)
        rows.append(f'<tr data-field="{html.escape(field)}"><th>{html.escape(field)}</th>{cells}</tr>')
    return f'<table class="summary" id="{table_id}">{head}<tbody>{"".join(rows)}</tbody></table>'


def _join(cfg: Mapping[str, Any], keys: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{label} {cfg[k]}" for k, label in keys if cfg.get(k) is not None)


def describe_data(d: Mapping[str, Any]) -> str:
    text = str(d.get("name", "?"))
    sizes = _join(d, (("num_train", "train"), ("val_size", "val"), ("num_test", "test")))
    shape = (f"{d['channels']}x{d['input_size']}x{d['input_size']}" if d.get("channels") and d.get("input_size")
             else "")
    classes = f"{d['num_classes']} classes" if d.get("num_classes") else ""
    extra = ", ".join(p for p in (sizes, shape, classes) if p)
    return f"{text}: {extra}" if extra else text


def describe_budget(b: Mapping[str, Any]) -> str:
    if not b:
        return "?"
    epochs = b.get("epochs")
    parts = [f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs is not None else "",
             _join(b, (("batch_size", "batch"), ("optimizer", "optimizer"), ("lr", "lr"),
                       ("train_subset", "train subset"), ("val_subset", "val subset"),
                       ("width_mult", "width multiplier"))),
             f"resolution {b['resolution']}" if b.get("resolution") else "data resolution"]
    return f"{b.get('name', '?')}: " + ", ".join(p for p in parts if p)


def describe_task(t: Mapping[str, Any]) -> str:
    if not t:
        return "?"
    shape = f"{t.get('in_channels', '?')}x{t.get('input_size', '?')}x{t.get('input_size', '?')} input"
    return ", ".join(p for p in (shape, f"{t['num_classes']} classes" if t.get("num_classes") else "",
                                 f"{t['stem']} stem" if t.get("stem") else "",
                                 f"width x{t['width_mult']}" if t.get("width_mult") is not None else "") if p)


def describe_energy(e: Mapping[str, Any]) -> str:
    name = str(e.get("name", "?"))
    return f"{name}: {e['description']}" if e.get("description") else name


def describe_samplers(df: pd.DataFrame, cfg: Mapping[str, Any]) -> str:
    """The samplers the trials record (a resumed study may have used several), with the options
    and seed of the configured one."""
    s = dict(cfg.get("sampler") or {})
    options = ", ".join(f"{k} {v}" for k, v in s.items() if k != "name")
    configured = f"{s.get('name', '?')}" + (f" ({options})" if options else "")
    seed = cfg.get("seed")
    recorded = df["sampler"].dropna().value_counts() if "sampler" in df else pd.Series(dtype=int)
    used = ", ".join(f"{name}: {int(n)} trial{'s' if n != 1 else ''}" for name, n in recorded.items())
    text = configured + (f", seed {seed}" if seed is not None else "")
    return f"{text}; trials by sampler: {used}" if used and (len(recorded) > 1 or recorded.index[0] != s.get("name")) \
        else text


def describe_knee(r: StudyResults) -> str:
    if r.knee is None:
        return "none (no trained trial yet)"
    row = r.df[r.df["number"] == r.knee].iloc[0]
    values = ", ".join(f"{o} {float(row[c]):.4g}" for o, c in zip(r.objectives, columns(r.objectives)))
    who = f"trial {r.knee}" + (f" ({row['preset']})" if row["preset"] else "")
    over = f" over all {len(r.objectives)} objectives" if len(r.objectives) > 2 else ""
    return f"{who}: {values} (knee of the front{over})"


# ------------------------------------------------------------------------------ table
def feasibility(row: pd.Series) -> str:
    if row["state"] != "COMPLETE":
        return ""
    return "over budget (not trained)" if row["feasible"] is False else "feasible"


def trials_table(df: pd.DataFrame, r: StudyResults, knees: set[tuple[str, int | None]] | None = None,
                 study_column: bool = False) -> str:
    """All trials, one row each, sortable by clicking a header; front rows red, the knee yellow."""
    extra = [c for c in columns(r.objectives) if c not in ("accuracy", "energy_uJ")]
    cols = (["study"] if study_column else []) + ["number", "state", "feasibility", "front", "preset", "accuracy",
                                                  "energy_uJ", *extra, "compute_uJ", "sram_uJ", "dram_uJ"]
    cols += [c for c in ("ops", "size_bits") if c not in cols]
    if df["rung"].notna().any():  # multi-fidelity: the rung of each measurement
        cols[cols.index("accuracy"):cols.index("accuracy")] = ["rung", "superseded"]
    cols += [*GENOTYPE_FIELDS, "sampler", "reused_from", "fail_reason"]
    feasible = feasible_mask(df)
    head = "".join(f'<th tabindex="0" title="click to sort" data-col="{html.escape(c)}">{html.escape(c)}</th>'
                   for c in cols)
    rows = []
    for i, row in df.iterrows():
        values = {**row.to_dict(), "feasibility": feasibility(row), "front": "yes" if row["is_pareto"] else ""}
        cells = "".join(_cell(values.get(c)) for c in cols)
        knee = (row["study"], row["number"]) in knees if knees is not None else row["number"] == r.knee
        cls = "knee" if knee and row["is_pareto"] else "pareto" if row["is_pareto"] else (
            "infeasible" if row["state"] == "COMPLETE" and not feasible[i] else "")
        rows.append(f'<tr{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{cells}</tr>')
    return (f'<table class="sortable" id="trials"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _cell(v: Any) -> str:
    """A table cell; a number keeps its raw value in ``data-sort`` for the sorter."""
    if v is None or (isinstance(v, float) and v != v):
        return "<td></td>"
    if isinstance(v, (bool, np.bool_)):
        return f"<td>{bool(v)}</td>"
    if isinstance(v, numbers.Integral):
        return f'<td data-sort="{int(v)}">{int(v)}</td>'
    if isinstance(v, numbers.Real):
        return f'<td data-sort="{float(v)!r}">{float(v):.4g}</td>'
    return f"<td>{html.escape(str(v))}</td>"
