"""A study's results files: trials.csv, pareto.html and report.html (all written atomically).

Everything is derived from the study's storage, so the files can be regenerated at any time
(``boolnas-report study=<name>``), also while workers are still running. Several studies can
be put side by side in one combined report (``boolnas-report study=a,b``, :func:`write_combined_report`).

This module holds what the files say (the trials table, the front over every objective, the
knee, the hypervolume history); search/report_figures.py draws it and search/report_html.py
lays out the page.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from boolnas.search.objectives import columns, directions, study_objectives
from boolnas.search.pareto import hypervolume, knee_of, nondominated
from boolnas.search.rungs import RungAgreement, SchedulerConfig, rung_agreement
from boolnas.space import Genotype
from boolnas.space.files import write_text_atomic

log = logging.getLogger(__name__)

GENOTYPE_FIELDS = tuple(Genotype.__dataclass_fields__)
METRIC_COLUMNS = ("accuracy", "energy_uJ", "compute_uJ", "sram_uJ", "dram_uJ", "cycles", "bops", "flops", "ops",
                  "size_bits", "zc_naswot", "zc_grad_norm", "zc_snip", "train_time_s", "threads", "device", "diverged",
                  "feasible", "reused_from", "retry_of", "fail_reason", "worker", "sampler", "variant", "rung",
                  "promoted_from", "candidate", "key")


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
    df["superseded"] = superseded_column(df)
    df["is_pareto"] = pareto_column(df, study_objectives(study))
    return df


def superseded_column(df: pd.DataFrame) -> pd.Series:
    """True for a COMPLETE measurement of a candidate that also finished a higher rung
    (multi-fidelity, search/rungs.py): results use each candidate's highest rung only."""
    done = df[(df["state"] == "COMPLETE") & df["candidate"].notna()]
    if done.empty:
        return pd.Series(False, index=df.index)
    top = done.groupby("candidate")["rung"].transform("max")
    out = pd.Series(False, index=df.index)
    out[done.index] = done["rung"] < top
    return out


def pareto_column(df: pd.DataFrame, objectives: Sequence[str]) -> pd.Series:
    """True for the COMPLETE, feasible trials on the front of every objective in ``objectives``."""
    cols = columns(objectives)
    candidates = (df["state"] == "COMPLETE") & (df["feasible"] != False)  # noqa: E712 (None counts as feasible)
    candidates &= df[cols].notna().all(axis=1)
    if "superseded" in df:  # multi-fidelity: each candidate's highest rung only
        candidates &= ~df["superseded"].astype(bool)
    out = pd.Series(False, index=df.index)
    rows = df.loc[candidates, cols].astype(float).values.tolist()
    if rows:  # pandas refuses an empty assignment on an all-False mask
        out[candidates] = nondominated(rows, directions(objectives))
    return out


def hypervolume_history(df: pd.DataFrame, ref_energy: float) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the front of the trials finished up to it). With rungs
    (search/rungs.py) a candidate counts with its highest rung finished so far."""
    out: list[tuple[int, float]] = []
    best: dict[Any, tuple[int, tuple[float, float]]] = {}  # candidate -> (rung, point)
    for _, row in df.sort_values("number").iterrows():
        if row["state"] == "COMPLETE" and row["feasible"] is not False:
            who = row["candidate"] if isinstance(row.get("candidate"), str) else ("trial", row["number"])
            rung = int(row["rung"]) if pd.notna(row.get("rung")) else 0
            if who not in best or rung >= best[who][0]:
                best[who] = (rung, (float(row["accuracy"]), float(row["energy_uJ"])))
        out.append((int(row["number"]), hypervolume([p for _, p in best.values()], ref_energy)))
    return out


def knee_trial(df: pd.DataFrame, objectives: Sequence[str]) -> int | None:
    """The trial number of the front's knee over every objective (search/pareto.py ``knee_of``)."""
    front = df[df["is_pareto"]]
    k = knee_of(front[columns(objectives)].astype(float).values.tolist(), directions(objectives))
    return None if k is None else int(front.iloc[k]["number"])


def feasible_mask(df: pd.DataFrame) -> pd.Series:
    """COMPLETE trials that were trained: not over the energy budget (None counts as feasible)."""
    return (df["state"] == "COMPLETE") & (df["feasible"] != False)  # noqa: E712


def over_budget_mask(df: pd.DataFrame) -> pd.Series:
    """COMPLETE trials over the energy budget: recorded with accuracy 0, never trained."""
    return (df["state"] == "COMPLETE") & (df["feasible"] == False)  # noqa: E712


@dataclass
class StudyResults:
    """What a report shows of one study, read once from its storage."""

    name: str
    df: pd.DataFrame
    objectives: tuple[str, ...]
    config: dict[str, Any]
    ref_energy: float  # the study's fixed hypervolume reference energy (uJ)
    knee: int | None  # trial number of the knee of the front over every objective
    layers: dict[int, list[list[Any]]] = field(default_factory=dict)  # front member -> [name, compute, sram, dram]
    variants: list[dict[str, Any]] = field(default_factory=list)  # settings variants (search/fingerprint.py)
    rungs: list[RungAgreement] = field(default_factory=list)  # multi-fidelity: adjacent rungs' rank agreement

    @property
    def max_energy(self) -> float | None:
        """The configured energy limit (constraints.max_energy_uJ), None when there is none."""
        value = (self.config.get("constraints") or {}).get("max_energy_uJ")
        return None if value is None else float(value)

    def history(self, ref_energy: float | None = None) -> list[tuple[int, float]]:
        """The accuracy-energy hypervolume after each trial (default: the study's reference)."""
        return hypervolume_history(self.df, self.ref_energy if ref_energy is None else ref_energy)

    @property
    def hv_label(self) -> str:
        """What the hypervolume is: with more than two objectives, a named 2-D projection."""
        if len(self.objectives) > 2:
            return (f"accuracy-energy hypervolume (2-D projection of the {len(self.objectives)}-objective front)")
        return "accuracy-energy hypervolume"


