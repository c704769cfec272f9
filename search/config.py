"""The search's typed configuration: validated once at the entry point, before any trial runs.

Hydra composes conf/search.yaml; :func:`check_group_choices` refuses an unknown config-group
value (``sampler=foo``) with the list of allowed ones, and :meth:`SearchConfig.from_cfg`
turns the composed config into typed objects (space, budget, data, task, profile), so a bad
value fails with a message naming it and exit code 2 instead of crashing trial 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from boolnas.evaluators.accuracy import load_model
from boolnas.evaluators.data import DataConfig, check_dataset
from boolnas.evaluators.energy import HardwareProfile
from boolnas.evaluators.training import Budget
from boolnas.search.conf_dir import check_group_choices as _check_group_choices
from boolnas.search.fingerprint import check_allow_changed
from boolnas.search.proposals import ProposerConfig
from boolnas.search.rungs import SchedulerConfig
from boolnas.search.storage import masked, resolve_url
from boolnas.search.trial_record import Attr
from boolnas.space import PRESETS, Genotype, Task, get_preset
from boolnas.space.arch_io import load_arch
from boolnas.space.fields import BOOL, INTEGER, NUMBER, Check, check_fields, field_value, options_of
from boolnas.space.records import FromConf, shipped_conf
from boolnas.space.sampling import SearchSpace

# objective name -> (direction, metric key in a trial's record: search/trial_record.py)
OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("maximize", Attr.ACCURACY),
    "energy_uJ": ("minimize", Attr.ENERGY),
    "ops": ("minimize", Attr.OPS),
    "size_bits": ("minimize", Attr.SIZE_BITS),
    "latency": ("minimize", Attr.CYCLES),
}
SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random")
STORAGES = ("sqlite", "journal", "postgres", "memory")
GROUPS = ("space", "sampler", "scheduler", "proposer", "storage", "data", "budget", "energy", "task")
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SamplerConfig(FromConf):
    """Which Optuna sampler, and its options (seeded by the search's ``seed``). Every value comes
    from conf/sampler/*.yaml (samplers made in code start from one: :meth:`from_conf`); options a
    file leaves out because its sampler does not use them are those of conf/sampler/tpe.yaml (the
    search's default). ``population_size`` keeps a default: tpe.yaml leaves it out (only nsga2.yaml
    and nsga3.yaml set it), so a sampler that does not use it carries the value it always had."""

    CONF_GROUP: ClassVar[str] = "sampler"

    name: str
    n_startup_trials: int
    multivariate: bool
    population_size: int = 16

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplerConfig:
        out = cls(**{**shipped_conf("sampler", "tpe"), **options_of(cls, data, "sampler")})
        check_fields(out, "sampler", name=SAMPLERS, n_startup_trials=Check(INTEGER, 0, expected="an integer >= 0"),
                     population_size=Check(INTEGER, 2))
        if out.name == "gp":
            try:
                import scipy  # noqa: F401  (Optuna's GPSampler needs it)
            except ImportError:
                raise ValueError("sampler=gp needs scipy: pip install scipy, or pick another sampler") from None
        return out


@dataclass(frozen=True)
class StorageConfig(FromConf):
    """Where the study lives (search/storage.py) and how dead workers are detected.

    ``heartbeat_interval`` (seconds, RDB storages: sqlite, postgres): a running trial records a
    heartbeat that often; one without a heartbeat for ``grace_period`` seconds is failed by any
    worker and retried (at most ``max_retry`` times per original trial). 0 turns heartbeats off.

    Every value comes from conf/storage/*.yaml (storages made in code start from one:
    :meth:`from_conf`); options a mapping leaves out are those of conf/storage/sqlite.yaml (the
    commands' default).
    """

    CONF_GROUP: ClassVar[str] = "storage"

    kind: str
    url: str | None
    heartbeat_interval: int
    grace_period: int
    max_retry: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StorageConfig:
        data = {**shipped_conf("storage", "sqlite"), **options_of(cls, data, "storage")}
        url = data["url"]
        if url is not None and not isinstance(url, str):
            raise ValueError(f"storage.url must be a string, got {type(url).__name__}")
        out = cls(kind=str(data["kind"]), url=url or None,
                  **{k: data[k] for k in ("heartbeat_interval", "grace_period", "max_retry")})
        check_fields(out, "storage", kind=STORAGES, **dict.fromkeys(("heartbeat_interval", "grace_period", "max_retry"),
                                                                     Check(INTEGER, 0)))
        if out.heartbeat_interval and out.grace_period <= out.heartbeat_interval:
            raise ValueError(f"storage.grace_period ({out.grace_period} s) must exceed storage.heartbeat_interval "
                             f"({out.heartbeat_interval} s), or live trials would be failed as stale")
        if out.kind == "postgres":
            resolve_url(out, Path("."))  # a missing or non-PostgreSQL URL fails here, before any trial
        return out


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search worker needs, typed and validated."""

    study: str
    n_trials: int
    seed: int
    objectives: tuple[str, ...]
    max_energy_uJ: float | None
    results_dir: Path
    seeds: tuple[tuple[str, Genotype], ...]  # (name, genotype) enqueued first
    zero_cost: bool
    hv_ref_energy_uJ: float | None
    progress: bool
    workers: int  # worker processes this command starts on the study (search/workers.py)
    worker_index: int  # this worker's index among parallel ones (varies the sampler's seed)
    max_consecutive_failures: int  # a worker stops after this many failed trials in a row
    allow_changed: tuple[str, ...]  # settings that may differ from the study's (search/fingerprint.py)
    space: SearchSpace
    space_dict: dict[str, Any]
    sampler: SamplerConfig
    scheduler: SchedulerConfig  # multi-fidelity (search/rungs.py); name none: one budget for all
    proposer: ProposerConfig  # energy-aware proposals (search/proposals.py); name none: the sampler only
    storage: StorageConfig
    data: DataConfig
    budget: Budget
    profile: HardwareProfile
    task: Task
    resolved: dict[str, Any]  # the whole composed config (storage password masked), for the report

    @property
    def study_dir(self) -> Path:
        return self.results_dir / self.study

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[o][0] for o in self.objectives]

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> SearchConfig:
        """Validate a composed config (a plain dict, e.g. ``OmegaConf.to_container(cfg)``)."""
        study = str(cfg.get("study", ""))
        if not STUDY_NAME.match(study):
            raise ValueError(f"study={study!r} is not a valid study name (letters, digits, '_', '-', '.')")
        n_trials = field_value(cfg.get("n_trials"), "n_trials", INTEGER, low=1)
        seed = field_value(cfg.get("seed"), "seed", INTEGER, low=0)
        objectives = _objectives(cfg.get("objectives"))
        constraints = dict(cfg.get("constraints") or {})
        unknown = sorted(set(constraints) - {"max_energy_uJ"})
        if unknown:
            raise ValueError(f"unknown constraint(s) {unknown}; allowed: ['max_energy_uJ']")
        max_energy = _positive_or_none("constraints.max_energy_uJ", constraints.get("max_energy_uJ"))
        hv_ref = _positive_or_none("hv_ref_energy_uJ", cfg.get("hv_ref_energy_uJ"))
        for flag in ("zero_cost", "progress"):
            field_value(cfg.get(flag, True), flag, BOOL)
        workers = field_value(cfg.get("workers", 1), "workers", INTEGER, low=1,
                              expected="a positive integer or auto")
        if workers > 1 and dict(cfg["storage"]).get("kind") == "memory":
            raise ValueError("storage=memory keeps the study inside one process: use workers=1, or a storage "
                             "that workers share (sqlite, journal, postgres)")
        worker_index = field_value(cfg.get("worker_index", 0), "worker_index", INTEGER, low=0)
        max_failures = field_value(cfg.get("max_consecutive_failures", 5), "max_consecutive_failures", INTEGER, low=1)
        allow_changed = cfg.get("allow_changed") or ()
        if isinstance(allow_changed, str) or not isinstance(allow_changed, Sequence):
            raise ValueError(f"allow_changed must be a list of settings, e.g. [budget] or [budget.lr], got "
                             f"{allow_changed!r}")
        allow_changed = tuple(str(a) for a in allow_changed)
        check_allow_changed(allow_changed)
        space_dict = dict(cfg["space"])
        scheduler = SchedulerConfig.from_dict(dict(cfg.get("scheduler") or {}))
        scheduler.check_budget(Budget.from_dict(dict(cfg["budget"])))
        space = SearchSpace.from_config(space_dict)
        return cls(
            study=study,
            n_trials=n_trials,
            seed=seed,
            objectives=objectives,
            max_energy_uJ=max_energy,
            results_dir=Path(str(cfg.get("results_dir") or "results")),
            seeds=_seeds(cfg.get("seed_presets", True), space),
            zero_cost=bool(cfg.get("zero_cost", True)),
            hv_ref_energy_uJ=hv_ref,
            progress=bool(cfg.get("progress", True)),
            workers=workers,
            worker_index=worker_index,
            max_consecutive_failures=max_failures,
            allow_changed=allow_changed,
            space=space,
            space_dict=space_dict,
            sampler=SamplerConfig.from_dict(cfg["sampler"]),
            scheduler=scheduler,
            proposer=ProposerConfig.from_dict(dict(cfg.get("proposer") or {})),
            storage=StorageConfig.from_dict(cfg["storage"]),
            data=_data_present(DataConfig.from_dict(dict(cfg["data"]))),
            budget=_teacher_loads(Budget.from_dict(dict(cfg["budget"]))),
            profile=HardwareProfile.from_dict(dict(cfg["energy"])),
            task=Task.from_dict(dict(cfg["task"])),
            resolved=_without_password(cfg),
        )


def _seeds(value: Any, space: SearchSpace) -> tuple[tuple[str, Genotype], ...]:
    """``true``: the presets the space contains; ``false``: none; a list: presets or arch YAMLs."""
    if value is True:
        return tuple((n, get_preset(n)) for n in PRESETS if space.contains(get_preset(n)))
    if value is False or value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"seed_presets must be true, false or a list of preset names / arch YAML paths, got {value!r}")
    out = []
    for ref in value:
        name, genotype = load_arch(str(ref))
        if not space.contains(genotype):
            raise ValueError(f"seed_presets: {ref!r} is not a point of the configured space; widen the space")
        out.append((name, genotype))
    return tuple(out)


def _objectives(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"objectives must be a non-empty list drawn from {list(OBJECTIVES)}, got {value!r}")
    names = tuple(str(v) for v in value)
    bad = [n for n in names if n not in OBJECTIVES]
    if bad:
        raise ValueError(f"unknown objective(s) {bad}; use names from {list(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"objectives {list(names)} name one objective twice")
    if names[:2] != ("accuracy", "energy_uJ"):
        raise ValueError(f"objectives must start with [accuracy, energy_uJ] (extra ones follow), got {list(names)}")
    return names


def _without_password(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config as recorded on the study and shown in reports: storage passwords masked."""
    out = dict(cfg)
    storage = dict(out.get("storage") or {})
    if storage.get("url"):
        storage["url"] = masked(str(storage["url"]))
    out["storage"] = storage
    return out


def _data_present(data: DataConfig) -> DataConfig:
    """The dataset's files must be in place before the study is created (a few stat calls)."""
    check_dataset(data)
    return data


def _teacher_loads(budget: Budget) -> Budget:
    """A distillation teacher must load before any trial (every trial would fail on it)."""
    if budget.kd_teacher:
        load_model(budget.kd_teacher)
    return budget


def _positive_or_none(name: str, value: Any) -> float | None:
    value = field_value(value, name, NUMBER, low=0, low_open=True, high=math.inf, high_open=True, optional=True,
                        expected="a positive number or null")
    return None if value is None else float(value)


def check_group_choices(argv: Sequence[str], conf_dir: str | Path, groups: Sequence[str] = GROUPS) -> None:
    """Refuse ``group=value`` overrides whose value has no conf/<group>/<value>.yaml (the search's
    groups by default); see :func:`search.conf_dir.check_group_choices`."""
    _check_group_choices(argv, conf_dir, groups)
