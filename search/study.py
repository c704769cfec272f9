"""The Optuna study: sampler, creation or resumption, and the presets enqueued first.

Where it is stored: search/storage.py; dead workers and retries: search/liveness.py.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from boolnas.search.config import SamplerConfig, SearchConfig, StorageConfig
from boolnas.search.liveness import MAX_RETRY_ATTR
from boolnas.search.storage import LOCAL_FILES, display_url, is_local_file, make_storage
from boolnas.search.trial_record import Attr, StudyAttr

log = logging.getLogger(__name__)

def _constraint(trial: FrozenTrial) -> list[float]:
    """Optuna's constraints_func: ``energy - max`` (<= 0 is feasible), recorded per trial."""
    return list(trial.user_attrs.get(Attr.CONSTRAINT, [0.0]))


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
    recorded = study.user_attrs.get(StudyAttr.OBJECTIVES)
    if recorded is None:
        study.set_user_attr(StudyAttr.OBJECTIVES, list(cfg.objectives))
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


INTERRUPTED = "interrupted"  # the fail_reason of a trial ended by Ctrl-C / SIGTERM (search/objective.py)
PENDING_OR_DONE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)


def enqueue_presets(study: optuna.Study, cfg: SearchConfig, variant: int = 0) -> list[str]:
    """Enqueue the configured seeds (presets in the space) that the study has not evaluated yet.

    A seed is left alone while a trial of its genotype is waiting, running or complete (a retry
    that search/liveness.py queued for a dead worker's trial counts: no double enqueue). A seed
    whose trials all ended without a verdict on the candidate is enqueued again: interrupted
    (Ctrl-C / SIGTERM, fail_reason "interrupted") or given back unrun (PRUNED). One that failed
    for a reason of its own (diverged training, an exception) is not: it would fail the same way
    on every run; nor one whose workers died more than ``storage.max_retry`` + 1 times (the
    retries liveness.py allows). Every decision is taken by genotype (its key, or for trials that
    have not started, their fixed parameters) and settings ``variant`` (search/fingerprint.py): a
    new variant measures the presets again, under its own settings."""
    trials = study.get_trials(deepcopy=False)
    max_retry = int(study.user_attrs.get(MAX_RETRY_ATTR, cfg.storage.max_retry))
    queued: list[str] = []
    done: set[str] = set()  # genotypes enqueued by this call (two seeds may be one genotype)
    for name, genotype in cfg.seeds:
        params = cfg.space.params_of(genotype)
        mine = [t for t in trials if _is_genotype(t, genotype.key(), params, variant)]
        if genotype.key() in done or any(t.state in PENDING_OR_DONE for t in mine):
            continue
        failed = [t for t in mine if t.state == TrialState.FAIL and t.user_attrs.get(Attr.FAIL_REASON) != INTERRUPTED]
        lost = [t for t in failed if t.user_attrs.get(Attr.WORKER_LOST)]
        if len(failed) > len(lost) or len(lost) > max_retry:
            reasons = "; ".join(sorted({str(t.user_attrs.get(Attr.FAIL_REASON, "?")) for t in failed}))
            log.info("preset %s is not enqueued again: its trial(s) %s failed (%s)", name,
                     ", ".join(str(t.number) for t in failed), reasons)
            continue
        if mine:
            how = "were interrupted" + (" or lost their worker" if lost else "")
            log.info("preset %s enqueued again: its trial(s) %s %s before it was evaluated", name,
                     ", ".join(str(t.number) for t in mine), how)
        study.enqueue_trial(params, user_attrs={Attr.SEED: name})
        done.add(genotype.key())
        queued.append(name)
    return queued


def _is_genotype(trial: FrozenTrial, key: str, params: dict[str, object], variant: int) -> bool:
    """Whether ``trial`` is (or was to be) an evaluation of the genotype with ``key`` / ``params``
    under settings ``variant``. The reuse key carries the variant and the rung after the genotype
    key (``<key>@v<n>@r<k>``, search/objective.py); a trial that has not started yet is matched
    by its fixed parameters (whichever variant runs it measures it under its own settings)."""
    recorded = trial.user_attrs.get(Attr.KEY)
    if recorded is not None:
        base, *tags = str(recorded).split("@")
        recorded_variant = next((int(t[1:]) for t in tags if t.startswith("v")), 0)
        return base == key and recorded_variant == variant
    return dict(trial.system_attrs.get("fixed_params") or trial.params) == params


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))