def study_results(study: optuna.Study) -> StudyResults:
    """Read ``study`` once: its trials, objectives, config, hypervolume reference, knee."""
    df = trials_frame(study)
    objectives = study_objectives(study)
    ref = study.user_attrs.get("hv_ref_energy_uJ")
    if ref is None:
        energies = df["energy_uJ"].dropna()
        ref = float(energies.max()) * 2 if len(energies) else 1.0
    front = set(int(n) for n in df.loc[df["is_pareto"], "number"])
    layers = {t.number: list(t.user_attrs.get("layers") or []) for t in study.get_trials(deepcopy=False)
              if t.number in front}
    return StudyResults(name=study.study_name, df=df, objectives=objectives,
                        config=dict(study.user_attrs.get("config") or {}), ref_energy=float(ref),
                        knee=knee_trial(df, objectives), layers=layers,
                        variants=list(study.user_attrs.get("fingerprints") or []),
                        rungs=_rung_agreement(study))


def _rung_agreement(study: optuna.Study) -> list[RungAgreement]:
    """The in-study fidelity of a multi-fidelity study (empty without a scheduler)."""
    scheduler = SchedulerConfig.from_dict(dict((study.user_attrs.get("config") or {}).get("scheduler") or {}))
    if not scheduler.active:
        return []
    return rung_agreement(study.get_trials(deepcopy=False), scheduler)


def write_reports(study: optuna.Study, out_dir: Path) -> dict[str, Path]:
    """Write trials.csv, pareto.html and report.html for ``study`` into ``out_dir``."""
    return write_study_files(study_results(study), out_dir)


def write_study_files(results: StudyResults, out_dir: Path) -> dict[str, Path]:
    """trials.csv, pareto.html and report.html of one study (see :func:`write_reports`)."""
    from boolnas.search.report_figures import pareto_figure
    from boolnas.search.report_html import figure_page, study_page

    out_dir = Path(out_dir)
    paths = {"csv": _write(out_dir / "trials.csv", results.df.to_csv(index=False))}
    paths["pareto"] = _write(out_dir / "pareto.html", figure_page(pareto_figure(results), results))
    paths["report"] = _write(out_dir / "report.html", study_page(results))
    log.info("wrote %s, %s and %s", paths["csv"], paths["pareto"], paths["report"])
    return paths


def combined_dir(results_dir: Path, names: Sequence[str]) -> Path:
    """Where the combined report of several studies goes by default: ``results/<a>+<b>/``
    ('+' is not allowed in a study name, so the folder never collides with a study's)."""
    return Path(results_dir) / "+".join(names)


def comparability(all_results: Sequence[StudyResults]) -> list[str]:
    """Check that studies can share one report. Different objectives: a ValueError (their fronts
    rank different things). Other result-defining settings that differ (data, budget, task,
    energy profile, constraints, space): one warning line per difference, shown in the report."""
    from boolnas.search.fingerprint import describe, differences, fingerprint

    if len({r.name for r in all_results}) != len(all_results):
        raise ValueError(f"study= names a study twice: {[r.name for r in all_results]}")
    first = all_results[0]
    for other in all_results[1:]:
        if other.objectives != first.objectives:
            raise ValueError(
                f"studies {first.name!r} and {other.name!r} have different objectives ({list(first.objectives)} vs "
                f"{list(other.objectives)}): their fronts rank different things; report them separately")
    warnings = []
    base = {k: v for k, v in fingerprint(first.config).items() if k != "seed"}  # replicates differ in seed
    for other in all_results[1:]:
        diffs = differences(base, {k: v for k, v in fingerprint(other.config).items() if k != "seed"})
        if diffs:
            warnings.append(f"{other.name!r} differs from {first.name!r} in:\n{describe(diffs)}")
    return warnings


def write_combined_report(all_results: Sequence[StudyResults], out_dir: Path,
                          own_reports: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """One report.html (and a trials.csv with a ``study`` column) overlaying the fronts and the
    hypervolume histories of several studies; a ValueError when they cannot be compared.
    ``own_reports``: each study's own report.html, linked from the combined one."""
    from boolnas.search.report_html import combined_page

    if len(all_results) < 2:
        raise ValueError("a combined report needs at least two studies: study=a,b")
    warnings = comparability(all_results)
    for w in warnings:
        log.warning("combined report: %s", w)
    out_dir = Path(out_dir)
    table = pd.concat([r.df.assign(study=r.name) for r in all_results], ignore_index=True)
    table = table[["study", *[c for c in table.columns if c != "study"]]]
    paths = {"csv": _write(out_dir / "trials.csv", table.to_csv(index=False)),
             "report": _write(out_dir / "report.html", combined_page(all_results, warnings, out_dir, own_reports))}
    log.info("wrote %s and %s", paths["csv"], paths["report"])
    return paths


def _write(path: Path, text: str) -> Path:
    """Atomic write, readable by everyone (results are shared files)."""
    out = write_text_atomic(path, text)
    os.chmod(out, 0o644)
    return out
