"""The report's plotly figures: the accuracy-energy front, the hypervolume history, the energy
split of the front members per stage, and genotype choices against the objectives.

Each function takes :class:`search.report.StudyResults` (or several, for a combined report)
and returns a ``plotly.graph_objects.Figure``; search/report_html.py embeds them in a page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from boolnas.search.objectives import columns, directions
from boolnas.search.report import GENOTYPE_FIELDS, StudyResults, feasible_mask, over_budget_mask

# The front figure has a fixed size and margins, so preset labels can be laid out in pixels.
WIDTH, HEIGHT = 1060, 660
MARGIN = {"l": 80, "r": 260, "t": 90, "b": 60}
STRIP = 0.13  # share of the plot height for the strip of over-budget (untrained) trials
LABEL_FONT = 11
CHAR_W, LABEL_H = 7.0, 18.0  # conservative text size estimate (px) of a label at LABEL_FONT

GREY, RED, BLUE, GOLD, LIMIT = "#9aa5b1", "#d62728", "#1f77b4", "#f2b600", "#8b0000"
SPLIT = (("compute_uJ", "compute", "#4c78a8"), ("sram_uJ", "SRAM", "#f58518"), ("dram_uJ", "DRAM", "#54a24b"))
STAGE_ORDER = ("stem", "stage1", "stage2", "stage3", "stage4", "head", "fc")
TEMPLATE = "plotly_white"
ENERGY_TITLE = "energy per inference on the target task (uJ, log scale)"


# ----------------------------------------------------------------------------------- axes
def energy_text(value: float) -> str:
    """An energy as a tick reads: 0.5, 20, 200, 2,000, 20,000."""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Readable ticks for a log axis over [lo, hi]: 1-2-5 per decade (only powers of ten over a
    wide range, more over a narrow one), as plain numbers instead of plotly's minor digits."""
    lo, hi = max(lo, 1e-12), max(hi, lo * 1.0001)
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    vals: list[float] = []
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        vals = [float(f"{m}e{e}") for e in range(e0, e1 + 1) for m in mantissas if lo <= float(f"{m}e{e}") <= hi]
        if len(vals) >= 4:
            break
    if len(vals) < 2:  # a range narrower than one step of 1-1.5-2-3...: three round values inside it
        step = (hi - lo) / 4
        digits = max(0, -math.floor(math.log10(step)))
        vals = sorted({round(lo + step * i, digits) for i in (1, 2, 3)})
    return vals, [energy_text(v) for v in vals]


def log_range(values: Sequence[float], pad: float = 0.06) -> tuple[float, float]:
    """The log10 axis range covering ``values`` with ``pad`` decades to spare."""
    vals = [float(v) for v in values if v is not None and v == v and v > 0] or [1.0, 10.0]
    return math.log10(min(vals)) - pad, math.log10(max(vals)) + pad


def _energy_axis(values: Sequence[float]) -> dict[str, Any]:
    """A log energy axis with explicit tick values and labels."""
    r0, r1 = log_range(values)
    vals, text = log_ticks(10 ** r0, 10 ** r1)
    return {"type": "log", "range": [r0, r1], "tickvals": vals, "ticktext": text, "minor": {"showgrid": False}}


# ---------------------------------------------------------------------------------- hover
def hover(row: pd.Series, objectives: Sequence[str] = ("accuracy", "energy_uJ")) -> str:
    """The full genotype and every objective of a trial, for hover text."""
    parts = [f"trial {row['number']}" + (f" ({row['preset']})" if row["preset"] else "")]
    for obj, col in zip(objectives, columns(objectives)):
        v = row.get(col)
        parts.append(f"{obj} {v:.4g}" if isinstance(v, (int, float)) and v == v else f"{obj} {v}")
    if row.get("feasible") is False:
        parts.append("over the energy budget: not trained")
    rung = row.get("rung")
    if rung is not None and rung == rung:  # multi-fidelity: the rung this accuracy was measured at
        parts.append(f"rung {int(rung)}" + (" (superseded by a higher rung)" if row.get("superseded") else ""))
    parts += [f"{name}: {row[name]}" for name in GENOTYPE_FIELDS]
    return "<br>".join(html.escape(str(p)) for p in parts)


