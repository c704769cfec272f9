"""A study is one experiment: the settings that define its results, stored when it is created.

Resuming a study with other settings would put trials measured differently (another data set,
budget, accelerator, ...) into one front. So the settings that can change a trial's results,
its **fingerprint**, are stored with the study, and a run whose settings differ is refused
before any trial, with every differing key listed (old -> new).

Settings that cannot change a trial's results (sampler, n_trials, workers, progress, storage,
seed_presets, ...) may change from run to run; each trial records its sampler and worker.
``budget.num_threads`` and ``budget.device`` are exempt too: they change the order in which
floats are summed, not the experiment, and each trial records them (``threads``, ``device``).

Branching on purpose: ``allow_changed=[budget]`` (setting groups or dotted keys) accepts those
differences. The run's settings become a **variant** of the study, recorded in the study's
``fingerprints`` list; its trials record ``variant`` (its index) and never reuse metrics
measured under other settings (their reuse key carries the variant, search/objective.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from boolnas.search.trial_record import StudyAttr

log = logging.getLogger(__name__)

FINGERPRINT_KEYS = ("space", "data", "budget", "task", "energy", "objectives", "constraints", "seed", "scheduler")
EXEMPT = ("budget.num_threads", "budget.device", "energy.description")  # see the module docstring
ATTR = StudyAttr.FINGERPRINTS  # study user attr: the settings of variant 0 (creation), 1, 2, ...


class SettingsChanged(ValueError):
    """A run's settings differ from the study's (a user error: exit 2)."""


def fingerprint(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The result-defining settings of a composed search config, exempt keys removed."""
    out = {k: resolved.get(k) for k in FINGERPRINT_KEYS}
    flat = flatten(out)
    return unflatten({k: v for k, v in flat.items() if k not in EXEMPT})


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"budget": {"lr": 1}}`` -> ``{"budget.lr": 1}``; lists stay values."""
    if isinstance(tree, Mapping) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every key that differs (a removed key: new None).

    A key the recorded settings lack was added to boolnas after the study was created; new
    settings come with a default that keeps the old behaviour (a convention of conf/), so it is
    not a difference: studies made by an older boolnas still resume."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(a) if a.get(k) != b.get(k)]


def is_allowed(key: str, allow_changed: Sequence[str]) -> bool:
    """``budget`` allows ``budget.lr``; ``budget.lr`` allows only itself."""
    return any(key == a or key.startswith(a + ".") for a in allow_changed)


def check_allow_changed(values: Sequence[str]) -> None:
    """Refuse an ``allow_changed`` entry that names no fingerprint setting (a typo would allow nothing)."""
    for v in values:
        if v.split(".")[0] not in FINGERPRINT_KEYS:
            raise ValueError(f"allow_changed: {v!r} is not a setting that defines a study; use setting groups "
                             f"or dotted keys under {list(FINGERPRINT_KEYS)}")


def variant(study: optuna.Study, resolved: Mapping[str, Any], allow_changed: Sequence[str] = ()) -> int:
    """The variant of ``study`` that a run with ``resolved`` settings adds trials to.

    A new study records these settings as variant 0. A study made before fingerprints were
    stored adopts the config its last run recorded. Settings equal to a recorded variant reuse
    its index; other settings are refused unless every difference from variant 0 is allowed,
    and then become a new variant.
    """
    mine = fingerprint(resolved)
    recorded = study.user_attrs.get(ATTR)
    if not recorded:
        old_config = study.user_attrs.get(StudyAttr.CONFIG)
        has_trials = bool(study.get_trials(deepcopy=False))
        first = fingerprint(old_config) if (has_trials and isinstance(old_config, Mapping)) else mine
        if has_trials:
            log.warning("study %r predates stored settings: its last run's config becomes its fingerprint",
                        study.study_name)
        study.set_user_attr(ATTR, [first])
        recorded = study.user_attrs.get(ATTR)  # another worker may have written it first: theirs holds
    for i, settings in enumerate(recorded):
        if not differences(settings, mine):
            return i
    diffs = differences(recorded[0], mine)
    refused = [d for d in diffs if not is_allowed(d[0], allow_changed)]
    if refused:
        groups = sorted({k.split(".")[0] for k, _, _ in refused})
        raise SettingsChanged(
            f"study {study.study_name!r} was created with other settings; this run differs in:\n"
            f"{describe(refused)}\nRun it with the study's settings, choose a new study=<name>, or add trials "
            f"measured with these settings as a variant of this study with allow_changed=[{','.join(groups)}]")
    study.set_user_attr(ATTR, [*recorded, mine])
    index = len(study.user_attrs[ATTR]) - 1
    log.warning("study %r: settings variant %d, differing from the study's settings in:\n%s\nIts trials reuse no "
                "metrics of other variants", study.study_name, index, describe(diffs))
    return index


def describe(diffs: Sequence[tuple[str, Any, Any]], per_group: int = 4) -> str:
    """One line per differing key (old -> new). A group whose ``name`` changed (another profile,
    data set or budget file) is one line with the count of its other differing values."""
    by_group: dict[str, list[tuple[str, Any, Any]]] = {}
    for d in diffs:
        by_group.setdefault(d[0].split(".")[0], []).append(d)
    lines = []
    for group, items in by_group.items():
        renamed = [d for d in items if d[0] == f"{group}.name"]
        if renamed:
            _, old, new = renamed[0]
            more = len(items) - 1
            lines.append(f"  {group}: {_show(old)} -> {_show(new)}" + (f" ({more} values differ)" if more else ""))
            continue
        lines += [f"  {k}: {_show(o)} -> {_show(n)}" for k, o, n in items[:per_group]]
        if len(items) > per_group:
            lines.append(f"  ... and {len(items) - per_group} more {group} values")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "(unset)" if value is None else repr(value) if isinstance(value, str) else str(value)
