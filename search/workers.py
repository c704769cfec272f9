"""``boolnas-search workers=N``: N worker processes on one study, and a supervisor that watches them.

The supervisor starts each worker as ``python -m boolnas.search <the same overrides> workers=1
worker_index=i progress=false``, telling it how many workers share the machine
(``BOOLNAS_LOCAL_WORKERS``), so that each sizes its torch threads to its share of the CPUs
(search/cpu_share.py) unless the user set ``budget.num_threads``. The workers start at once:
their start-up (interpreter, torch, the data set; about 7 s on 2 cores) overlaps the
supervisor's own data check and study creation. Each then waits at a gate (a line on its stdin,
``BOOLNAS_START_GATE``) until the supervisor has created the study and queued the presets, so
no two processes create it; a supervisor that refuses the run closes the gates and the workers
exit without opening the study. Supervised workers leave the reports to the supervisor, which
writes them once at the end.
Workers coordinate only through the storage (search/loop.py, search/claims.py,
search/liveness.py), exactly as when a user starts the same command N times or a SLURM array
starts it on N machines. The supervisor shows the study's progress, forwards SIGINT/SIGTERM to the
workers (which end their trials FAIL "interrupted" and exit), writes the reports once at the
end and exits 130 (SIGINT) or 143 (SIGTERM). A worker that dies (SIGKILL, out of memory) is
reported; the others retry its trial and go on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import IO

import optuna
from optuna.trial import TrialState

from boolnas.search.config import SearchConfig
from boolnas.search.cpu_share import LOCAL_WORKERS_ENV
from boolnas.search.loop import front_size, load_checked_data, prepare_study
from boolnas.search.report_files import write_reports
from boolnas.search.worker_env import START_GATE_ENV, WORKER_TAG_ENV

log = logging.getLogger(__name__)
POLL_S = 1.0
GO = b"go\n"
OWN_KEYS = ("workers", "worker_index", "progress")  # the supervisor sets these for each worker


def worker_command(overrides: Sequence[str], index: int) -> list[str]:
    """The command line of worker ``index``: the user's overrides, minus the ones set here."""
    keep = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in OWN_KEYS]
    return [sys.executable, "-m", "boolnas.search", *keep, "workers=1", f"worker_index={index}", "progress=false"]


def run_workers(cfg: SearchConfig, overrides: Sequence[str]) -> int:
    """Start ``cfg.workers`` workers, wait for them, write the reports; returns the exit code."""
    env = {**os.environ, LOCAL_WORKERS_ENV: str(cfg.workers), START_GATE_ENV: "1"}
    procs = [subprocess.Popen(worker_command(overrides, i), env={**env, WORKER_TAG_ENV: f"w{i}"},
                              stdin=subprocess.PIPE, start_new_session=True)
             for i in range(cfg.workers)]
    opened = False
    try:
        load_checked_data(cfg)  # bad data or a budget too large: refused before the study exists (then freed)
        study = prepare_study(cfg)
        done = _complete(study)
        if done >= cfg.n_trials:
            log.info("study %r already holds %d finished trials (n_trials=%d): nothing to do", cfg.study, done,
                     cfg.n_trials)
        else:
            log.info("study %r: %d/%d finished; starting %d workers", cfg.study, done, cfg.n_trials, cfg.workers)
            _open_gates(procs)
            opened = True
    finally:
        if not opened:  # refused or nothing to do: the workers see their gate close and exit
            _close_gates(procs)
            for p in procs:
                _reap(p)
    if not opened:
        write_reports(study, cfg.study_dir)
        return 0
    interrupted = _forward_signals(procs)
    try:
        codes = _watch(study, cfg, procs)
    finally:
        for p in procs:  # never leave workers behind (e.g. the supervisor itself failed)
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            _reap(p)
    write_reports(study, cfg.study_dir)
    return _exit_code(study, cfg, codes, interrupted)


def wait_at_gate(stdin: IO[bytes]) -> bool:
    """In a supervised worker: block until the supervisor says go (True) or closes the gate (False)."""
    try:
        return stdin.readline() == GO
    except OSError:
        return False


def _open_gates(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        try:
            assert p.stdin is not None
            p.stdin.write(GO)
            p.stdin.close()
        except OSError:  # the worker already died: _watch reports it
            pass


def _close_gates(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        try:
            if p.stdin is not None:
                p.stdin.close()
        except OSError:
            pass


def _reap(p: subprocess.Popen[bytes]) -> None:
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _complete(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _forward_signals(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGINT/SIGTERM to the supervisor go on to the workers as one SIGINT (they end their trials
    cleanly). The workers run in their own sessions, so a terminal's Ctrl-C reaches them only
    through here, once. Returns the list of signals received (the first decides the exit code)."""
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return received


def _watch(study: optuna.Study, cfg: SearchConfig, procs: list[subprocess.Popen[bytes]]) -> list[int]:
    from tqdm.auto import tqdm

    reported: set[int] = set()
    with tqdm(total=cfg.n_trials, desc=f"search[{cfg.study}] x{cfg.workers}", unit="trial", file=sys.stderr,
              disable=not cfg.progress, dynamic_ncols=True) as bar:
        while True:
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            bar.n = len(complete)
            bar.set_postfix(front=front_size(complete, cfg.objectives), refresh=True)
            for i, p in enumerate(procs):
                if p.returncode is None and p.poll() is not None and p.returncode < 0 and i not in reported:
                    reported.add(i)
                    log.warning("worker w%d was killed by signal %d; the other workers retry its trial",
                                i, -p.returncode)
            if all(p.poll() is not None for p in procs):
                return [int(p.returncode) for p in procs]
            time.sleep(POLL_S)


def _exit_code(study: optuna.Study, cfg: SearchConfig, codes: list[int], interrupted: list[int]) -> int:
    """0 when the study holds n_trials; 130 (SIGINT) / 143 (SIGTERM) when interrupted; else a
    worker's failure code."""
    done = _complete(study)
    if interrupted:
        log.warning("interrupted: run the same command again to resume study %r (%d/%d finished)",
                    cfg.study, done, cfg.n_trials)
        return 128 + interrupted[0]
    if done >= cfg.n_trials:
        return 0
    failed = [c for c in codes if c > 0]
    log.error("the workers stopped at %d/%d finished trials (exit codes %s); see their messages above",
              done, cfg.n_trials, codes)
    return max(failed) if failed else 1
