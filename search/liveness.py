"""Dead workers: who runs a trial, heartbeats, and retrying the trials of workers that died.

Every trial records ``worker`` (``host:pid``, for people) and ``worker_ns`` (the machine's boot
id and the pid namespace, for the check below). A worker killed with SIGKILL leaves its trial
RUNNING; two mechanisms end such a trial FAIL and enqueue a retry with the same parameters
(user attr ``retry_of`` names the dead trial; at most ``storage.max_retry`` retries of one
original trial, so a candidate that kills every worker cannot loop forever):

- **same machine, exact and immediate**: a RUNNING trial whose ``worker_ns`` is ours and whose
  pid no longer exists (:func:`fail_dead_workers`). The namespace check matters: two containers
  can share a host name, and a pid means nothing outside its namespace.
- **any machine, heartbeats** (RDB storages: sqlite, postgres): while a trial runs, a thread
  records a heartbeat every ``storage.heartbeat_interval`` seconds (:class:`Heartbeat`); any worker
  fails a trial that has gone ``storage.grace_period`` seconds without one and enqueues the
  retry (:func:`fail_stale`).

Failing goes through the storage's compare-and-set (a trial already finished by another worker
raises ``UpdateFinishedTrialError``), so two workers that notice the same dead trial retry it once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from types import TracebackType

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from boolnas.search.trial_record import CARRIED, Attr, StudyAttr

log = logging.getLogger(__name__)

WORKER = f"{socket.gethostname()}:{os.getpid()}"
MAX_RETRY_ATTR = StudyAttr.MAX_RETRY  # study user attr: storage.max_retry of the workers


def _namespace() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux: the host name is the best we have
        return f"host:{socket.gethostname()}"
    return f"{boot}:{pidns}"


WORKER_NS = _namespace()


def worker_pid(trial: FrozenTrial) -> int | None:
    """The pid of the trial's worker when it ran in our pid namespace, else None."""
    if trial.user_attrs.get(Attr.WORKER_NS) != WORKER_NS:
        return None
    pid = str(trial.user_attrs.get(Attr.WORKER, "")).rpartition(":")[2]
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_workers(study: optuna.Study) -> int:
    """Fail and retry the RUNNING trials of dead workers of this machine; returns how many."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = worker_pid(t)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        if _fail(study, t, f"worker {t.user_attrs.get(Attr.WORKER)} died"):
            retry(study, study._storage.get_trial(t._trial_id))
            n += 1
    return n


def fail_stale(study: optuna.Study) -> int:
    """Fail and retry RUNNING trials without a heartbeat for the grace period (RDB storages with
    heartbeats on; 0 elsewhere). Like Optuna's ``fail_stale_trials``, but the reason is recorded
    on the trial before it is failed (a finished trial takes no more attributes)."""
    storage = study._storage
    if not isinstance(storage, BaseHeartbeat) or not storage.get_heartbeat_interval():
        return 0
    n = 0
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        t = storage.get_trial(trial_id)
        reason = f"worker {t.user_attrs.get(Attr.WORKER, '?')} stopped sending heartbeats"
        if _fail(study, t, reason):
            retry(study, storage.get_trial(trial_id))
            n += 1
    return n


def retry(study: optuna.Study, trial: FrozenTrial) -> int | None:
    """Enqueue the same parameters again; returns the original trial's number, or None when the
    retry budget of that original trial is spent."""
    original = int(trial.user_attrs.get(Attr.RETRY_OF, trial.number))
    retries = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(Attr.RETRY_OF) == original]
    max_retry = int(study.user_attrs.get(MAX_RETRY_ATTR, 2))
    if len(retries) >= max_retry:
        log.warning("trial %d failed (%s); not retried: trial %d was retried %d time(s) already (storage.max_retry)",
                    trial.number, trial.user_attrs.get(Attr.FAIL_REASON, "worker lost"), original, len(retries))
        return None
    attrs: dict[str, object] = {Attr.RETRY_OF: original}
    if trial.user_attrs.get(Attr.SEED):
        attrs[Attr.SEED] = trial.user_attrs[Attr.SEED]
    attrs.update({k: trial.user_attrs[k] for k in CARRIED if k in trial.user_attrs})  # a promotion stays one
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=trial.params,
                                        distributions=trial.distributions, user_attrs=attrs))
    log.warning("trial %d lost its worker (%s): retrying its parameters", trial.number,
                trial.user_attrs.get(Attr.FAIL_REASON, "stale"))
    return original


def _fail(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Compare-and-set RUNNING -> FAIL; False when another worker finished it first."""
    try:
        study._storage.set_trial_user_attr(trial._trial_id, Attr.FAIL_REASON, reason)
        study._storage.set_trial_user_attr(trial._trial_id, Attr.WORKER_LOST, True)
        return bool(study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL))
    except UpdateFinishedTrialError:
        return False


class Heartbeat:
    """Context manager: records the trial's heartbeat every ``interval`` seconds in a thread
    (no-op when the storage has no heartbeats). A failed write is logged, not raised: a
    database hiccup must not kill the training; the grace period absorbs a missed beat."""

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
        storage = study._storage
        self._interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._interval:
            self._thread = threading.Thread(target=self._beat, name="boolnas-heartbeat", daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception as exc:  # noqa: BLE001 (see the class docstring)
                log.warning("heartbeat of trial id %d not recorded: %s", self._trial_id, exc)
            if self._stop.wait(self._interval):
                return

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
