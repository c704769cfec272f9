"""One interrupt and error policy for every command line, checked on the real console commands.

- SIGTERM is Ctrl-C: a search tells its running trial FAIL "interrupted", writes its reports, prints
  one line and exits 143 (130 for Ctrl-C); no command prints a traceback when interrupted.
- A preset whose trial was interrupted is enqueued again and evaluated by the next run; one that
  failed for a reason of its own (diverged) is not; a dead worker's retry is not enqueued twice.
- Files that cannot be written (a file where a folder should be, a folder the command may not
  write in, a full disk) end the command with exit code 2 and one line naming the path the user
  gave and the key to change; the old file stays intact and no temp file is left behind.
- ``boolnas-report`` / ``boolnas-export`` open a study run with ``storage=journal`` without being
  told, and refuse to guess when the folder holds both kinds of storage.
- ``--help`` of every command: what it does, its groups' choices, its keys' defaults, examples.

How writes are made to fail as root (the tests run as root, which ignores file permissions):
the command is started with CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER dropped from its
capability bounding set (prctl PR_CAPBSET_DROP before exec), so it obeys a folder's mode bits like
any user; a disk that fills up is a file size limit (RLIMIT_FSIZE): a write past it fails with
EFBIG ("File too large"), as a write to a full disk fails with ENOSPC. Each such test first checks
that the trick makes a plain write fail here, and is skipped otherwise.
"""

from __future__ import annotations

import csv
import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from optuna.trial import TrialState

from boolnas.evaluators.training import TrainResult
from boolnas.search.conf_dir import CONF_DIR
from boolnas.search.config import SearchConfig
from boolnas.search.deferred_signals import interrupts_deferred
from boolnas.search.liveness import WORKER_NS
from boolnas.search.loop import prepare_study, run_search
from boolnas.search.study import enqueue_presets
from boolnas.space import get_preset
from boolnas.space.sampling import sample

REPO = Path(__file__).resolve().parents[1]
MODULES = {name: f"boolnas.search.cli.{name}" for name in ("plan", "energy", "train", "search", "report", "export")}
CONFIGS = {"plan": "plan_cli", "energy": "energy_cli", "train": "train_cli", "search": "search",
           "report": "report_cli", "export": "export_cli"}
FAST = ["data=synthetic", "data.num_train=256", "data.val_size=64", "data.num_test=64", "budget=tiny",
        "budget.train_subset=64", "budget.val_subset=64", "budget.batch_size=32", "budget.resolution=8",
        "budget.bn_recalibration=1", "budget.num_threads=1", "progress=false", "zero_cost=false"]
TRAIN_FAST = [a for a in FAST if not a.startswith("zero_cost")]  # boolnas-train has no zero_cost key
SAFETY_S = 900  # a safety net against a hung command, not a performance limit


def command(cli: str) -> list[str]:
    """The installed console script (``boolnas-<cli>``), or the module when it is not installed."""
    script = Path(sys.executable).parent / f"boolnas-{cli}"
    return [str(script)] if script.is_file() else [sys.executable, "-m", MODULES[cli]]


def env() -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out.pop("HYDRA_FULL_ERROR", None)
    return out


def cli(name: str, *args: str, cwd: Path | None = None,
        preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command(name), *args], capture_output=True, text=True, timeout=SAFETY_S, cwd=cwd,
                          env=env(), preexec_fn=preexec)


