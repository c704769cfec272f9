"""A study's results files: trials.csv, pareto.html and report.html (all written atomically).

Everything is derived from the study's storage, so the files can be regenerated at any time
(``boolnas-report study=<name>``), also while workers are still running. Several studies can
be put side by side in one combined report (``boolnas-report study=a,b``,
search/report_files.py ``write_combined_report``).

This module holds what the files say (the trials table, the front over every objective, the
knee, the hypervolume history); search/report_figures.py draws it, search/report_html.py
lays out the page and search/report_files.py writes the files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from boolnas.search.objectives import columns, directions, study_objectives
from boolnas.search.pareto import hypervolume, knee_of, nondominated
from boolnas.search.rungs import RungAgreement, SchedulerConfig, rung_agreement
from boolnas.search.trial_record import COLUMNS, Attr, StudyAttr
from boolnas.space import Genotype

log = logging.getLogger(__name__)

GENOTYPE_FIELDS = tuple(Genotype.__dataclass_fields__)
METRIC_COLUMNS = COLUMNS  # the trial record's columns (search/trial_record.py), after the genotype's fields


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, genotype fields, objectives, energy split, is_pareto, preset."""
    rows: list[dict[str, Any]] = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "preset": a.get(Attr.PRESET) or ""}
        genotype = a.get(Attr.GENOTYPE) or {}
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
    candidates = feasible_mask(df) & df[cols].notna().all(axis=1)
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
    ok = feasible_mask(df)
    for i, row in df.sort_values("number").iterrows():
        if ok[i]:
            who = row["candidate"] if isinstance(row.get("candidate"), str) else ("trial", row["number"])
            rung = int(row["rung"]) if pd.notna(row.get("rung")) else 0
            if who not in best or rung >= best[who][0]:
                best[who] = (rung, (float(row[Attr.ACCURACY]), float(row[Attr.ENERGY])))
        out.append((int(row["number"]), hypervolume([p for _, p in best.values()], ref_energy)))
    return out


def knee_trial(df: pd.DataFrame, objectives: Sequence[str]) -> int | None:
    """The trial number of the front's knee over every objective (search/pareto.py ``knee_of``)."""
    front = df[df["is_pareto"]]
    k = knee_of(front[columns(objectives)].astype(float).values.tolist(), directions(objectives))
    return None if k is None else int(front.iloc[k]["number"])


def feasible_mask(df: pd.DataFrame) -> pd.Series:
    """COMPLETE trials that were trained: not over the energy budget (None counts as feasible; the
    frame form of search/trial_record.py ``is_feasible``)."""
    return (df["state"] == "COMPLETE") & (df[Attr.FEASIBLE] != False)  # noqa: E712


def over_budget_mask(df: pd.DataFrame) -> pd.Series:
    """COMPLETE trials over the energy budget: recorded with accuracy 0, never trained."""
    return (df["state"] == "COMPLETE") & (df[Attr.FEASIBLE] == False)  # noqa: E712


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
    ref = study.user_attrs.get(StudyAttr.HV_REF)
    if ref is None:
        energies = df[Attr.ENERGY].dropna()
        ref = float(energies.max()) * 2 if len(energies) else 1.0
    front = set(int(n) for n in df.loc[df["is_pareto"], "number"])
    layers = {t.number: list(t.user_attrs.get(Attr.LAYERS) or []) for t in study.get_trials(deepcopy=False)
              if t.number in front}
    return StudyResults(name=study.study_name, df=df, objectives=objectives,
                        config=dict(study.user_attrs.get(StudyAttr.CONFIG) or {}), ref_energy=float(ref),
                        knee=knee_trial(df, objectives), layers=layers,
                        variants=list(study.user_attrs.get(StudyAttr.FINGERPRINTS) or []),
                        rungs=_rung_agreement(study))


def _rung_agreement(study: optuna.Study) -> list[RungAgreement]:
    """The in-study fidelity of a multi-fidelity study (empty without a scheduler)."""
    scheduler = SchedulerConfig.from_dict(dict((study.user_attrs.get(StudyAttr.CONFIG) or {}).get("scheduler") or {}))
    if not scheduler.active:
        return []
    return rung_agreement(study.get_trials(deepcopy=False), scheduler)
