"""The Optuna study: sampler, creation or resumption, and the presets enqueued first.

Where it is stored: search/storage.py; dead workers and retries: search/liveness.py.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SamplerConfig, SearchConfig, StorageConfig
from search.liveness import MAX_RETRY_ATTR
from search.storage import LOCAL_FILES, display_url, is_local_file, make_storage

log = logging.getLogger(__name__)

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
        # constant_liar: parallel workers see each other's running trials as bad results, so they
        # spread out instead of proposing the same point (no effect with one worker)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.n_startup_trials,
                                              multivariate=cfg.multivariate, constant_liar=True, **cons)
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
    study.set_user_attr(MAX_RETRY_ATTR, cfg.storage.max_retry)
    recorded = study.user_attrs.get("objectives")
    if recorded is None:
        study.set_user_attr("objectives", list(cfg.objectives))
    elif list(recorded) != list(cfg.objectives):
        raise ValueError(f"study {cfg.study!r} was created with objectives {recorded}, not {list(cfg.objectives)}; "
                         f"use another study=<name> or the same objectives")
    n_existing = len(study.get_trials(deepcopy=False))
    # Re-seed with the trial count so a resumed study does not replay the first run's proposals,
    # and with the worker index so parallel workers do not propose the same candidates.
    seed = cfg.seed + n_existing + 100_003 * cfg.worker_index
    study.sampler = make_sampler(cfg.sampler, seed, cfg.max_energy_uJ is not None)
    return study


def load_existing(name: str, storage: StorageConfig, results_dir: Path) -> optuna.Study:
    """An existing study (for reports and export); a missing one is a user error naming the fix."""
    study_dir = Path(results_dir) / name
    # a local storage file must exist: opening a missing one would create an empty database
    if is_local_file(storage) and not (study_dir / LOCAL_FILES[storage.kind]).is_file():
        raise ValueError(f"no study {name!r} in {results_dir}/ (run boolnas-search study={name} first)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=make_storage(storage, study_dir))
    except KeyError:
        raise ValueError(f"storage {display_url(storage, study_dir)} holds no study {name!r}") from None


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
