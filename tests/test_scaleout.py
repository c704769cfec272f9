"""Scale-out: several workers on one study (SQLite and a real PostgreSQL), dead workers (SIGKILL,
stale heartbeats), consecutive failures, unreachable storages, passwords kept out of output."""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import optuna
import pytest
from hydra import compose, initialize_config_dir
from optuna.trial import TrialState

from boolnas.search.conf_dir import CONF_DIR
from boolnas.search.config import StorageConfig
from boolnas.search.objective import _give_back, _surplus
from boolnas.search.storage import masked, resolve_url

FAST = ["data=synthetic", "data.num_train=256", "data.val_size=64", "data.num_test=64", "budget=tiny",
        "budget.train_subset=64", "budget.val_subset=64", "budget.batch_size=32", "budget.resolution=8",
        "budget.bn_recalibration=1", "budget.num_threads=1", "progress=false", "zero_cost=false"]
SEARCH = [sys.executable, "-m", "boolnas.search", *FAST]
# A space of two genotypes: parallel workers keep sampling the same ones, so every trial after
# the first two must reuse a result instead of training again.
TWO_POINTS = ["space.shortcut=[binary]", "space.slices=[1,4]", "space.downsample=[binary_maxpool]",
              "space.feature_reuse=[false]", "space.extras=[none]", "space.stem=[plain]",
              "space.dilated_last=[false]", "space.sign_grad=[ste]", "space.width_mult=[1.0]", "space.blocks=[2]"]


