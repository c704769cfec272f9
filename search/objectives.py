"""The objectives of a study: their names, directions and the trial columns that hold them.

A study stores its objective names twice: as Optuna metric names (so optuna-dashboard labels
its axes) and in the ``objectives`` user attr (studies made before metric names were set).
Everything that ranks trials after the search (front, knee, export, reports, logs) reads them
from here, so every configured objective counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from boolnas.search.config import OBJECTIVES

DEFAULT_OBJECTIVES = ("accuracy", "energy_uJ")


def study_objectives(study: optuna.Study) -> tuple[str, ...]:
    """The objective names of ``study``, in the order of its values."""
    names = study.metric_names or study.user_attrs.get("objectives") or DEFAULT_OBJECTIVES
    names = tuple(str(n) for n in names)
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown or len(names) != len(study.directions):
        raise ValueError(f"study {study.study_name!r} records objectives {list(names)} for {len(study.directions)} "
                         f"values; boolnas knows {list(OBJECTIVES)}")
    return names


def columns(objectives: Sequence[str]) -> list[str]:
    """The trial attribute (trials.csv column) of each objective, e.g. latency -> cycles."""
    return [OBJECTIVES[o][1] for o in objectives]


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[o][0] for o in objectives]


def label(objective: str) -> str:
    """A short axis / log label."""
    return {"energy_uJ": "energy (uJ)", "size_bits": "size (bits)", "latency": "latency (cycles)"}.get(objective,
                                                                                                       objective)
