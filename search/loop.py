"""The worker loop: run trials until the study holds ``n_trials`` COMPLETE trials.

Several workers may run the same command against one storage: each asks a new trial only
while COMPLETE + RUNNING trials stay below the target, so together they stop at the target
(a failed trial frees its slot). Re-running a finished study does no new work. Before each
trial a worker fails and retries the trials of dead workers (search/liveness.py), and it stops
after ``max_consecutive_failures`` failed trials in a row (a broken config must not burn the
whole budget).
"""

from __future__ import annotations

import logging
import random
import sys
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from boolnas.evaluators.accuracy import require_memory, train_genotype
from boolnas.evaluators.data import Dataset, load_dataset
from boolnas.search.config import SearchConfig
from boolnas.search.cpu_share import CpuShare
from boolnas.search.fingerprint import variant
from boolnas.search.liveness import fail_dead_workers, fail_stale
from boolnas.search.objective import Evaluator, TrainFn, run_trial
from boolnas.search.objectives import directions
from boolnas.search.pareto import hypervolume, nondominated
from boolnas.search.proposals import propose
from boolnas.search.report_files import write_reports
from boolnas.search.rungs import promote
from boolnas.search.storage import display_url
from boolnas.search.study import enqueue_presets, open_study
from boolnas.search.trial_record import Attr, StudyAttr, feasible_points, is_feasible
from boolnas.space import PRESETS, Genotype, get_preset

log = logging.getLogger(__name__)
WAIT_S = 2.0  # poll interval while other workers hold the remaining slots


class TooManyFailures(RuntimeError):
    """A worker saw ``max_consecutive_failures`` failed trials in a row."""


def reference_energy(cfg: SearchConfig, evaluator: Evaluator) -> float:
    """The fixed hypervolume reference energy: configured, or 2x the costliest preset's."""
    if cfg.hv_ref_energy_uJ is not None:
        return cfg.hv_ref_energy_uJ
    return 2.0 * max(evaluator.energy(get_preset(p))[Attr.ENERGY] for p in PRESETS)


class Proposer:
    """Enqueues energy-aware proposals (search/proposals.py) when the queue is empty; seeded per
    worker and run, so a replay is reproducible."""

    def __init__(self, cfg: SearchConfig, evaluator: Evaluator, ref: float, done: int) -> None:
        self.cfg, self.evaluator, self.ref = cfg, evaluator, ref
        self.rng = random.Random(cfg.seed * 1_000_003 + cfg.worker_index * 7919 + done)
        self.costs: dict[str, dict] = {}  # genotype key -> energy metrics (drawn again and again in small spaces)

    def cost(self, genotype: Genotype) -> dict:
        key = genotype.key()
        if key not in self.costs:
            self.costs[key] = self.evaluator.energy(genotype)
        return self.costs[key]

    def maybe_enqueue(self, study: optuna.Study) -> None:
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return  # presets, retries or promotions go first
        if self.rng.random() < self.cfg.proposer.explore:
            return  # this one is the sampler's
        asha = self.cfg.scheduler.active
        pick = propose(study, self.cfg.space, self.cfg.proposer, self.cost, self.ref, self.rng,
                       self.cfg.max_energy_uJ, measured=(lambda t: t.user_attrs.get(Attr.RUNG, 0) == 0) if asha
                       else (lambda t: True))
        if pick is not None:
            genotype, gain = pick
            study.enqueue_trial(self.cfg.space.params_of(genotype), user_attrs={Attr.PROPOSED: gain})


def front_size(complete: list[FrozenTrial], objectives: tuple[str, ...]) -> int:
    """Members of the front of every objective among the feasible COMPLETE trials."""
    rows = [t.values for t in complete if is_feasible(t.user_attrs) and t.values is not None]
    return sum(nondominated(rows, directions(objectives)))


def prepare_study(cfg: SearchConfig) -> optuna.Study:
    """Open (create or resume) the study, clean up after dead workers, enqueue the presets."""
    study = open_study(cfg)
    index = variant(study, cfg.resolved, cfg.allow_changed)  # refuses a run whose settings differ
    if StudyAttr.CONFIG not in study.user_attrs:  # the creating run's config: the report's setup summary
        study.set_user_attr(StudyAttr.CONFIG, cfg.resolved)
    if study.metric_names is None:  # optuna-dashboard labels its axes with them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(cfg.objectives))
    study.set_user_attr(StudyAttr.STORAGE, display_url(cfg.storage, cfg.study_dir))
    fail_dead_workers(study)
    fail_stale(study)
    if cfg.seeds:
        queued = enqueue_presets(study, cfg, index)
        if queued:
            log.info("enqueued presets: %s", ", ".join(queued))
    return study


def load_checked_data(cfg: SearchConfig) -> Dataset:
    """The search's dataset, after checking that the budget fits this machine for the presets;
    done before the study is created, so bad data or a budget too large leaves no empty study."""
    data = load_dataset(cfg.data)
    log.info("proxy data: %s", data.describe())
    for name in PRESETS:
        require_memory(get_preset(name), data, cfg.budget)
    return data