def assert_one_error_line(out: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit code 2, no traceback, exactly one ``error:`` line holding ``words``; returns that line."""
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr
    for w in words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"
    return errors[0]


# ----------------------------------------------------------------------------- making writes fail
PR_CAPBSET_DROP = 24
DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def obey_permissions() -> None:
    """preexec_fn: make the command obey file permissions even when it runs as root."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in DAC_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


DISK_BYTES = 64 << 10


def small_disk() -> None:
    """preexec_fn: a 64 KiB file size limit: writing more fails with EFBIG (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_BYTES, DISK_BYTES))


def require_failing_write(folder: Path, preexec: Callable[[], None], size: int = 16) -> None:
    """Skip unless writing ``size`` bytes into ``folder`` really fails under ``preexec`` here."""
    probe = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]) / 'probe'\n"
             "try:\n    p.write_bytes(b'x' * int(sys.argv[2]))\nexcept OSError:\n    sys.exit(7)\n"
             "p.unlink()\n")
    try:
        out = subprocess.run([sys.executable, "-c", probe, str(folder), str(size)], preexec_fn=preexec,
                             capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot make writes fail here: {exc}")
    if out.returncode != 7:
        pytest.skip("cannot make writes fail here (the probe's write succeeded)")


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


# ----------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("name", list(MODULES))
def test_help_says_what_the_command_does_its_choices_defaults_and_an_example(name: str) -> None:
    out = cli(name, "--help")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "error" not in out.stderr
    text = out.stdout
    assert text.startswith(f"boolnas-{name}: ")
    conf = yaml.safe_load((Path(CONF_DIR) / f"{CONFIGS[name]}.yaml").read_text())
    groups = [next(iter(d.items())) for d in conf["defaults"] if isinstance(d, dict)
              and not next(iter(d)).startswith("override")]
    assert groups
    for group, default in groups:
        choices = sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))
        assert f"{group}={default}" in text
        assert f"choices: {', '.join(choices)}" in text, group
    for key, value in conf.items():
        if key in ("defaults", "hydra"):
            continue
        for sub, default in (value.items() if isinstance(value, dict) else [(None, value)]):
            full = f"{key}.{sub}" if sub else key
            found = re.search(rf"^  {re.escape(full)}=(.+?)(?:\s{{2,}}|$)", text, re.M)
            assert found, f"{full} is not in the help"
            assert found.group(1) == "<required>" if default == "???" else yaml.safe_load(found.group(1)) == default
    assert "examples:" in text
    examples = text.split("examples:", 1)[1].splitlines()
    assert any(line.startswith(f"  boolnas-{name} ") for line in examples)
    short = cli(name, "-h")
    assert (short.returncode, short.stdout) == (0, text)


def test_help_shows_the_defaults_as_the_config_holds_them() -> None:
    text = cli("search", "--help").stdout
    for entry in ("n_trials=30", "seed=0", "sampler=tpe", "storage=sqlite", "workers=1", "progress=true",
                  "constraints.max_energy_uJ=null", "objectives=[accuracy, energy_uJ]"):
        assert re.search(rf"^  {re.escape(entry)}(\s|$)", text, re.M), entry
    assert "study=<required>" in cli("report", "--help").stdout


# ----------------------------------------------------------------------------------- interrupts
def _running_trials(db: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=f"sqlite:///{db}").get_trials(
            deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # noqa: BLE001 (the search is still creating the study)
        return []


def _signal_when(proc: subprocess.Popen[str], ready: Callable[[], bool], sig: int) -> tuple[str, str]:
    """Send ``sig`` once ``ready()`` holds (polled while the command runs); returns stdout, stderr."""
    deadline = time.time() + SAFETY_S
    try:
        while not ready():
            assert proc.poll() is None, f"the command ended early:\n{proc.communicate()[1]}"
            assert time.time() < deadline, "the command never got there"
            time.sleep(0.3)
        proc.send_signal(sig)
        return proc.communicate(timeout=SAFETY_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def terminated_search(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A search whose one preset is training when the search gets SIGTERM (many tiny epochs make
    the trial long enough to be caught)."""
    root = tmp_path_factory.mktemp("term")
    args = [*command("search"), *FAST, f"results_dir={root}", "study=term", "n_trials=2",
            "seed_presets=[basenet18_k1]", "sampler=random", "budget.epochs=40"]
    db = root / "term" / "study.db"
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    out, err = _signal_when(proc, lambda: any(t.user_attrs.get("trains") for t in _running_trials(db, "term")),
                            signal.SIGTERM)
    return {"root": root, "args": args, "db": db, "code": proc.returncode, "stdout": out, "stderr": err}


@pytest.mark.slow
def test_sigterm_to_a_search_fails_the_trial_writes_the_reports_and_exits_143(
        terminated_search: dict[str, Any]) -> None:
    run = terminated_search
    assert run["code"] == 143, run["stderr"]
    assert "Traceback" not in run["stderr"]
    last = run["stderr"].strip().splitlines()[-1]
    assert last == "interrupted: run the same command again to resume study 'term'", run["stderr"]
    trials = optuna.load_study(study_name="term", storage=f"sqlite:///{run['db']}").get_trials()
    assert [(t.state, t.user_attrs.get("fail_reason"), t.user_attrs.get("seed")) for t in trials] == [
        (TrialState.FAIL, "interrupted", "basenet18_k1")]
    study_dir = run["root"] / "term"
    assert (study_dir / "report.html").is_file()
    rows = list(csv.DictReader((study_dir / "trials.csv").open()))
    assert [(r["state"], r["fail_reason"]) for r in rows] == [("FAIL", "interrupted")]
    assert temp_files(study_dir) == []


@pytest.mark.slow
def test_an_interrupted_preset_is_enqueued_again_and_evaluated_by_the_next_run(
        terminated_search: dict[str, Any]) -> None:
    run = terminated_search
    assert run["code"] == 143, run["stderr"]
    args = ["n_trials=1" if a == "n_trials=2" else a for a in run["args"]]  # the preset's trial only
    again = subprocess.run(args, capture_output=True, text=True, timeout=SAFETY_S, env=env())
    assert again.returncode == 0, again.stderr
    assert "preset basenet18_k1 enqueued again" in again.stderr
    trials = optuna.load_study(study_name="term", storage=f"sqlite:///{run['db']}").get_trials()
    assert [(t.state, t.user_attrs.get("preset")) for t in trials] == [
        (TrialState.FAIL, "basenet18_k1"), (TrialState.COMPLETE, "basenet18_k1")]
    assert trials[1].user_attrs["key"] == get_preset("basenet18_k1").key()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_training_prints_one_line_and_no_traceback(tmp_path: Path, sig: int) -> None:
    run_dir = tmp_path / "run"
    args = [*command("train"), *TRAIN_FAST, "arch=basenet18_k1", "budget.epochs=200", "budget.checkpoint=true",
            f"run_dir={run_dir}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            cwd=tmp_path)
    out, err = _signal_when(proc, lambda: (run_dir / "checkpoint.pt").is_file(), sig)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: run the same command again to resume from the last checkpoint in {run_dir}")
    assert out == ""
    assert temp_files(run_dir) == []


@pytest.mark.slow
def test_sigterm_to_the_workers_supervisor_exits_143(tmp_path: Path) -> None:
    args = [*command("search"), *FAST, f"results_dir={tmp_path}", "study=sup", "workers=2", "n_trials=4",
            "seed_presets=false", "sampler=random", "budget.epochs=40"]
    db = tmp_path / "sup" / "study.db"
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    _, err = _signal_when(proc, lambda: any(t.user_attrs.get("trains") for t in _running_trials(db, "sup")),
                          signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if "interrupted" in line] == [
        line for line in err.splitlines() if "interrupted: run the same command again to resume study 'sup'" in line]
    assert len([line for line in err.splitlines() if "interrupted" in line]) == 1, err
    trials = optuna.load_study(study_name="sup", storage=f"sqlite:///{db}").get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t for t in trials if t.user_attrs.get("fail_reason") == "interrupted"]
    assert (tmp_path / "sup" / "report.html").is_file()


# ------------------------------------------------------------------------- re-queueing presets
def compose_cfg(tmp_path: Path, *overrides: str) -> SearchConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("search", overrides=[*FAST, f"results_dir={tmp_path}", *overrides])
    return SearchConfig.from_cfg(OmegaConf.to_container(cfg, resolve=True))


class Trainer:
    """Stands in for the proxy training (the search loop, the study and the objective are real):
    Ctrl-C during the training of ``interrupt``, divergence for ``diverge``, else an accuracy."""

    def __init__(self, interrupt: str | None = None, diverge: str | None = None) -> None:
        self.interrupt = get_preset(interrupt).key() if interrupt else None
        self.diverge = get_preset(diverge).key() if diverge else None
        self.trained: list[str] = []

    def __call__(self, genotype, data, budget, seed=0, plan=None):  # noqa: ANN001, ANN204
        if genotype.key() == self.interrupt:
            raise KeyboardInterrupt
        self.trained.append(genotype.key())
        bad = genotype.key() == self.diverge
        acc = float("nan") if bad else 0.5
        return None, TrainResult(accuracy=acc, val_accuracy=acc, test_accuracy=None, epochs=1, steps=1, time_s=0.01,
                                 images_per_s=1.0, diverged=bad, diverged_reason="loss nan" if bad else None)


def test_presets_interrupted_are_enqueued_again_diverged_ones_are_not(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_cfg(tmp_path, "study=policy", "n_trials=3", "seed_presets=[basenet18_k1,bireal18]",
                      "sampler=random")
    basenet, bireal = get_preset("basenet18_k1").key(), get_preset("bireal18").key()
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, train_fn=Trainer(interrupt="basenet18_k1"), write=False)
    second = Trainer(diverge="bireal18")
    run_search(cfg, train_fn=second, write=False)
    assert second.trained[:2] == [bireal, basenet]  # the waiting preset first, then the re-queued one
    study = optuna.load_study(study_name="policy", storage=f"sqlite:///{tmp_path / 'policy' / 'study.db'}")
    by_key = [(t.user_attrs.get("key"), t.state, t.user_attrs.get("fail_reason")) for t in study.get_trials()]
    assert by_key[:3] == [(basenet, TrialState.FAIL, "interrupted"),
                          (bireal, TrialState.FAIL, "training diverged: loss nan"),
                          (basenet, TrialState.COMPLETE, None)]
    caplog.set_level("INFO")
    assert enqueue_presets(study, cfg) == []  # evaluated, or failed for a reason of its own
    assert "preset bireal18 is not enqueued again" in caplog.text
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_a_dead_workers_preset_is_retried_once_not_enqueued_twice(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path, "study=dead", "n_trials=2", "seed_presets=[basenet18_k1]", "sampler=random")
    study = prepare_study(cfg)
    with warnings.catch_warnings():  # "Heartbeat of storage is supposed to be used with Study.optimize"
        warnings.simplefilter("ignore", UserWarning)
        trial = study.ask()  # takes the queued preset and samples it, then its worker "dies"
    trial.set_user_attr("key", sample(trial, cfg.space).key())
    gone = subprocess.Popen(["true"])
    gone.wait()
    trial.set_user_attr("worker", f"elsewhere:{gone.pid}")
    trial.set_user_attr("worker_ns", WORKER_NS)
    study = prepare_study(cfg)  # fails and retries the dead trial, then enqueues the presets
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs.get("retry_of") == trial.number
    assert trial.params and waiting[0].params == trial.params


def test_a_signal_inside_a_deferred_block_arrives_when_it_ends() -> None:
    before = signal.getsignal(signal.SIGINT)
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a handler would have run by now
            reached_the_end = True
    assert reached_the_end
    assert signal.getsignal(signal.SIGINT) is before


FINALIZER_INTERRUPT = """
import gc, os, signal, sys, time, weakref
from boolnas.search.cli.support import install_signal_handlers
install_signal_handlers()
class Thing: pass
def callback(ref):  # a finalizer: the interrupt's handler runs in here, where it cannot propagate
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    print("the finalizer went on", flush=True)
thing = Thing()
ref = weakref.ref(thing, callback)
del thing
try:
    time.sleep(10)
    print("not interrupted", flush=True)
except KeyboardInterrupt as exc:
    print(f"interrupted by signal {exc.signum}", flush=True)
"""


def test_an_interrupt_that_lands_in_a_finalizer_reaches_the_program() -> None:
    """Ctrl-C / SIGTERM during a garbage-collector callback (SQLAlchemy runs weakref callbacks):
    no "Exception ignored" traceback, and the program itself is interrupted (it was dropped before)."""
    out = subprocess.run([sys.executable, "-c", FINALIZER_INTERRUPT], capture_output=True, text=True,
                         timeout=SAFETY_S, env=env())
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    assert out.stdout.splitlines() == [f"interrupted by signal {int(signal.SIGTERM)}"], out.stdout + out.stderr


def test_ctrl_c_inside_ask_leaves_no_running_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C that lands while ``study.ask`` writes the new trial: the trial ends FAIL
    "interrupted" (before, it stayed RUNNING with no owner) and the next run finishes the study."""
    cfg = compose_cfg(tmp_path, "study=ask", "n_trials=2", "seed_presets=false", "sampler=random")
    real_ask = optuna.Study.ask

    def ask_then_ctrl_c(study: optuna.Study, *args: Any, **kwargs: Any) -> optuna.Trial:
        trial = real_ask(study, *args, **kwargs)  # the RUNNING row is in the storage now
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        return trial

    monkeypatch.setattr(optuna.Study, "ask", ask_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, train_fn=Trainer(), write=False)
    monkeypatch.setattr(optuna.Study, "ask", real_ask)
    study = optuna.load_study(study_name="ask", storage=f"sqlite:///{tmp_path / 'ask' / 'study.db'}")
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in study.get_trials()] == [
        (TrialState.FAIL, "interrupted")]
    run_search(cfg, train_fn=Trainer(), write=False)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


# ------------------------------------------------------------------------------- unwritable places
def test_search_with_results_dir_a_file_exits_2_before_any_work(tmp_path: Path) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder\n")
    out = cli("search", *FAST, f"results_dir={a_file}", "study=x", cwd=tmp_path)
    line = assert_one_error_line(out, f"results_dir={a_file}", "is a file, not a folder", "results_dir=")
    assert "NotADirectoryError" not in line and "proxy data" not in out.stderr  # refused before the data loads
    assert a_file.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


@pytest.mark.parametrize("name", ["report", "export"])
def test_reading_commands_with_results_dir_a_file_exit_2(tmp_path: Path, name: str) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("x")
    out = cli(name, "study=x", f"results_dir={a_file}", cwd=tmp_path)
    assert_one_error_line(out, f"results_dir={a_file} is a file, not a folder")


def test_energy_chart_under_a_file_names_the_file_on_the_way(tmp_path: Path) -> None:
    a_file = tmp_path / "charts"
    a_file.write_text("")
    out = cli("energy", "arch=all", "format=json", f"chart={a_file / 'e.html'}", cwd=tmp_path)
    assert_one_error_line(out, f"cannot write {a_file / 'e.html'}: {a_file} is a file, not a folder",
                          "choose a folder for chart=")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["charts"]


def test_search_in_a_read_only_results_folder_names_it_and_the_fix(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    require_failing_write(results, obey_permissions)
    out = cli("search", *FAST, f"results_dir={results}", "study=x", cwd=tmp_path, preexec=obey_permissions)
    assert_one_error_line(out, f"cannot write in {results}", "permission denied", "choose a writable results_dir=")
    assert list(results.iterdir()) == []


def test_training_into_a_read_only_run_folder_names_it_and_the_fix(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    require_failing_write(parent, obey_permissions)
    out = cli("train", *TRAIN_FAST, "arch=basenet18_k1", "budget.checkpoint=true", f"run_dir={parent / 'run'}",
              cwd=tmp_path, preexec=obey_permissions)
    assert_one_error_line(out, f"run_dir={parent / 'run'}", f"cannot write in {parent}", "choose a writable run_dir=")


@pytest.fixture(scope="module")
def journal_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-trial study run with storage=journal; its results folder."""
    root = tmp_path_factory.mktemp("journal")
    out = subprocess.run([*command("search"), *FAST, f"results_dir={root}", "study=jr", "n_trials=2",
                          "seed_presets=false", "sampler=random", "storage=journal"],
                         capture_output=True, text=True, timeout=SAFETY_S, env=env())
    assert out.returncode == 0, out.stderr
    assert (root / "jr" / "journal.log").is_file() and not (root / "jr" / "study.db").exists()
    return root


def copy_of(results: Path, tmp_path: Path) -> Path:
    shutil.copytree(results, tmp_path / "results")
    return tmp_path / "results"


@pytest.mark.slow
def test_export_into_a_read_only_folder_names_the_file_not_a_temp_file(journal_study: Path, tmp_path: Path) -> None:
    results = copy_of(journal_study, tmp_path)
    archs = results / "jr" / "archs"
    archs.mkdir()
    archs.chmod(0o555)
    require_failing_write(archs, obey_permissions)
    out = cli("export", "study=jr", f"results_dir={results}", "top_k=1", cwd=tmp_path, preexec=obey_permissions)
    line = assert_one_error_line(out, f"cannot write {archs}/", "Permission denied", "choose a writable results_dir=")
    assert ".tmp" not in line and re.search(r"/01_\w+\.yaml:", line), line
    assert list(archs.iterdir()) == []


@pytest.mark.slow
def test_a_full_disk_keeps_the_old_report_and_leaves_no_temp_file(journal_study: Path, tmp_path: Path) -> None:
    results = copy_of(journal_study, tmp_path)
    study_dir = results / "jr"
    require_failing_write(study_dir, small_disk, size=2 * DISK_BYTES)
    before = {p.name: p.read_bytes() for p in study_dir.iterdir() if p.is_file()}
    out = cli("report", "study=jr", f"results_dir={results}", cwd=tmp_path, preexec=small_disk)
    line = assert_one_error_line(out, f"cannot write {study_dir}/", "File too large", "free some disk space",
                                 "results_dir=")
    failed = Path(re.search(r"cannot write (\S+): ", line).group(1))  # the report file that did not fit
    if failed.name in before:
        assert failed.read_bytes() == before[failed.name]  # the old file, intact
    else:
        assert not failed.exists()
    assert temp_files(results) == []


def test_a_failed_atomic_write_names_the_target_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    code = ("import resource, sys\nfrom boolnas.space.files import write_text_atomic\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
            "try:\n    write_text_atomic(sys.argv[1], 'x' * (2 << 20))\n"
            "except OSError as exc:\n    print(type(exc).__name__, exc.errno, exc.filename)\n")
    out = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=120,
                         env=env())
    assert out.stdout.split() == ["OSError", "27", str(target)], out.stderr  # EFBIG, about the target
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    # a file where a folder should be: NotADirectoryError about the target, not a temp file
    blocker = tmp_path / "plain"
    blocker.write_text("")
    from boolnas.space.files import write_text_atomic

    with pytest.raises(NotADirectoryError) as caught:
        write_text_atomic(blocker / "sub" / "a.csv", "x")
    assert caught.value.filename == str(blocker / "sub" / "a.csv")


