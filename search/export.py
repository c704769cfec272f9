"""Export a study's chosen architectures as arch YAMLs that ``boolnas-train arch=<file>`` accepts.

Each file holds the genotype, the metrics the search measured for it and the command that
trains it in full. Selection (distinct genotypes only, feasible COMPLETE trials only):

- ``pareto``: ``top_k`` members of the accuracy / energy front spread evenly along it
  (both ends included), so the files span the trade-off;
- ``knee``: the knee of the front first, then the front members nearest to it;
- ``min_energy`` / ``max_accuracy``: the ``top_k`` cheapest / most accurate trials.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from search.pareto import knee
from search.report import trials_frame
from space import Genotype
from space.arch_io import dump_arch

log = logging.getLogger(__name__)
SELECTIONS = ("pareto", "knee", "min_energy", "max_accuracy")
EXPORTED_METRICS = ("accuracy", "energy_uJ", "compute_uJ", "sram_uJ", "dram_uJ", "cycles", "ops", "size_bits",
                    "train_time_s")


def select(df: pd.DataFrame, top_k: int, how: str) -> pd.DataFrame:
    """The rows of ``trials_frame`` to export, in export order."""
    if how not in SELECTIONS:
        raise ValueError(f"select={how!r} is unknown; use one of {list(SELECTIONS)}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    ok = df[(df["state"] == "COMPLETE") & (df["feasible"] != False)].drop_duplicates("key")  # noqa: E712
    if ok.empty:
        raise ValueError("the study holds no feasible COMPLETE trial to export yet")
    if how == "min_energy":
        return ok.sort_values(["energy_uJ", "accuracy"], ascending=[True, False]).head(top_k)
    if how == "max_accuracy":
        return ok.sort_values(["accuracy", "energy_uJ"], ascending=[False, True]).head(top_k)
    front = ok[ok["is_pareto"]].sort_values("energy_uJ")
    if how == "pareto":
        n = len(front)
        if top_k >= n:
            return front
        picks = sorted({round(i * (n - 1) / (top_k - 1)) for i in range(top_k)}) if top_k > 1 else [n - 1]
        return front.iloc[picks]
    points = list(zip(front["accuracy"].astype(float), front["energy_uJ"].astype(float)))
    k = knee(points)
    order = sorted(range(len(front)), key=lambda i: (abs(i - k), i))
    return front.iloc[order[:top_k]]


def export(study: optuna.Study, out_dir: Path, top_k: int, how: str) -> list[Path]:
    """Write the selected architectures to ``out_dir/NN_<how>_trial<number>.yaml``."""
    df = trials_frame(study)
    rows = select(df, top_k, how)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    paths = []
    for rank, (_, row) in enumerate(rows.iterrows(), start=1):
        t = trials[int(row["number"])]
        path = Path(out_dir) / f"{rank:02d}_{how}_trial{t.number}.yaml"
        extra: dict[str, Any] = {
            "study": study.study_name,
            "trial": t.number,
            "preset": t.user_attrs.get("preset"),
            "key": t.user_attrs.get("key"),
            "metrics": {k: _plain(t.user_attrs.get(k)) for k in EXPORTED_METRICS if k in t.user_attrs},
            "train": f"boolnas-train arch={path} budget=full",
        }
        paths.append(dump_arch(path, Genotype.from_dict(t.user_attrs["genotype"]), extra))
    log.info("exported %d architecture(s) to %s", len(paths), out_dir)
    return paths


def _plain(v: Any) -> Any:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