def run_search(cfg: SearchConfig, *, data: Dataset | None = None, train_fn: TrainFn = train_genotype,
               write: bool = True, share: CpuShare | None = None,
               before_study: Callable[[], None] | None = None) -> optuna.Study:
    """Create or resume the study of ``cfg`` and run trials until it holds ``cfg.n_trials`` finished.
    ``share``: the machine's CPUs as this worker's trainings may use them (search/cpu_share.py).
    ``before_study``: called once the data is loaded, before the study is opened (a supervised
    worker waits there for its supervisor; search/workers.py)."""
    if data is None:  # before the study: a dataset that does not load must not leave an empty study behind
        try:
            data = load_checked_data(cfg)
        except Exception:
            if before_study is not None:  # a supervisor that refused the same run says so once
                before_study()
            raise
    if before_study is not None:
        before_study()
    study = prepare_study(cfg)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if done >= cfg.n_trials:
        log.info("study %r already holds %d finished trials (n_trials=%d): nothing to do",
                 cfg.study, done, cfg.n_trials)
        if write:
            write_reports(study, cfg.study_dir)
        return study
    evaluator = Evaluator(cfg, data, train_fn, share, variant=variant(study, cfg.resolved, cfg.allow_changed))
    if StudyAttr.HV_REF not in study.user_attrs:
        study.set_user_attr(StudyAttr.HV_REF, reference_energy(cfg, evaluator))
    ref = float(study.user_attrs[StudyAttr.HV_REF])
    log.info("study %r: %d/%d finished, sampler %s, storage %s", cfg.study, done, cfg.n_trials, cfg.sampler.name,
             display_url(cfg.storage, cfg.study_dir))
    try:
        _loop(study, cfg, evaluator, ref, done)
    finally:
        if write:
            try:
                write_reports(study, cfg.study_dir)
            except Exception:  # never mask the loop's own exception (e.g. KeyboardInterrupt)
                log.exception("could not write the reports; run boolnas-report study=%s", cfg.study)
    return study


def _loop(study: optuna.Study, cfg: SearchConfig, evaluator: Evaluator, ref: float, done: int) -> None:
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    cache: dict[str, FrozenTrial] = {}
    failures: list[str] = []  # reasons of the failed trials in a row
    proposer = Proposer(cfg, evaluator, ref, done) if cfg.proposer.active and len(cfg.objectives) == 2 else None
    bar = tqdm(total=cfg.n_trials, initial=done, desc=f"search[{cfg.study}]", unit="trial", file=sys.stderr,
               disable=not cfg.progress, dynamic_ncols=True)
    with bar, logging_redirect_tqdm():
        while True:
            trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            for t in complete:
                cache.setdefault(t.user_attrs.get(Attr.KEY, ""), t)
            bar.n = len(complete)
            if cfg.progress:
                bar.set_postfix(front=front_size(complete, cfg.objectives),
                                hv=f"{hypervolume(feasible_points([t.user_attrs for t in complete]), ref):.4f}")
            if len(complete) >= cfg.n_trials:
                break
            if fail_dead_workers(study) + fail_stale(study):
                continue  # their slots are free again, and their retries wait in the queue
            if len(trials) >= cfg.n_trials:  # the remaining slots are held by RUNNING trials of other workers
                time.sleep(WAIT_S)
                continue
            # multi-fidelity: a candidate that earned a higher rung goes first; else, maybe, the
            # energy-aware proposal (search/proposals.py); else the sampler
            if promote(study, cfg.scheduler) is None and proposer is not None:
                proposer.maybe_enqueue(study)
            t = run_trial(study, evaluator, cache)
            _log_trial(t, cfg.objectives)
            if t.state == TrialState.PRUNED:  # a surplus trial given back (search/objective.py): not a failure
                continue
            failures = failures + [t.user_attrs.get(Attr.FAIL_REASON, "?")] if t.state == TrialState.FAIL else []
            if len(failures) >= cfg.max_consecutive_failures:
                raise TooManyFailures(
                    f"{len(failures)} trials failed in a row "
                    f"(max_consecutive_failures={cfg.max_consecutive_failures}); "
                    f"last reason: {failures[-1]}. Fix the configuration (trials.csv lists every reason) "
                    f"or raise max_consecutive_failures")


def _log_trial(t: FrozenTrial, objectives: tuple[str, ...]) -> None:
    a = t.user_attrs
    name = a.get(Attr.PRESET) or a.get(Attr.CANDIDATE) or a.get(Attr.KEY, "?")
    if Attr.RUNG in a:
        name = f"{name} r{a[Attr.RUNG]}"
    if t.state != TrialState.COMPLETE:
        log.info("trial %d %s %s: %s", t.number, t.state.name, name, a.get(Attr.FAIL_REASON, ""))
        return
    how = (f"reused trial {a[Attr.REUSED_FROM]}" if Attr.REUSED_FROM in a
           else "over energy budget, not trained" if not is_feasible(a)
           else f"trained {a.get(Attr.TRAIN_TIME, 0.0):.1f} s")
    extra = "".join(f"  {o} {t.values[i]:.4g}" for i, o in enumerate(objectives) if i >= 2)  # after accuracy, energy
    log.info("trial %d %-18s acc %.4f  energy %8.1f uJ%s  (%s)", t.number, name, a[Attr.ACCURACY], a[Attr.ENERGY],
             extra, how)