def search(*args: str, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    # timeout: a safety net against a hung worker, not a performance limit
    return subprocess.run([*SEARCH, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def rows_of(results: Path, study: str) -> list[dict[str, str]]:
    return list(csv.DictReader((results / study / "trials.csv").open()))


def assert_consistent(rows: list[dict[str, str]], n_trials: int) -> None:
    """Exactly n_trials finished, unique numbers, and no genotype trained twice."""
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    assert len(complete) == n_trials, Counter(r["state"] for r in rows)
    numbers = [int(r["number"]) for r in rows]
    assert len(set(numbers)) == len(numbers)
    trained = [r["key"] for r in complete if not r["reused_from"]]
    assert len(trained) == len(set(trained)), Counter(trained).most_common(3)
    assert not [r for r in rows if r["state"] == "RUNNING"]


# --------------------------------------------------------------------------- local storage
def test_two_local_workers_share_the_default_sqlite_study(tmp_path: Path) -> None:
    out = search(f"results_dir={tmp_path}", "study=local2", "workers=2", "n_trials=12", "sampler=random",
                 *TWO_POINTS)
    assert out.returncode == 0, out.stderr
    assert "starting 2 workers" in out.stderr and "[INFO] w0" in out.stderr and "[INFO] w1" in out.stderr
    assert "database is locked" not in out.stderr
    rows = rows_of(tmp_path, "local2")
    assert_consistent(rows, 12)
    assert len({r["key"] for r in rows if r["state"] == "COMPLETE" and not r["reused_from"]}) == 2
    assert len({r["worker"] for r in rows}) == 2  # both workers ran trials
    for name in ("report.html", "pareto.html", "study.db"):
        assert (tmp_path / "local2" / name).is_file()
    # the supervisor writes the reports once; its workers leave them to it
    assert out.stderr.count("wrote ") == 1 and "w0 wrote" not in out.stderr and "w1 wrote" not in out.stderr


def test_supervisor_that_refuses_the_run_leaves_no_study_and_no_workers(tmp_path: Path) -> None:
    """The workers start before the supervisor checks the run; a refusal must end them at their gate
    before any of them opens (creates) the study."""
    out = search(f"results_dir={tmp_path}", "study=refused", "workers=2", "budget.resolution=100000")
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("error:") == 1 and "needs at least" in out.stderr  # said once, by the supervisor
    assert "w0 study" not in out.stderr and "w1 study" not in out.stderr
    assert not (tmp_path / "refused" / "study.db").exists()
    leftover = subprocess.run(["pgrep", "-f", f"results_dir={tmp_path}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout


def _during_search(proc: subprocess.Popen[str], act: Callable[[], Any]) -> tuple[Any, str]:
    """Call ``act`` every 0.5 s while the search runs until it returns something (it signals a
    worker), then wait for the search to end; returns that something and the search's stderr."""
    done = None
    deadline = time.time() + 900  # safety net only
    try:
        while not done and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            done = act()
        assert done, "never saw a training trial"
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    return done, err


def _running(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """The study's RUNNING trials; none while a worker is still creating the study."""
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(
            deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # noqa: BLE001 (the study is being created)
        return []


def _kill_mid_trial(storage: str, study: str) -> optuna.trial.FrozenTrial | None:
    """SIGKILL a worker while it trains: stop it first (SIGSTOP), so the trial it is running can
    be read without a race, then kill it; returns that trial, or None (no worker training yet)."""
    for t in _running(storage, study):
        if not t.user_attrs.get("trains"):  # not yet past sampling
            continue
        worker = t.user_attrs["worker"]
        pid = int(worker.rpartition(":")[2])
        os.kill(pid, signal.SIGSTOP)
        current = [x for x in optuna.load_study(study_name=study, storage=storage).get_trials(
            deepcopy=False, states=(TrialState.RUNNING,)) if x.user_attrs.get("worker") == worker]
        if current:
            os.kill(pid, signal.SIGKILL)
            return current[0]
        os.kill(pid, signal.SIGCONT)  # it was between trials: try again
    return None


def test_sigkilled_worker_trial_is_retried(tmp_path: Path) -> None:
    # slow trials (many tiny epochs) so a worker can be caught mid-trial
    args = [*SEARCH, f"results_dir={tmp_path}", "study=kill", "workers=2", "n_trials=5", "seed_presets=false",
            "sampler=random", "budget.epochs=40"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = f"sqlite:///{tmp_path / 'kill' / 'study.db'}"
    victim, err = _during_search(proc, lambda: _kill_mid_trial(storage, "kill"))
    assert proc.returncode == 0, err
    assert "was killed by signal 9" in err
    rows = rows_of(tmp_path, "kill")
    assert_consistent(rows, 5)
    (dead,) = [r for r in rows if int(r["number"]) == victim.number]
    assert dead["state"] == "FAIL" and "died" in dead["fail_reason"], dead
    retries = [r for r in rows if r["retry_of"] and int(float(r["retry_of"])) == victim.number
               and r["state"] == "COMPLETE"]  # (a retry taken by a surplus trial goes back to the queue)
    assert len(retries) == 1 and retries[0]["key"] == dead["key"], rows


def test_ctrl_c_reaches_every_worker_and_the_rerun_resumes(tmp_path: Path) -> None:
    args = [*SEARCH, f"results_dir={tmp_path}", "study=intr", "workers=2", "n_trials=4", "seed_presets=false",
            "sampler=random", "budget.epochs=30"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = f"sqlite:///{tmp_path / 'intr' / 'study.db'}"

    def interrupt_while_training() -> bool:
        if not any(t.user_attrs.get("trains") for t in _running(storage, "intr")):
            return False
        proc.send_signal(signal.SIGINT)  # to the supervisor only: the workers run in their own sessions
        return True

    _, err = _during_search(proc, interrupt_while_training)
    assert proc.returncode == 130, err
    assert "resume" in err
    trials = optuna.load_study(study_name="intr", storage=storage).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t for t in trials if t.user_attrs.get("fail_reason") == "interrupted"]
    again = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert_consistent(rows_of(tmp_path, "intr"), 4)


def test_consecutive_failures_stop_the_worker(tmp_path: Path) -> None:
    out = search(f"results_dir={tmp_path}", "study=broken", "n_trials=10", "seed_presets=false",
                 "budget.inject_nan_at_step=0", "max_consecutive_failures=3")
    assert out.returncode == 3, out.stderr
    assert "3 trials failed in a row" in out.stderr and "max_consecutive_failures" in out.stderr
    assert "Traceback" not in out.stderr
    rows = rows_of(tmp_path, "broken")
    assert [r["state"] for r in rows] == ["FAIL"] * 3 and all("diverged" in r["fail_reason"] for r in rows)


# --------------------------------------------------------------------------- PostgreSQL
def test_three_workers_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    password = postgres_url.split(":")[2].split("@")[0]
    out = search(f"results_dir={tmp_path}", "study=pg3", "storage=postgres", "workers=3", "n_trials=12",
                 env={"BOOLNAS_STORAGE_URL": postgres_url})
    assert out.returncode == 0, out.stderr
    rows = rows_of(tmp_path, "pg3")
    assert_consistent(rows, 12)
    assert [r["preset"] for r in sorted(rows, key=lambda r: int(r["number"]))][:7] == [
        "xnornet18", "bireal18", "reactnet18", "basenet18_k1", "basenet18_k4", "boolnet18_k4", "boolnet18_k4_star"]
    assert len({r["worker"] for r in rows}) >= 2
    study = optuna.load_study(study_name="pg3", storage=postgres_url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert (tmp_path / "pg3" / "report.html").is_file()
    # the password never reaches logs, reports or the study's records
    assert password not in out.stderr + out.stdout
    for f in (tmp_path / "pg3").rglob("*"):
        if f.is_file():
            assert password not in f.read_text(errors="replace"), f
    assert password not in str(study.user_attrs)
    exported = subprocess.run([sys.executable, "-m", "boolnas.search.cli.export", "study=pg3",
                               f"results_dir={tmp_path}", "storage=postgres", "top_k=2"],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "BOOLNAS_STORAGE_URL": postgres_url})
    assert exported.returncode == 0, exported.stderr
    for path in exported.stdout.split():
        assert password not in Path(path).read_text()


def test_stale_heartbeat_trial_of_another_machine_is_retried(tmp_path: Path, postgres_url: str) -> None:
    # A worker on "another machine" (a namespace that is not ours) starts a trial and dies: only
    # its missing heartbeats can tell. The local worker must fail it and retry its parameters.
    storage = optuna.storages.RDBStorage(postgres_url, heartbeat_interval=1, grace_period=3)
    study = optuna.create_study(study_name="stale", storage=storage, directions=["maximize", "minimize"])
    ghost = study.ask()
    ghost.suggest_categorical("shortcut", ["binary", "fp32"])
    ghost.set_user_attr("worker", "elsewhere:4242")
    ghost.set_user_attr("worker_ns", "another-machine")
    storage.record_heartbeat(ghost._trial_id)
    out = search(f"results_dir={tmp_path}", "study=stale", "storage=postgres", f"storage.url={postgres_url}",
                 "storage.heartbeat_interval=1", "storage.grace_period=3", "n_trials=4", "seed_presets=false",
                 "sampler=random", "budget.epochs=3")
    assert out.returncode == 0, out.stderr
    trials = optuna.load_study(study_name="stale", storage=postgres_url).get_trials()
    first = trials[ghost.number]
    assert first.state == TrialState.FAIL and "stopped sending heartbeats" in first.user_attrs["fail_reason"]
    retried = [t for t in trials if t.user_attrs.get("retry_of") == ghost.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params["shortcut"] == ghost.params["shortcut"]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4


# --------------------------------------------------------------------------- storage errors
@pytest.mark.parametrize(
    ("url", "message"),
    [("postgresql+psycopg://boolnas:Hunter2pw@127.0.0.1:1/none", "cannot reach the storage"),
     ("postgresql+nodriver://boolnas:Hunter2pw@127.0.0.1/none", "is not usable"),
     ("mysql://boolnas:Hunter2pw@127.0.0.1/none", "needs a postgresql:// URL")],
    ids=["refused", "no-driver", "not-postgres"],
)
def test_bad_storage_url_fails_clearly_without_the_password(tmp_path: Path, url: str, message: str) -> None:
    out = search(f"results_dir={tmp_path}", "study=nodb", "storage=postgres", env={"BOOLNAS_STORAGE_URL": url},
                 timeout=120)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert "Hunter2pw" not in out.stderr and "***" in out.stderr
    assert not (tmp_path / "nodb").exists()


def test_silent_server_does_not_hang_the_search(tmp_path: Path) -> None:
    # A port that accepts TCP connections but never answers (a firewall, a wrong service): the
    # connection attempt gives up after storage.CONNECT_TIMEOUT_S and the search exits with a message.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql+psycopg://boolnas:Hunter2pw@127.0.0.1:{silent.getsockname()[1]}/none"
        out = search(f"results_dir={tmp_path}", "study=silent", "storage=postgres", env={"BOOLNAS_STORAGE_URL": url},
                     timeout=120)
    assert out.returncode == 2, out.stderr
    assert "cannot reach the storage" in out.stderr and "Hunter2pw" not in out.stderr
    assert not (tmp_path / "silent").exists()


def test_plain_postgres_urls_use_the_shipped_driver() -> None:
    cfg = StorageConfig.from_conf("postgres", url="postgres://u:pw@db:5432/boolnas")
    assert resolve_url(cfg, Path(".")) == "postgresql+psycopg://u:pw@db:5432/boolnas"
    cfg = StorageConfig.from_conf("postgres", url="postgresql+asyncpg://u@db/boolnas")
    assert resolve_url(cfg, Path(".")) == "postgresql+asyncpg://u@db/boolnas"  # an explicit driver is kept


def test_masked_hides_passwords_only() -> None:
    assert masked("postgresql+psycopg://u:p%40ss@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert masked("see postgresql://u:pw@h/d and sqlite:///x.db") == "see postgresql://u:***@h/d and sqlite:///x.db"
    assert masked("postgresql://u@h/d") == "postgresql://u@h/d"


def test_grace_period_must_exceed_the_heartbeat_interval(tmp_path: Path) -> None:
    out = search(f"results_dir={tmp_path}", "study=hb", "storage.heartbeat_interval=30", "storage.grace_period=10",
                 timeout=120)
    assert out.returncode == 2 and "must exceed storage.heartbeat_interval" in out.stderr


def test_slurm_launcher_config_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("search", overrides=["hydra/launcher=slurm", "storage=postgres"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.cpus_per_task >= 1 and launcher.array_parallelism >= 1


def test_surplus_trial_gives_its_slot_and_queued_candidate_back() -> None:
    # Two workers can pass the free-slot check at once; the higher trial number yields.
    study = optuna.create_study(directions=["maximize", "minimize"])
    first, second = study.ask(), study.ask()  # held by other workers
    study.enqueue_trial({"shortcut": "fp32"}, user_attrs={"seed": "bireal18"})
    late = study.ask()  # takes the queued preset
    assert not _surplus(study, first, 2) and not _surplus(study, second, 2) and _surplus(study, late, 2)
    assert not _surplus(study, late, 3)
    assert _give_back(study, late).state == TrialState.PRUNED
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert queued.system_attrs["fixed_params"] == {"shortcut": "fp32"} and queued.user_attrs["seed"] == "bireal18"


def _open_storage(directory: str, results: Queue) -> None:
    from boolnas.search.storage import make_storage

    try:
        make_storage(StorageConfig.from_conf("sqlite"), Path(directory))
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 (reported to the test)
        results.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_new_sqlite_study_at_once_all_succeed(tmp_path: Path) -> None:
    # Processes that create the same database at the same moment race to create its tables
    # ("table studies already exists", "UNIQUE constraint failed: alembic_version"); without the
    # retry in search.storage about a third of them failed here.
    ctx = multiprocessing.get_context("fork")
    for round_ in range(6):
        results: Queue = ctx.Queue()
        procs = [ctx.Process(target=_open_storage, args=(str(tmp_path / str(round_)), results)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        assert [results.get(timeout=10) for _ in procs] == ["ok"] * 4
