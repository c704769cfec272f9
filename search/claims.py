"""One training per genotype, also when several workers sample the same genotype at once.

Optuna's storages have no lock a worker could take, so workers agree through trial attributes.
A trial that has written its ``key`` (the genotype hash):

1. reuses a COMPLETE trial with the same key (its own worker's cache first, then the storage);
2. waits for a RUNNING same-key trial that has claimed the training (``trains`` attr);
3. waits for a RUNNING same-key trial with a lower number (the lower number trains);
4. otherwise claims the training (``trains = true``) and trains.

Why it holds: trial numbers grow with ``ask``, and a trial reads only ``SETTLE_S`` after writing
its key whenever a lower-numbered trial is still running. Of two same-key trials, the one that
wrote its key later either sees the other's key (and the lower number trains), or reads more than
``SETTLE_S`` after the other read and so sees its claim. A waiting trial whose leader failed
because its worker died takes over (the retry of the dead trial, a higher number, then waits on
it); when the leader failed in training, the genotype is not trained again and the waiter fails
with the same reason.
"""

from __future__ import annotations

import logging
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from boolnas.search.liveness import fail_dead_workers, fail_stale
from boolnas.search.trial_record import Attr

log = logging.getLogger(__name__)

SETTLE_S = 0.5  # >> the time a committed attribute takes to be visible to other workers
POLL_S = 1.0


class SameGenotypeFailed(Exception):
    """The trial that trained this genotype failed in training; training it again would fail too."""


def claim_or_reuse(study: optuna.Study, trial: optuna.Trial, key: str,
                   cache: dict[str, FrozenTrial]) -> FrozenTrial | None:
    """A COMPLETE trial to copy the metrics of, or None when ``trial`` trains (it holds the claim)."""
    if key in cache:
        return cache[key]
    me = trial.number
    if _lower_running(study, me):
        time.sleep(SETTLE_S)
    waited_on: set[int] = set()
    while True:
        same = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(Attr.KEY) == key and t.number != me]
        done = [t for t in same if t.state == TrialState.COMPLETE]
        if done:
            return min(done, key=lambda t: t.number)
        failed = [t for t in same if t.number in waited_on and t.state == TrialState.FAIL
                  and t.user_attrs.get(Attr.TRAINS) and not t.user_attrs.get(Attr.WORKER_LOST)]
        if failed:
            raise SameGenotypeFailed(f"same genotype as trial {failed[0].number}, which failed: "
                                     f"{failed[0].user_attrs.get(Attr.FAIL_REASON, 'unknown reason')}")
        running = [t for t in same if t.state == TrialState.RUNNING]
        leader = ([t for t in running if t.user_attrs.get(Attr.TRAINS)] or [t for t in running if t.number < me])
        if not leader:
            trial.set_user_attr(Attr.TRAINS, True)
            return None
        lead = min(leader, key=lambda t: t.number)
        if lead.number not in waited_on:
            log.info("trial %d: the same genotype is being evaluated by trial %d; waiting to reuse it", me, lead.number)
            waited_on.add(lead.number)
        time.sleep(POLL_S)
        fail_dead_workers(study)  # a leader whose worker died must not keep us waiting
        fail_stale(study)


def _lower_running(study: optuna.Study, me: int) -> bool:
    return any(t.number < me for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
