"""A study's results files: trials.csv, pareto.html and report.html (all written atomically).

Everything is derived from the study's storage, so the files can be regenerated at any time
(``boolnas-report study=<name>``), also while workers are still running.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from search.pareto import hypervolume, knee, pareto_mask
from space import Genotype
from space.files import write_text_atomic

log = logging.getLogger(__name__)

GENOTYPE_FIELDS = tuple(Genotype.__dataclass_fields__)
METRIC_COLUMNS = ("accuracy", "energy_uJ", "compute_uJ", "sram_uJ", "dram_uJ", "cycles", "bops", "flops", "ops",
                  "size_bits", "zc_naswot", "zc_grad_norm", "zc_snip", "train_time_s", "threads", "device", "diverged",
                  "feasible", "reused_from", "retry_of", "fail_reason", "worker", "key")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, genotype fields, objectives, energy split, is_pareto, preset."""
    rows: list[dict[str, Any]] = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "preset": a.get("preset") or ""}
        genotype = a.get("genotype") or {}
        for name in GENOTYPE_FIELDS:
            v = genotype.get(name)
            row[name] = "|".join(str(x) for x in v) if isinstance(v, list) else (None if v is None else str(v))
        for name in METRIC_COLUMNS:
            row[name] = a.get(name)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["number", "state", "preset", *GENOTYPE_FIELDS, *METRIC_COLUMNS])
    candidates = (df["state"] == "COMPLETE") & (df["feasible"] != False)  # noqa: E712 (None counts as feasible)
    points = list(zip(df.loc[candidates, "accuracy"].astype(float), df.loc[candidates, "energy_uJ"].astype(float)))
    df["is_pareto"] = False
    if points:  # pandas refuses an empty assignment on an all-False mask
        df.loc[candidates, "is_pareto"] = pareto_mask(points)
    return df


