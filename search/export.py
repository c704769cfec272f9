"""Export a study's chosen architectures as arch YAMLs that ``boolnas-train arch=<file>`` accepts.

Each file holds the genotype, the metrics the search measured for it, the settings they were
measured under (data, proxy budget, energy profile, target task), the ``boolnas-train`` line that
reproduces the proxy accuracy and the one that trains it in full. Selection (distinct
genotypes only, feasible COMPLETE trials only):

- ``pareto``: ``top_k`` members of the study's front (every configured objective) spread
  evenly along it by energy (both ends included), so the files span the trade-off;
- ``knee``: the knee of the front (over every objective, search/pareto.py ``knee_of``) first,
  then the front members nearest to it in energy order;
- ``min_energy`` / ``max_accuracy``: the ``top_k`` cheapest / most accurate trials.

A trained network (``boolnas-export weights=<model.pt>``) is exported for deployment by
evaluators/deploy/ (ONNX, TorchScript); search/cli/export.py routes between the two.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from boolnas.search.conf_dir import CONF_DIR
from boolnas.search.fingerprint import ATTR as FINGERPRINTS
from boolnas.search.fingerprint import fingerprint
from boolnas.search.objectives import DEFAULT_OBJECTIVES, columns, directions, study_objectives
from boolnas.search.pareto import knee_of
from boolnas.search.report import feasible_mask, trials_frame
from boolnas.search.trial_record import EXPORTED, Attr, StudyAttr
from boolnas.space import Genotype
from boolnas.space.arch_io import dump_arch
from boolnas.space.fields import INTEGER, field_value, is_number, one_of

log = logging.getLogger(__name__)
SELECTIONS = ("pareto", "knee", "min_energy", "max_accuracy")
EXEMPT_KEYS = {"budget": ("num_threads", "device")}  # where to train is the user's choice, not the recipe's
EXPORTED_METRICS = EXPORTED  # the trial record's exported metrics (search/trial_record.py)


def check_selection(top_k: Any, how: Any) -> None:
    """Refuse a ``select`` (``how``) that is not one of :data:`SELECTIONS`, then a ``top_k`` that
    is not a positive integer: the checks of :func:`select`, which boolnas-export makes first."""
    one_of(how, "select", SELECTIONS)
    field_value(top_k, "top_k", INTEGER, low=1)


def select(df: pd.DataFrame, top_k: int, how: str, objectives: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of ``trials_frame`` to export, in export order (``objectives``: the study's)."""
    check_selection(top_k, how)
    ok = df[feasible_mask(df)].drop_duplicates(Attr.KEY)
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
    objectives = objectives or DEFAULT_OBJECTIVES
    k = knee_of(front[columns(objectives)].astype(float).values.tolist(), directions(objectives))
    assert k is not None  # the front of a non-empty set is not empty
    order = sorted(range(len(front)), key=lambda i: (abs(i - k), i))
    return front.iloc[order[:top_k]]


def export(study: optuna.Study, out_dir: Path, top_k: int, how: str) -> list[Path]:
    """Write the selected architectures to ``out_dir/NN_<how>_trial<number>.yaml``."""
    df = trials_frame(study)
    rows = select(df, top_k, how, study_objectives(study))
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    settings = study.user_attrs.get(FINGERPRINTS) or [fingerprint(study.user_attrs.get(StudyAttr.CONFIG) or {})]
    paths = []
    for rank, (_, row) in enumerate(rows.iterrows(), start=1):
        t = trials[int(row["number"])]
        path = Path(out_dir) / f"{rank:02d}_{how}_trial{t.number}.yaml"
        measured = settings[int(t.user_attrs.get(Attr.VARIANT, 0))]
        extra: dict[str, Any] = {
            "study": study.study_name,
            "trial": t.number,
            "preset": t.user_attrs.get(Attr.PRESET),
            "key": t.user_attrs.get(Attr.KEY),
            "metrics": {k: _plain(t.user_attrs.get(k)) for k in EXPORTED_METRICS if k in t.user_attrs},
            "measured_with": {k: measured.get(k) for k in ("data", "budget", "energy", "task", "seed")},
            "reproduce": train_command(path, measured),
            "train": train_command(path, measured, budget="full"),
        }
        paths.append(dump_arch(path, Genotype.from_dict(t.user_attrs[Attr.GENOTYPE]), extra))
    log.info("exported %d architecture(s) to %s", len(paths), out_dir)
    return paths


def train_command(path: Path, settings: Mapping[str, Any], budget: str | None = None) -> str:
    """The ``boolnas-train`` line for ``path`` under a study's settings: its data and seed, and
    its proxy budget (the named budget file plus every value that differs from it), or the
    named ``budget`` file (``full``) as it is."""
    args = [f"arch={path}", *_group_args("data", dict(settings.get("data") or {}))]
    if budget is None:
        args += _group_args("budget", dict(settings.get("budget") or {}))
    else:
        args.append(f"budget={budget}")
    if settings.get("seed") is not None:
        args.append(f"seed={settings['seed']}")
    return " ".join(["boolnas-train", *args])


def _group_args(group: str, values: Mapping[str, Any]) -> list[str]:
    """``group=<name>`` plus ``group.key=value`` for the values its conf file does not hold."""
    name = str(values.get("name", ""))
    conf = Path(CONF_DIR) / group / f"{name}.yaml"
    skip = EXEMPT_KEYS.get(group, ())
    if not name or not conf.is_file():  # not a shipped file: every value explicitly
        return [f"{group}.{k}={_override(v)}" for k, v in values.items() if k not in skip]
    base = yaml.safe_load(conf.read_text()) or {}
    return [f"{group}={name}"] + [f"{group}.{k}={_override(v)}" for k, v in values.items()
                                  if k != "name" and k not in skip and base.get(k) != v]


def _override(v: Any) -> str:
    """A Hydra override value (null, true, lists) that parses back to ``v``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_override(x) for x in v) + "]"
    return str(v)


def _plain(v: Any) -> Any:
    return float(v) if is_number(v) else v
