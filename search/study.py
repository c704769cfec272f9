"""The Optuna study: storage, sampler, creation or resumption, and clean-up after dead workers.

A worker that is killed (SIGKILL, power loss) leaves its trial RUNNING. Workers record
``worker = host:pid`` on every trial they ask; on start, a RUNNING trial whose worker ran on
this host and whose process no longer exists is marked FAIL ("worker died"). Only COMPLETE
trials count toward ``n_trials``, so such a trial is never counted, and the pid check is exact
(no heartbeat grace period to wait for, and live workers sharing the study are left alone).
A dead worker on *another* host leaves a RUNNING trial that this check does not touch; it
still never counts as finished.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SamplerConfig, SearchConfig, StorageConfig

log = logging.getLogger(__name__)

WORKER = f"{socket.gethostname()}:{os.getpid()}"


def storage_url(storage: StorageConfig, study_dir: Path) -> str:
    """A human-readable location of the storage (also what optuna-dashboard is given)."""
    if storage.kind == "sqlite":
        return storage.url or f"sqlite:///{study_dir / 'study.db'}"
    if storage.kind == "journal":
        return str(storage.url or study_dir / "journal.log")
    return str(storage.url)


def make_storage(storage: StorageConfig, study_dir: Path) -> optuna.storages.BaseStorage:
    """The configured storage object; local files go in the study's results folder."""
    study_dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(storage, study_dir)
    if storage.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url))
    # sqlite: wait for the lock rather than fail when several workers write at once
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _constraint(trial: FrozenTrial) -> list[float]:
    """Optuna's constraints_func: ``energy - max`` (<= 0 is feasible), recorded per trial."""
    return list(trial.user_attrs.get("constraint", [0.0]))


# Optuna >= 5 reads constraints that trials record with Trial.set_constraint (constraints_func is
# deprecated there); older versions need constraints_func, which reads the same user attr.
HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")


def make_sampler(cfg: SamplerConfig, seed: int, constrained: bool) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded; constraint-aware where the sampler supports it."""
    cons = {"constraints_func": _constraint} if constrained and not HAS_SET_CONSTRAINT else {}
    if cfg.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.n_startup_trials,
                                          multivariate=cfg.multivariate, **cons)
    if cfg.name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=cfg.population_size, **cons)
    if cfg.name == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed, population_size=cfg.population_size, **cons)
    if cfg.name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=cfg.n_startup_trials, **cons)
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(cfg: SearchConfig) -> optuna.Study:
    """Create the study, or load it (resume) when it exists with the same objectives."""
    storage = make_storage(cfg.storage, cfg.study_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=cfg.study, storage=storage, directions=cfg.directions,
                                load_if_exists=True)
    recorded = study.user_attrs.get("objectives")
    if recorded is None:
        study.set_user_attr("objectives", list(cfg.objectives))
    elif list(recorded) != list(cfg.objectives):
        raise ValueError(f"study {cfg.study!r} was created with objectives {recorded}, not {list(cfg.objectives)}; "
                         f"use another study=<name> or the same objectives")
    n_existing = len(study.get_trials(deepcopy=False))
    # Re-seed with the trial count so a resumed study does not replay the first run's proposals.
    study.sampler = make_sampler(cfg.sampler, cfg.seed + n_existing, cfg.max_energy_uJ is not None)
    return study


def load_existing(name: str, storage: StorageConfig, results_dir: Path) -> optuna.Study:
    """An existing study (for reports and export); a missing one is a user error naming the fix."""
    study_dir = Path(results_dir) / name
    if storage.kind != "postgres" and not storage.url and not study_dir.is_dir():
        raise ValueError(f"no study {name!r} in {results_dir}/ (run boolnas-search study={name} first)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=make_storage(storage, study_dir))
    except KeyError:
        raise ValueError(f"storage {storage_url(storage, study_dir)} holds no study {name!r}") from None


def fail_dead_workers(study: optuna.Study) -> int:
    """Mark RUNNING trials of dead workers on this host FAIL; returns how many."""
    host = socket.gethostname()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        whost, _, pid = worker.rpartition(":")
        if whost != host or not pid.isdigit() or _alive(int(pid)):
            continue
        optuna.trial.Trial(study, t._trial_id).set_user_attr("fail_reason", f"worker {worker} died")
        study.tell(t.number, state=TrialState.FAIL)
        n += 1
    if n:
        log.info("marked %d trial(s) of dead workers FAIL", n)
    return n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def enqueue_presets(study: optuna.Study, cfg: SearchConfig) -> list[str]:
    """Enqueue the configured seeds (presets in the space), skipping those already queued or evaluated."""
    seen_keys = {t.user_attrs.get("key") for t in study.get_trials(deepcopy=False)}
    queued: list[str] = []
    for name, genotype in cfg.seeds:
        if genotype.key() in seen_keys:
            continue
        # skip_if_exists: a WAITING/RUNNING/COMPLETE trial with these params already exists
        study.enqueue_trial(cfg.space.params_of(genotype), user_attrs={"seed": name}, skip_if_exists=True)
        queued.append(name)
    return queued


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))