# ------------------------------------------------------------------------------ journal detection
@pytest.mark.slow
def test_report_and_export_find_a_journal_study_without_being_told(journal_study: Path, tmp_path: Path) -> None:
    results = copy_of(journal_study, tmp_path)
    (results / "jr" / "report.html").unlink()
    out = cli("report", "study=jr", f"results_dir={results}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "holds journal.log and no study.db: opening it with storage=journal" in out.stderr
    assert (results / "jr" / "report.html").is_file()
    assert not (results / "jr" / "study.db").exists()  # no empty sqlite study created beside it
    exported = cli("export", "study=jr", f"results_dir={results}", "top_k=1", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.split()) == 1 and Path(exported.stdout.split()[0]).is_file()
    # told explicitly, the command opens what it is told
    told = cli("report", "study=jr", f"results_dir={results}", "storage=sqlite", cwd=tmp_path)
    assert_one_error_line(told, "holds no study.db", "storage=journal")


@pytest.mark.slow
def test_a_folder_with_both_storages_needs_storage_named(journal_study: Path, tmp_path: Path) -> None:
    results = copy_of(journal_study, tmp_path)
    (results / "jr" / "study.db").write_bytes(b"")
    out = cli("report", "study=jr", f"results_dir={results}", cwd=tmp_path)
    assert_one_error_line(out, "study.db and journal.log", "storage=sqlite or storage=journal")
    told = cli("report", "study=jr", f"results_dir={results}", "storage=journal", cwd=tmp_path)
    assert told.returncode == 0, told.stderr


@pytest.mark.parametrize(("study", "argv_storage", "expected"), [
    ("a", None, "storage=journal"),          # journal.log only: journal
    ("c", None, None),                       # study.db: the default already
    ("[a,b]", None, "storage=journal"),      # several studies that agree
    ("[a,c]", None, None),                   # one of each kind: nothing to guess, the command names the missing file
    ("a", "storage=sqlite", None),           # told: as told
    ("a", "storage.kind=sqlite", None),
])
def test_the_storage_is_taken_from_the_study_folders_only_when_not_named(
        tmp_path: Path, study: str, argv_storage: str | None, expected: str | None) -> None:
    from boolnas.search.cli.studies import storage_from_folder

    for name, file in (("a", "journal.log"), ("b", "journal.log"), ("c", "study.db"), ("d", "study.db")):
        (tmp_path / name).mkdir()
        (tmp_path / name / file).write_bytes(b"")
    (tmp_path / "d" / "journal.log").write_bytes(b"")
    argv = [f"study={study}", f"results_dir={tmp_path}", *([argv_storage] if argv_storage else [])]
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        assert storage_from_folder(argv, compose("report_cli", overrides=argv)) == expected
        both = ["study=d", f"results_dir={tmp_path}"]
        with pytest.raises(ValueError, match="holds two studies"):
            storage_from_folder(both, compose("report_cli", overrides=both))
