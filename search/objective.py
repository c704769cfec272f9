"""One trial: sample a genotype, cost its energy on the target task, train it on the proxy task.

Energy first, because it is cheap (pure arithmetic): a candidate over ``max_energy_uJ`` is
never trained. It is told COMPLETE with the penalty accuracy 0 and its real energy, plus the
``constraint`` user attr (energy - max > 0). Why not PRUNED: Optuna's multi-objective samplers
(TPE, NSGA-II/III, GP) learn only from COMPLETE trials, so a pruned candidate would teach
them nothing and they would keep proposing the same over-budget region; told as an infeasible
COMPLETE trial, constraint-aware samplers rank it below every feasible one, and the penalty
keeps the rest away. Such trials are cheap, so letting them count toward ``n_trials`` also
bounds the run when the budget is tight. Reports leave them off the Pareto front.

A genotype already evaluated in the study (same key among COMPLETE trials) is not trained
again: its metrics are copied (``reused_from`` names the source trial). Workers running at the
same time agree on who trains a genotype (search/claims.py); the others wait and reuse.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from boolnas.evaluators.accuracy import build_for, proxy_task, train_genotype
from boolnas.evaluators.data import Dataset
from boolnas.evaluators.energy import estimate
from boolnas.evaluators.zero_cost import zero_cost_scores
from boolnas.search.claims import SameGenotypeFailed, claim_or_reuse
from boolnas.search.config import OBJECTIVES, SearchConfig
from boolnas.search.cpu_share import CpuShare
from boolnas.search.deferred_signals import interrupts_deferred
from boolnas.search.liveness import WORKER, WORKER_NS, Heartbeat
from boolnas.search.rungs import reuse_key, rung_budget, rung_of
from boolnas.search.study import HAS_SET_CONSTRAINT, INTERRUPTED
from boolnas.search.trial_record import CARRIED, INHERITED, REUSED, Attr
from boolnas.space import Genotype, Plan, make_plan, preset_of
from boolnas.space.sampling import sample

log = logging.getLogger(__name__)

TrainFn = Callable[..., Any]  # train_genotype(genotype, data, budget, *, seed, plan); replaceable in benchmarks
ZC_BATCH = 64


class TrialFailed(Exception):
    """A candidate that could not be scored (diverged training); the trial is told FAIL."""


@dataclass
class Evaluator:
    """Scores genotypes: energy on the target task, accuracy on the proxy task."""

    cfg: SearchConfig
    data: Dataset
    train_fn: TrainFn = train_genotype
    share: CpuShare | None = None  # sizes budget.num_threads=0 per trial (search/cpu_share.py)
    variant: int = 0  # the study's settings variant these scores are measured under (search/fingerprint.py)
    _zc: Any = field(default=None, init=False, repr=False)

    def energy(self, genotype: Genotype) -> dict[str, Any]:
        """Energy split, op counts and size of the target task's plan (cheap)."""
        started = time.perf_counter()
        plan = make_plan(genotype, self.cfg.task)
        report = estimate(plan, self.cfg.profile)
        s = report.summary()
        out: dict[str, Any] = {
            Attr.ENERGY: s["total_uJ"], "compute_uJ": s["compute_uJ"], "sram_uJ": s["sram_uJ"],
            "dram_uJ": s["dram_uJ"], "cycles": s["cycles"], "bops": s["bops"], "flops": s["flops"],
            Attr.OPS: s["ops"], "size_bits": plan.totals()["size_bits"],
            # per-layer [name, compute, SRAM, DRAM] in uJ, for the report's breakdown
            Attr.LAYERS: [[r.name, round(r.compute_uJ, 4), round(r.sram_uJ, 4), round(r.dram_uJ, 4)]
                       for r in report.layers],
        }
        max_e = self.cfg.max_energy_uJ
        out[Attr.CONSTRAINT] = [out[Attr.ENERGY] - max_e] if max_e is not None else [0.0]
        out[Attr.FEASIBLE] = max_e is None or out[Attr.ENERGY] <= max_e
        out[Attr.ENERGY_TIME] = time.perf_counter() - started
        return out

    def accuracy(self, genotype: Genotype, rung: int = 0, zero_cost: bool = True) -> dict[str, Any]:
        """Proxy-trained accuracy (at ``rung``'s budget with a multi-fidelity scheduler) plus
        zero-cost scores; raises TrialFailed on divergence."""
        out: dict[str, Any] = {}
        budget = rung_budget(self._budget(), self.cfg.scheduler, rung)
        out["threads"] = budget.num_threads or None
        # the proxy task's plan, made once: the zero-cost scores and the training both use it (a rung
        # changes the training subset and threads, never the task: plan_for checks it)
        plan = make_plan(genotype, proxy_task(self.data, budget))
        if self.cfg.zero_cost and zero_cost:
            out.update(self._zero_cost(plan))
        _, result = self.train_fn(genotype, self.data, budget, seed=self.cfg.seed, plan=plan)
        out.update({Attr.TRAIN_TIME: result.time_s, "device": result.device, "diverged": result.diverged})
        if result.diverged or not math.isfinite(result.accuracy):
            raise TrialFailed(f"training diverged: {result.diverged_reason}")
        out[Attr.ACCURACY] = float(result.accuracy)
        out[Attr.TRAIN_LOSS_SUM] = training_loss_sum(result.history)
        return out

    def _budget(self) -> Any:
        """The proxy budget of the next training: with ``num_threads: 0`` and a CPU share, its
        threads are this worker's share of the machine now (fixed for the whole training)."""
        budget = self.cfg.budget
        if budget.num_threads or self.share is None:
            return budget
        import torch

        threads = self.share.threads()
        if threads != torch.get_num_threads():
            log.info("%s", self.share.describe(threads))
        torch.set_num_threads(threads)  # the zero-cost scores run before the training sets it
        return replace(budget, num_threads=threads)

    def _zero_cost(self, plan: Plan) -> dict[str, float]:
        import torch

        if self._zc is None:
            small = self.data.resized(plan.task.input_size)
            self._zc = (small.train_x[:ZC_BATCH], small.train_y[:ZC_BATCH])
        torch.manual_seed(self.cfg.seed)
        # its own network: the scores run it in train mode, which moves the BN statistics
        scores = zero_cost_scores(build_for(plan.genotype, plan.task, plan=plan), *self._zc)
        return {k: (v if math.isfinite(v) else None) for k, v in scores.items()}