def hypervolume_history(df: pd.DataFrame, ref_energy: float) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the front of the trials finished up to it)."""
    out, points = [], []
    for _, row in df.sort_values("number").iterrows():
        if row["state"] == "COMPLETE" and row["feasible"] is not False:
            points.append((float(row["accuracy"]), float(row["energy_uJ"])))
        out.append((int(row["number"]), hypervolume(points, ref_energy)))
    return out


def _hover(row: pd.Series) -> str:
    parts = [f"trial {row['number']}" + (f" ({row['preset']})" if row["preset"] else ""),
             f"accuracy {row['accuracy']:.4f}", f"energy {row['energy_uJ']:.1f} uJ"]
    parts += [f"{name}: {row[name]}" for name in GENOTYPE_FIELDS]
    return "<br>".join(html.escape(str(p)) for p in parts)


def pareto_figure(df: pd.DataFrame, title: str) -> Any:
    """Scatter energy vs accuracy: all trials, the front highlighted, presets labelled."""
    import plotly.graph_objects as go

    done = df[df["state"] == "COMPLETE"].copy()
    fig = go.Figure()
    groups = (("other trials", done[~done["is_pareto"] & (done["feasible"] != False)], "#9aa5b1", "circle"),  # noqa: E712
              ("over energy budget", done[done["feasible"] == False], "#d98c8c", "x"),  # noqa: E712
              ("Pareto front", done[done["is_pareto"]].sort_values("energy_uJ"), "#d62728", "diamond"))
    for name, sub, color, symbol in groups:
        if sub.empty:
            continue
        front = name == "Pareto front"
        fig.add_trace(go.Scatter(
            x=sub["energy_uJ"], y=sub["accuracy"], mode="lines+markers" if front else "markers", name=name,
            marker={"color": color, "symbol": symbol, "size": 11 if front else 8},
            line={"shape": "hv", "color": color} if front else None,
            text=[_hover(r) for _, r in sub.iterrows()], hovertemplate="%{text}<extra></extra>"))
    presets = done[done["preset"] != ""].drop_duplicates("preset")
    if not presets.empty:
        fig.add_trace(go.Scatter(
            x=presets["energy_uJ"], y=presets["accuracy"], mode="markers+text", name="presets",
            text=presets["preset"], textposition="top center",
            marker={"color": "rgba(0,0,0,0)", "size": 16, "line": {"color": "#1f77b4", "width": 2}},
            customdata=[_hover(r) for _, r in presets.iterrows()], hovertemplate="%{customdata}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="energy per inference on the target task (uJ)",
                      yaxis_title="proxy accuracy", xaxis_type="log", template="plotly_white")
    return fig


def hv_figure(history: list[tuple[int, float]], ref_energy: float) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[n for n, _ in history], y=[h for _, h in history], mode="lines+markers"))
    fig.update_layout(title=f"Hypervolume (reference: accuracy 0, {ref_energy:.1f} uJ)", xaxis_title="trial",
                      yaxis_title="hypervolume (fraction of the reference box)", template="plotly_white")
    return fig


def layers_figure(study: optuna.Study, df: pd.DataFrame) -> Any:
    """Per-layer energy of the Pareto members as stacked bars (one bar per member)."""
    import plotly.graph_objects as go

    members = df[df["is_pareto"]].sort_values("energy_uJ")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    labels = [f"#{n}" + (f" {p}" if p else "") for n, p in zip(members["number"], members["preset"])]
    per_layer: dict[str, list[float]] = {}
    for i, number in enumerate(members["number"]):
        for name, compute, sram, dram in trials[int(number)].user_attrs.get("layers", []):
            per_layer.setdefault(name, [0.0] * len(members))[i] = compute + sram + dram
    fig = go.Figure()
    for name, values in per_layer.items():
        fig.add_bar(name=name, x=labels, y=values, hovertemplate="%{x}<br>" + name + ": %{y:.2f} uJ<extra></extra>")
    fig.update_layout(barmode="stack", title="Energy per layer of the Pareto members (target task)",
                      yaxis_title="energy (uJ)", showlegend=False, template="plotly_white")
    return fig


def write_reports(study: optuna.Study, out_dir: Path) -> dict[str, Path]:
    """Write trials.csv, pareto.html and report.html for ``study`` into ``out_dir``."""
    out_dir = Path(out_dir)
    df = trials_frame(study)
    ref = float(study.user_attrs.get("hv_ref_energy_uJ") or (df["energy_uJ"].max() * 2 if len(df) else 1.0))
    paths = {"csv": _write(out_dir / "trials.csv", df.to_csv(index=False))}
    title = f"Study {study.study_name}: proxy accuracy vs energy"
    fig = pareto_figure(df, title)
    paths["pareto"] = _write(out_dir / "pareto.html", fig.to_html(include_plotlyjs=True, full_html=True))
    history = hypervolume_history(df, ref)
    config = study.user_attrs.get("config", {})
    done = df[df["state"] == "COMPLETE"]
    points = list(zip(done["accuracy"].astype(float), done["energy_uJ"].astype(float)))
    k = knee([p if f is not False else (float("-inf"), p[1]) for p, f in zip(points, done["feasible"])])
    knee_txt = f"trial {int(done.iloc[k]['number'])}" if k is not None else "none"
    counts = df["state"].value_counts().to_dict()
    figures = [fig.to_html(include_plotlyjs=True, full_html=False, div_id="pareto"),
               hv_figure(history, ref).to_html(include_plotlyjs=False, full_html=False, div_id="hypervolume"),
               layers_figure(study, df).to_html(include_plotlyjs=False, full_html=False, div_id="layers")]
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>boolnas study {html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 5px}} tr.pareto{{background:#fde2e2}} pre{{background:#f5f5f5;padding:1em}}
</style></head><body>
<h1>boolnas study {html.escape(study.study_name)}</h1>
<p>Trials: {html.escape(json.dumps(counts))}; Pareto front: {int(df['is_pareto'].sum())} members;
knee: {knee_txt}; hypervolume: {history[-1][1] if history else 0.0:.4f}
(reference accuracy 0, {ref:.1f} uJ).</p>
<h2>Pareto front</h2>{figures[0]}
<h2>Hypervolume history</h2>{figures[1]}
<h2>Energy per layer of the Pareto members</h2>{figures[2]}
<h2>Trials</h2>{_table(df)}
<h2>Configuration</h2><pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>
</body></html>
"""
    paths["report"] = _write(out_dir / "report.html", body)
    log.info("wrote %s, %s and %s", paths["csv"], paths["pareto"], paths["report"])
    return paths


def _write(path: Path, text: str) -> Path:
    """Atomic write, readable by everyone (results are shared files)."""
    out = write_text_atomic(path, text)
    os.chmod(out, 0o644)
    return out


def _table(df: pd.DataFrame) -> str:
    cols = ["number", "state", "preset", "accuracy", "energy_uJ", "compute_uJ", "sram_uJ", "dram_uJ", "ops",
            "size_bits", "is_pareto", *GENOTYPE_FIELDS, "fail_reason"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for _, r in df.iterrows():
        cells = "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in cols)
        cls = ' class="pareto"' if r["is_pareto"] else ""
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)