# ------------------------------------------------------------------------ label placement
def place_labels(anchors: Sequence[tuple[float, float, str]], obstacles: Sequence[tuple[float, float]],
                 area: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """Pixel offsets (dx, dy) of the label centres from their anchor points, chosen greedily so
    labels overlap neither each other nor markers and stay inside ``area`` (x0, y0, x1, y1)."""
    placed: list[tuple[float, float, float, float]] = []
    marks = [(x - 7, y - 7, x + 7, y + 7) for x, y in obstacles]
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(anchors)
    order = sorted(range(len(anchors)), key=lambda i: (anchors[i][0], anchors[i][1]))
    for i in order:
        x, y, text = anchors[i]
        w, h = label_size(text)
        best: tuple[float, int, tuple[float, float]] | None = None
        rank = 0
        for dist in (14, 32, 56, 90, 130):
            for ux, uy in ((1, 0), (-1, 0), (0, -1), (0, 1), (1, -1), (-1, -1), (1, 1), (-1, 1)):
                dx = ux * (dist + w / 2) if ux else 0.0
                dy = uy * (dist + h / 2) if uy else 0.0
                if ux and uy:
                    dx, dy = ux * (dist * 0.7 + w / 2), uy * (dist * 0.7 + h / 2)
                box = (x + dx - w / 2, y + dy - h / 2, x + dx + w / 2, y + dy + h / 2)
                score = 1e6 * sum(_overlap(box, p) for p in placed) + 50 * sum(_overlap(box, m) for m in marks)
                score += 1e4 * _outside(box, area) + dist
                rank += 1
                if best is None or (score, rank) < best[:2]:
                    best = (score, rank, (dx, dy))
        assert best is not None
        dx, dy = best[2]
        placed.append((x + dx - w / 2, y + dy - h / 2, x + dx + w / 2, y + dy + h / 2))
        out[i] = (dx, dy)
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _outside(box: tuple[float, float, float, float], area: tuple[float, float, float, float]) -> float:
    return (max(0.0, area[0] - box[0]) + max(0.0, box[2] - area[2]) + max(0.0, area[1] - box[1])
            + max(0.0, box[3] - area[3]))


# ------------------------------------------------------------------------- the front
def setup_tag(config: dict[str, Any]) -> str:
    """``synthetic data, tiny budget, boolnet65nm profile``: what every title names."""
    def name(key: str) -> str:
        return str((config.get(key) or {}).get("name", "?"))
    return f"{name('data')} data, {name('budget')} budget, {name('energy')} profile"


def pareto_figure(r: StudyResults) -> Any:
    """Proxy accuracy vs target energy (log): the trained trials, the front over every objective
    (a staircase with two objectives, markers with more), the knee, the energy limit, the presets
    (rings, labels placed apart); over-budget trials, never trained, in a strip below."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df, multi = r.df, len(r.objectives) > 2
    ok, over = df[feasible_mask(df)], df[over_budget_mask(df)]
    ok = ok[ok["energy_uJ"].notna() & ok["accuracy"].notna()]
    over = over[over["energy_uJ"].notna()]
    front = ok[ok["is_pareto"]].sort_values("energy_uJ")
    strip = not over.empty
    fig = make_subplots(rows=2 if strip else 1, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        row_heights=[1 - STRIP, STRIP] if strip else None)
    text = [hover(row, r.objectives) for _, row in ok.iterrows()]
    ok = ok.assign(_hover=text)
    others = ok[~ok["is_pareto"]]
    if not others.empty:
        fig.add_trace(go.Scatter(x=others["energy_uJ"], y=others["accuracy"], mode="markers", name="other trials",
                                 marker={"color": GREY, "size": 8}, text=others["_hover"],
                                 hovertemplate="%{text}<extra></extra>"), row=1, col=1)
    if not front.empty:
        fh = ok.loc[front.index, "_hover"]
        name = (f"front over all {len(r.objectives)} objectives" if multi else "Pareto front")
        fig.add_trace(go.Scatter(
            x=front["energy_uJ"], y=front["accuracy"], mode="markers" if multi else "lines+markers", name=name,
            marker={"color": RED, "symbol": "diamond", "size": 11},
            line=None if multi else {"shape": "hv", "color": RED}, text=fh,
            hovertemplate="%{text}<extra></extra>"), row=1, col=1)
    knee = ok[ok["number"] == r.knee] if r.knee is not None else ok.iloc[:0]
    if not knee.empty:
        fig.add_trace(go.Scatter(
            x=knee["energy_uJ"], y=knee["accuracy"], mode="markers", name=f"knee (trial {r.knee})",
            marker={"color": GOLD, "symbol": "star", "size": 20, "line": {"color": "#333", "width": 1}},
            text=knee["_hover"], hovertemplate="knee<br>%{text}<extra></extra>"), row=1, col=1)
    presets = ok[ok["preset"] != ""].drop_duplicates("preset")
    if not presets.empty:
        fig.add_trace(go.Scatter(
            x=presets["energy_uJ"], y=presets["accuracy"], mode="markers", name="literature presets",
            marker={"color": "rgba(0,0,0,0)", "size": 18, "line": {"color": BLUE, "width": 2}},
            text=presets["_hover"], hovertemplate="%{text}<extra></extra>"), row=1, col=1)
    if strip:
        jitter = [(-0.4, 0.0, 0.4)[i % 3] for i in range(len(over))]
        fig.add_trace(go.Scatter(
            x=over["energy_uJ"], y=jitter, mode="markers", name="over energy budget (not trained)",
            marker={"color": "#d98c8c", "symbol": "x", "size": 9},
            text=[hover(row, r.objectives) for _, row in over.iterrows()], hovertemplate="%{text}<extra></extra>"),
            row=2, col=1)
        fig.update_yaxes(row=2, col=1, range=[-1, 1], showticklabels=False, showgrid=False, zeroline=False,
                         title={"text": "untrained", "font": {"size": 11}})
    energies = [*df.loc[df["state"] == "COMPLETE", "energy_uJ"].dropna()] + ([r.max_energy] if r.max_energy else [])
    xaxis = _energy_axis(energies)
    fig.update_xaxes(**xaxis)
    fig.update_xaxes(title_text=ENERGY_TITLE, row=2 if strip else 1, col=1)
    accs = ok["accuracy"].astype(float)
    lo, hi = (float(accs.min()), float(accs.max())) if len(accs) else (0.0, 1.0)
    span = max(hi - lo, 0.05)
    yrange = [lo - 0.08 * span, hi + 0.12 * span]
    fig.update_yaxes(title_text="proxy accuracy", range=yrange, row=1, col=1)
    if r.max_energy is not None:
        limit = energy_text(r.max_energy)
        fig.add_shape(type="line", x0=r.max_energy, x1=r.max_energy, xref="x", y0=0, y1=1, yref="paper",
                      line={"color": LIMIT, "width": 2, "dash": "dash"}, name=f"energy limit ({limit} uJ)",
                      showlegend=True)
        fig.add_annotation(x=math.log10(r.max_energy), xref="x", y=1, yref="paper", yanchor="bottom",
                           text=f"energy limit {limit} uJ", showarrow=False, font={"color": LIMIT, "size": 11})
    fig.update_layout(
        title={"text": f"{html.escape(r.name)}: proxy accuracy vs energy ({html.escape(setup_tag(r.config))})",
               "font": {"size": 16}},
        width=WIDTH, height=HEIGHT, margin={**MARGIN, "autoexpand": False}, template=TEMPLATE,
        legend={"x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"}, hovermode="closest")
    _label_points(fig, presets, knee, ok)
    return fig


def plot_area(fig: Any) -> tuple[float, float, float, float]:
    """The main plot's area (x0, y0, x1, y1) in pixels of the fixed-size front figure."""
    d0, d1 = fig.layout.yaxis.domain or (0.0, 1.0)
    pw, ph = WIDTH - MARGIN["l"] - MARGIN["r"], HEIGHT - MARGIN["t"] - MARGIN["b"]
    return MARGIN["l"], MARGIN["t"] + (1 - d1) * ph, MARGIN["l"] + pw, MARGIN["t"] + (1 - d0) * ph


def to_pixels(fig: Any, energy: float, accuracy: float) -> tuple[float, float]:
    """Where (energy, accuracy) is drawn in the front figure, in pixels from its top left corner."""
    x0, y0, x1, y1 = plot_area(fig)
    (e0, e1), (a0, a1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    fx = (math.log10(energy) - e0) / (e1 - e0)
    fy = (accuracy - a0) / (a1 - a0)
    return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)


def label_size(text: str) -> tuple[float, float]:
    """A label's box (width, height) in pixels: a conservative estimate at LABEL_FONT."""
    return CHAR_W * len(text) + 8, LABEL_H


def _label_points(fig: Any, presets: pd.DataFrame, knee: pd.DataFrame, ok: pd.DataFrame) -> None:
    """Name the presets and the knee with annotations placed apart (fixed figure size: pixels known)."""
    labels: dict[int, str] = {int(n): str(p) for n, p in zip(presets["number"], presets["preset"])}
    if not knee.empty:
        number = int(knee["number"].iloc[0])
        labels[number] = f"knee: {labels[number]}" if number in labels else f"knee (trial {number})"
    if not labels:
        return
    rows = ok.set_index("number")
    points = {n: (float(rows.at[n, "energy_uJ"]), float(rows.at[n, "accuracy"])) for n in labels}
    anchors = [(*to_pixels(fig, *points[n]), t) for n, t in labels.items()]
    obstacles = [to_pixels(fig, float(e), float(a)) for e, a in zip(ok["energy_uJ"], ok["accuracy"])]
    offsets = place_labels(anchors, obstacles, plot_area(fig))
    for (n, t), (dx, dy) in zip(labels.items(), offsets):
        fig.add_annotation(x=math.log10(points[n][0]), y=points[n][1], xref="x", yref="y", text=html.escape(t),
                           ax=dx, ay=dy, showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor="#555", standoff=9,
                           font={"size": LABEL_FONT}, bgcolor="rgba(255,255,255,0.85)", name=f"label trial {n}")


def combined_pareto_figure(all_results: Sequence[StudyResults]) -> Any:
    """The fronts of several studies on one accuracy-energy plot, one colour per study."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    fig = go.Figure()
    energies: list[float] = []
    multi = len(all_results[0].objectives) > 2
    for i, r in enumerate(all_results):
        color = qualitative.D3[i % len(qualitative.D3)]
        ok = r.df[feasible_mask(r.df)]
        energies += [*ok["energy_uJ"].dropna()] + ([r.max_energy] if r.max_energy else [])
        front = ok[ok["is_pareto"]].sort_values("energy_uJ")
        rest = ok[~ok["is_pareto"]]
        fig.add_trace(go.Scatter(
            x=rest["energy_uJ"], y=rest["accuracy"], mode="markers", name=f"{r.name}: other trials",
            legendgroup=r.name, marker={"color": color, "size": 6, "opacity": 0.35},
            text=[hover(row, r.objectives) for _, row in rest.iterrows()],
            hovertemplate=f"{html.escape(r.name)}<br>%{{text}}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=front["energy_uJ"], y=front["accuracy"], mode="markers" if multi else "lines+markers",
            name=f"{r.name}: front" + (f" (all {len(r.objectives)} objectives)" if multi else ""),
            legendgroup=r.name, marker={"color": color, "symbol": "diamond", "size": 10},
            line=None if multi else {"shape": "hv", "color": color},
            text=[hover(row, r.objectives) for _, row in front.iterrows()],
            hovertemplate=f"{html.escape(r.name)}<br>%{{text}}<extra></extra>"))
        knee = ok[ok["number"] == r.knee] if r.knee is not None else ok.iloc[:0]
        if not knee.empty:
            fig.add_trace(go.Scatter(
                x=knee["energy_uJ"], y=knee["accuracy"], mode="markers", name=f"{r.name}: knee (trial {r.knee})",
                legendgroup=r.name, marker={"color": color, "symbol": "star", "size": 18,
                                            "line": {"color": "#333", "width": 1}},
                hovertemplate=f"{html.escape(r.name)} knee: trial {r.knee}<extra></extra>"))
    limits: dict[float, list[str]] = {}
    for r in all_results:
        if r.max_energy is not None:
            limits.setdefault(r.max_energy, []).append(r.name)
    for value, names in limits.items():
        who = "" if len(limits) == 1 and len(names) == len(all_results) else f" ({', '.join(names)})"
        fig.add_shape(type="line", x0=value, x1=value, xref="x", y0=0, y1=1, yref="paper",
                      line={"color": LIMIT, "width": 2, "dash": "dash"}, showlegend=True,
                      name=f"energy limit {energy_text(value)} uJ{who}")
    names = " vs ".join(r.name for r in all_results)
    tags = sorted({setup_tag(r.config) for r in all_results})
    fig.update_layout(title=html.escape(f"{names}: proxy accuracy vs energy ({'; '.join(tags)})"),
                      xaxis={**_energy_axis(energies), "title": ENERGY_TITLE}, yaxis_title="proxy accuracy",
                      height=620, template=TEMPLATE, hovermode="closest")
    return fig


# ------------------------------------------------------------------------- hypervolume
def hv_figure(histories: Sequence[tuple[str, list[tuple[int, float]]]], ref_energy: float, label: str) -> Any:
    """The hypervolume after each trial, one line per study."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    fig = go.Figure()
    for i, (name, history) in enumerate(histories):  # the colours of combined_pareto_figure
        fig.add_trace(go.Scatter(
            x=[n for n, _ in history], y=[h for _, h in history], mode="lines+markers", name=name,
            line={"color": qualitative.D3[i % len(qualitative.D3)]},
            hovertemplate=f"{html.escape(name)}<br>after trial %{{x}}: %{{y:.4f}}<extra></extra>"))
    fig.update_layout(title=html.escape(f"{label[0].upper()}{label[1:]} after each trial "
                                        f"(reference: accuracy 0, {energy_text(ref_energy)} uJ)"),
                      xaxis_title="trial", yaxis_title="hypervolume (fraction of the reference box)",
                      showlegend=len(histories) > 1, height=420, template=TEMPLATE)
    return fig


# ------------------------------------------------------------------ energy split per stage
def stage_of(layer: str) -> str:
    """The stage a layer name belongs to (space/plan.py names layers ``stage2.block0.conv1``)."""
    return layer.split(".", 1)[0]


def stage_split(layers: Sequence[Sequence[Any]]) -> dict[str, dict[str, float]]:
    """Per stage (in network order): compute / SRAM / DRAM energy (uJ) summed over its layers."""
    out: dict[str, dict[str, float]] = {}
    for name, compute, sram, dram in layers:
        s = out.setdefault(stage_of(str(name)), {"compute_uJ": 0.0, "sram_uJ": 0.0, "dram_uJ": 0.0})
        s["compute_uJ"] += float(compute)
        s["sram_uJ"] += float(sram)
        s["dram_uJ"] += float(dram)
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    return dict(sorted(out.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def layers_figure(r: StudyResults) -> Any:
    """Energy of each front member per stage, stacked as compute / SRAM / DRAM (three colours)."""
    import plotly.graph_objects as go

    members = r.df[r.df["is_pareto"]].sort_values("energy_uJ")
    level0: list[str] = []
    level1: list[str] = []
    values: dict[str, list[float]] = {key: [] for key, _, _ in SPLIT}
    for number, preset in zip(members["number"], members["preset"]):
        member = f"#{int(number)}" + (f" {preset}" if preset else "") + (" (knee)" if int(number) == r.knee else "")
        for stage, split in stage_split(r.layers.get(int(number), [])).items():
            level0.append(member)
            level1.append(stage)
            for key, _, _ in SPLIT:
                values[key].append(split[key])
    fig = go.Figure()
    for key, name, color in SPLIT:
        fig.add_bar(name=name, x=[level0, level1], y=values[key], marker_color=color,
                    hovertemplate="%{x}<br>" + name + ": %{y:.2f} uJ<extra></extra>")
    fig.update_layout(barmode="stack", template=TEMPLATE, height=460, legend_title_text="energy",
                      title=html.escape(f"Energy of the front members per stage, target task ({setup_tag(r.config)})"),
                      yaxis_title="energy (uJ)", xaxis_title="front member (trial, by energy) / stage")
    return fig


# --------------------------------------------------------------------- parallel coordinates
def categories(field: str, values: Sequence[str], space: dict[str, Any]) -> list[str]:
    """The order of a genotype field's values on its axis: the search space's order where known."""
    allowed = [str(v) for v in (space.get(field) or [])] if isinstance(space.get(field), list) else []
    seen = sorted(set(values), key=lambda v: (allowed.index(v) if v in allowed else len(allowed), _num(v), v))
    return seen


def _num(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return math.inf


def parcoords_figure(r: StudyResults) -> Any:
    """Genotype choices (categorical axes, integers with their names as tick text) against every
    objective, one line per trained trial; front members red."""
    import plotly.graph_objects as go

    ok = r.df[feasible_mask(r.df)].sort_values("is_pareto")  # front lines drawn last, on top
    dims: list[dict[str, Any]] = []
    space = r.config.get("space") or {}
    for field in GENOTYPE_FIELDS:
        vals = ok[field].astype(str).tolist()
        cats = categories(field, vals, space)
        codes = [cats.index(v) for v in vals]
        dims.append({"label": field, "values": codes, "tickvals": list(range(len(cats))), "ticktext": cats,
                     "range": [0, max(len(cats) - 1, 1)]})
    for obj, col, direction in zip(r.objectives, columns(r.objectives), directions(r.objectives)):
        vals = ok[col].astype(float)
        if col == "energy_uJ" and (vals > 0).all() and len(vals):
            lo, hi = float(vals.min()) * 0.95, float(vals.max()) * 1.05
            ticks, text = log_ticks(lo, hi)
            dims.append({"label": f"{obj} (log, {direction})", "values": [math.log10(v) for v in vals],
                         "range": [math.log10(lo), math.log10(hi)], "tickvals": [math.log10(t) for t in ticks],
                         "ticktext": text})
        else:
            dims.append({"label": f"{obj} ({direction})", "values": vals.tolist()})
    fig = go.Figure(go.Parcoords(
        line={"color": ok["is_pareto"].astype(int).tolist(), "colorscale": [[0, GREY], [1, RED]], "cmin": 0,
              "cmax": 1},
        dimensions=dims, labelangle=-30, labelside="bottom"))
    fig.update_layout(title=html.escape(f"Genotype choices vs objectives of the trained trials "
                                        f"(red: front; {setup_tag(r.config)})"),
                      height=520, margin={"l": 70, "r": 70, "t": 80, "b": 110}, template=TEMPLATE)
    return fig