def training_loss_sum(history: list[dict[str, Any]]) -> float | None:
    """The sum of the training losses over the run ("SoTL"): per epoch its mean loss x its steps.
    boolnas-bench found it a better ranking signal than the accuracy of a short run
    (``scheduler.rank_by=loss_sum``); None when the run kept no history."""
    total, previous_step = 0.0, 0
    for record in history:
        if "loss" not in record or "step" not in record:
            return None
        total += float(record["loss"]) * (int(record["step"]) - previous_step)
        previous_step = int(record["step"])
    return total if history else None


def objective_values(metrics: dict[str, Any], objectives: tuple[str, ...]) -> list[float]:
    return [float(metrics[OBJECTIVES[o][1]]) for o in objectives]


def run_trial(study: optuna.Study, evaluator: Evaluator, cache: dict[str, FrozenTrial]) -> FrozenTrial:
    """Ask one trial, score it (or reuse a known genotype's scores), tell the result.

    The trial records heartbeats while it runs (search/liveness.py). Exceptions other than
    KeyboardInterrupt end the trial FAIL with the reason and return; an interrupt ends it FAIL
    ("interrupted") and propagates.
    """
    trial: optuna.Trial | None = None
    try:  # from here on an interrupt must not leave the trial RUNNING
        # an interrupt inside ask() would come after the trial's row is written but before the
        # trial is ours to mark FAIL: it is delivered once ask() has returned
        with warnings.catch_warnings(), interrupts_deferred():
            # "Heartbeat of storage is supposed to be used with Study.optimize": we record them (Heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        trial.set_user_attr(Attr.WORKER, WORKER)
        trial.set_user_attr(Attr.WORKER_NS, WORKER_NS)
        if _surplus(study, trial, evaluator.cfg.n_trials):
            return _give_back(study, trial)
        with Heartbeat(study, trial._trial_id):
            return _score(study, trial, evaluator, cache)
    except KeyboardInterrupt:
        if trial is not None:
            _fail(study, trial, INTERRUPTED)  # a no-op when _score already ended it
        raise


