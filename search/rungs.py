"""Multi-fidelity search (``scheduler=asha``): rungs of growing training budget in one study.

Every trial measures one candidate at one **rung**: rung k trains on ``rungs[k]`` x the proxy
budget's training images (``budget.train_subset``), from scratch. New candidates start at rung 0;
a worker about to ask for a new trial first looks for a candidate to promote
(search/promotion.py: asynchronous successive halving by Pareto rank) and, when there is one,
enqueues it at the next rung (user attrs ``rung``, ``promoted_from``, ``candidate``), so the
next ``ask`` of any worker takes it. There is no barrier: workers on one machine, on PostgreSQL
or in a SLURM array promote independently, and everything is derived from the study's trials,
so a resumed or restarted worker sees the same state.

- *No candidate trains twice at one rung*: the reuse key of a trial carries its rung
  (search/claims.py), so two workers that enqueue the same promotion at once train it once; the
  second copy reuses the first's metrics and counts once per rung here.
- *Restart, not continue*: the proxy recipe decays its learning rate to zero over each run's
  own steps (cosine), so a checkpoint at the end of rung k is a converged short run, not the
  first part of a longer one; resuming it at rung k+1 would train with a restarted schedule
  that no from-scratch measurement matches. Rungs therefore train from scratch (the cost of rung
  0 is ``rungs[0]`` of one proxy training).
- *Ranked by accuracy or by training-loss sum* (``rank_by``): boolnas-bench found the loss sum of
  a quarter-proxy run to rank like the full proxy (Kendall tau 0.69 against 0.70 for the proxy's
  accuracy, 0.63 for the short run's accuracy).
- *Energy once*: a promoted trial copies its parent's energy and op counts.
- *One rung per candidate in results*: reports, the front and export use each candidate's
  highest finished rung (``trials.csv``: ``rung``; lower rungs of a promoted candidate are
  ``superseded``), and show the rung of every point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from boolnas.evaluators.training import Budget
from boolnas.search.promotion import next_promotion
from boolnas.search.trial_record import Attr, is_feasible
from boolnas.space.fields import INTEGER, NUMBER, Check, check_fields, is_number, one_of, options_of
from boolnas.space.records import FromConf, shipped_conf

SCHEDULERS = ("none", "asha")
RANK_SIGNALS = ("accuracy", "loss_sum")  # what promotion ranks a rung's candidates by (with energy)


@dataclass(frozen=True)
class SchedulerConfig(FromConf):
    """How training budget is spent across candidates. Every value comes from conf/scheduler/*.yaml
    (schedulers made in code start from one: :meth:`from_conf`); options a mapping leaves out, and
    the whole group for a study recorded before it existed, are those of conf/scheduler/none.yaml
    (one budget for all). ``rank_by`` keeps a default: none.yaml leaves it out (it is unused without
    asha) and studies recorded before it existed ranked by accuracy, so their settings stay as they were.
    """

    CONF_GROUP: ClassVar[str] = "scheduler"

    name: str
    rungs: tuple[float, ...]  # training images per rung, x budget.train_subset
    eta: int  # reduction factor: the best 1/eta of a rung move up
    min_tau: float  # the report warns when adjacent rungs rank candidates less alike (Kendall tau)
    rank_by: str = "accuracy"  # or loss_sum: the sum of training losses over the rung's run (lower is better)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchedulerConfig:
        data = {**shipped_conf("scheduler", "none"), **options_of(cls, data, "scheduler")}
        rungs = data["rungs"]
        if isinstance(rungs, (str, bytes)) or not isinstance(rungs, Sequence) or not rungs:
            raise ValueError(f"scheduler.rungs must be a non-empty list of budget multipliers, got {rungs!r}")
        data["rungs"] = tuple(rungs)
        out = cls(**data)
        one_of(out.name, "scheduler.name", SCHEDULERS)
        bad = [r for r in out.rungs if not is_number(r) or not 0 < r < math.inf]
        if bad or list(out.rungs) != sorted(set(out.rungs)):
            raise ValueError(f"scheduler.rungs must be positive, increasing budget multipliers, got {list(out.rungs)}")
        check_fields(out, "scheduler", eta=Check(INTEGER, 2), min_tau=Check(NUMBER, -1, 1), rank_by=RANK_SIGNALS)
        return out

    @property
    def active(self) -> bool:
        return self.name == "asha"

    def check_budget(self, budget: Budget) -> None:
        """Refuse rungs the budget cannot express (a clear message before any trial)."""
        if not self.active:
            return
        if budget.train_subset is None:
            raise ValueError("scheduler=asha scales budget.train_subset per rung; set it "
                             "(e.g. budget.train_subset=8192)")
        for k in range(len(self.rungs)):
            images = rung_budget(budget, self, k).train_subset or 0
            if images < budget.batch_size:
                raise ValueError(f"scheduler rung {k} ({self.rungs[k]} x {budget.train_subset} images) is less than "
                                 f"one batch of {budget.batch_size}; raise scheduler.rungs or budget.train_subset")


def rung_budget(budget: Budget, scheduler: SchedulerConfig, rung: int) -> Budget:
    """The training budget of ``rung`` (the budget itself without a scheduler)."""
    if not scheduler.active:
        return budget
    assert budget.train_subset is not None  # check_budget refused it
    return replace(budget, train_subset=max(1, round(budget.train_subset * scheduler.rungs[rung])))


def reuse_key(genotype_key: str, rung: int | None) -> str:
    """The key under which a measurement may be reused: one per candidate and rung."""
    return genotype_key if rung is None else f"{genotype_key}@r{rung}"


def rung_of(trial: FrozenTrial | optuna.Trial) -> int:
    """A trial's rung (0 when it was not promoted)."""
    attrs = trial.user_attrs
    return int(attrs.get(Attr.RUNG, 0))


def rank_signal(attrs: Mapping[str, Any], rank_by: str = "accuracy") -> float:
    """What promotion ranks a measured candidate by, higher is better: its accuracy, or its
    negated training-loss sum (``scheduler.rank_by``; a trial without one ranks last)."""
    if rank_by == "loss_sum":
        loss = attrs.get(Attr.TRAIN_LOSS_SUM)
        return -float(loss) if loss is not None and math.isfinite(float(loss)) else -math.inf
    return float(attrs[Attr.ACCURACY])


def rung_state(trials: Sequence[FrozenTrial], rank_by: str = "accuracy") -> tuple[
        dict[int, list[tuple[str, tuple[float, float]]]], dict[int, set[str]], dict[tuple[str, int], int]]:
    """From a study's trials: the candidates measured per rung (feasible COMPLETE, first
    measurement of each, in finishing order, with (rank signal, energy): see :func:`rank_signal`),
    the candidates taken per rung (measured, running or queued), and the trial number of each
    (candidate, rung) measurement."""
    measured: dict[int, list[tuple[str, tuple[float, float]]]] = {}
    taken: dict[int, set[str]] = {}
    source: dict[tuple[str, int], int] = {}
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE),
                  key=lambda t: (t.datetime_complete is None, t.datetime_complete, t.number))
    for t in done:
        key, rung = t.user_attrs.get(Attr.CANDIDATE), rung_of(t)
        if key is None or not is_feasible(t.user_attrs) or (key, rung) in source:
            continue
        source[(key, rung)] = t.number
        measured.setdefault(rung, []).append((key, (rank_signal(t.user_attrs, rank_by),
                                                    float(t.user_attrs[Attr.ENERGY]))))
    for t in trials:
        key = t.user_attrs.get(Attr.CANDIDATE)
        if key is not None and t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
            taken.setdefault(rung_of(t), set()).add(key)
    return measured, taken, source


def promote(study: optuna.Study, scheduler: SchedulerConfig) -> tuple[str, int] | None:
    """Enqueue the next promotion, if any: (candidate, new rung)."""
    if not scheduler.active or len(scheduler.rungs) < 2:
        return None
    trials = study.get_trials(deepcopy=False)
    measured, taken, source = rung_state(trials, scheduler.rank_by)
    pick = next_promotion(measured, taken, scheduler.eta, len(scheduler.rungs) - 1)
    if pick is None:
        return None
    key, rung = pick
    number = source[(str(key), rung - 1)]
    parent = next(t for t in trials if t.number == number)
    study.enqueue_trial(parent.params, user_attrs={Attr.RUNG: rung, Attr.PARENT: parent.number, Attr.CANDIDATE: key})
    return str(key), rung


@dataclass(frozen=True)
class RungAgreement:
    """How alike two adjacent rungs rank the candidates measured at both (in-study fidelity)."""

    lower: int
    upper: int
    n: int  # candidates measured at both rungs
    tau: float  # Kendall tau-b: lower rung's promotion signal vs upper rung's accuracy (nan below 3 candidates)
    ci: tuple[float, float]  # 95 % interval (Fisher z, var 0.437 / (n - 4); nan below 5 candidates)
    low: bool  # tau below scheduler.min_tau: promotion at ``lower`` is close to a random pick

    def describe(self) -> str:
        if self.n < 3:
            return f"rungs {self.lower}->{self.upper}: {self.n} candidate(s) at both, too few for a rank correlation"
        ci = "" if math.isnan(self.ci[0]) else f" (95 % CI {self.ci[0]:.2f} to {self.ci[1]:.2f})"
        out = f"rungs {self.lower}->{self.upper}: Kendall tau {self.tau:.2f}{ci} over {self.n} candidates"
        if self.low:
            out += (f"; below scheduler.min_tau - rung {self.lower} ranks candidates too unlike rung {self.upper} "
                    f"for promotion to mean much: raise the lowest rung's budget (scheduler.rungs)")
        return out


def rung_agreement(trials: Sequence[FrozenTrial], scheduler: SchedulerConfig) -> list[RungAgreement]:
    """Kendall tau between each pair of adjacent rungs over the candidates measured at both: the
    lower rung's promotion signal (``scheduler.rank_by``) against the upper rung's accuracy.

    The interval uses Fieller et al.'s (1957) variance of Fisher's z for Kendall's tau,
    0.437 / (n - 4), which holds well from about 10 pairs on.
    """
    from scipy import stats

    signal, _, _ = rung_state(trials, scheduler.rank_by)
    accuracy = signal if scheduler.rank_by == "accuracy" else rung_state(trials)[0]
    out = []
    for k in range(len(scheduler.rungs) - 1):
        lower = dict((key, p[0]) for key, p in signal.get(k, ()))
        upper = dict((key, p[0]) for key, p in accuracy.get(k + 1, ()))
        both = [key for key in lower if key in upper]
        n = len(both)
        tau, ci = math.nan, (math.nan, math.nan)
        if n >= 3:
            tau = float(stats.kendalltau([lower[c] for c in both], [upper[c] for c in both]).statistic)
        if n >= 5 and math.isfinite(tau):
            z, half = math.atanh(max(-0.999999, min(0.999999, tau))), 1.96 * math.sqrt(0.437 / (n - 4))
            ci = (math.tanh(z - half), math.tanh(z + half))
        out.append(RungAgreement(k, k + 1, n, tau, ci, low=math.isfinite(tau) and tau < scheduler.min_tau))
    return out