def _surplus(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Workers check for a free slot before ``ask``, but two can pass the check at once. Trial
    numbers are unique and ordered, so the slots go to the lowest numbers: a trial with
    ``n_trials`` COMPLETE or lower-numbered RUNNING trials ahead of it is one too many."""
    ahead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
             if t.state == TrialState.COMPLETE or t.number < trial.number]
    return len(ahead) >= n_trials


def _give_back(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial:
    """End a surplus trial PRUNED before any work; a queued candidate it took (a preset, a
    retry) goes back to the queue, so it is evaluated if a slot frees up."""
    frozen = study._storage.get_trial(trial._trial_id)
    fixed = frozen.system_attrs.get("fixed_params")
    if fixed:
        attrs = {k: frozen.user_attrs[k] for k in (Attr.SEED, Attr.RETRY_OF, *CARRIED) if k in frozen.user_attrs}
        study.enqueue_trial(fixed, user_attrs=attrs)
    trial.set_user_attr(Attr.FAIL_REASON, "not run: the other workers hold the last slots of n_trials")
    return study.tell(trial, state=TrialState.PRUNED)


def _score(study: optuna.Study, trial: optuna.Trial, evaluator: Evaluator,
           cache: dict[str, FrozenTrial]) -> FrozenTrial:
    started = time.perf_counter()
    try:
        genotype = sample(trial, evaluator.cfg.space)
        # a variant's trials reuse only metrics measured under the same settings, and with a
        # multi-fidelity scheduler only those of the same rung (search/rungs.py)
        candidate = genotype.key() if not evaluator.variant else f"{genotype.key()}@v{evaluator.variant}"
        rung = rung_of(trial) if evaluator.cfg.scheduler.active else None
        key = reuse_key(candidate, rung)
        trial.set_user_attr(Attr.GENOTYPE, genotype.to_dict())
        trial.set_user_attr(Attr.KEY, key)
        trial.set_user_attr(Attr.PRESET, preset_of(genotype))
        trial.set_user_attr(Attr.SAMPLER, evaluator.cfg.sampler.name)
        if evaluator.variant:
            trial.set_user_attr(Attr.VARIANT, evaluator.variant)
        if rung is not None:
            trial.set_user_attr(Attr.RUNG, rung)
            trial.set_user_attr(Attr.CANDIDATE, candidate)
        source = claim_or_reuse(study, trial, key, cache)
        parent = trial.user_attrs.get(Attr.PARENT)
        if source is not None:
            metrics = {k: source.user_attrs[k] for k in REUSED if k in source.user_attrs}
            metrics[Attr.REUSED_FROM] = source.number
        elif parent is not None:  # a promotion: energy and zero-cost scores are its parent's
            before = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
                study._study_id, int(parent)))
            metrics = {k: before.user_attrs[k] for k in INHERITED if k in before.user_attrs}
            metrics.update(evaluator.accuracy(genotype, rung or 0, zero_cost=False))
        else:
            metrics = evaluator.energy(genotype)
            if metrics[Attr.FEASIBLE]:
                metrics.update(evaluator.accuracy(genotype, rung or 0))
            else:
                metrics[Attr.ACCURACY] = 0.0  # penalty: never trained (see the module docstring)
        for k, v in metrics.items():
            trial.set_user_attr(k, v)
        if evaluator.cfg.max_energy_uJ is not None and HAS_SET_CONSTRAINT:
            trial.set_constraint("max_energy_uJ", metrics[Attr.CONSTRAINT][0])  # <= 0: feasible
        trial.set_user_attr(Attr.TRIAL_TIME, time.perf_counter() - started)
        frozen = study.tell(trial, objective_values(metrics, evaluator.cfg.objectives))
        cache.setdefault(key, frozen)
        return frozen
    except KeyboardInterrupt:
        _fail(study, trial, INTERRUPTED)
        raise
    except Exception as exc:  # a failed candidate must not end the search
        known = isinstance(exc, (TrialFailed, SameGenotypeFailed))
        reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
        if not known:  # known failures are logged once, with the trial's line (search/loop.py)
            log.warning("trial %d failed: %s", trial.number, reason, exc_info=True)
        return _fail(study, trial, reason)


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> FrozenTrial:
    try:
        trial.set_user_attr(Attr.FAIL_REASON, reason)
        return study.tell(trial, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # already failed by another worker (as stale): keep its record
        return study._storage.get_trial(trial._trial_id)
