"""The search: study loop, resume after SIGINT / SIGKILL, reuse, constraints, reports, export, CLIs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from optuna.trial import TrialState

from boolnas.evaluators.training import TrainResult
from boolnas.search.conf_dir import CONF_DIR
from boolnas.search.config import SearchConfig
from boolnas.search.loop import run_search
from boolnas.search.pareto import front, hypervolume, knee, pareto_mask

FAST = ["data=synthetic", "data.num_train=256", "data.val_size=64", "data.num_test=64", "budget=tiny",
        "budget.train_subset=64", "budget.val_subset=64", "budget.batch_size=32", "budget.resolution=8",
        "budget.bn_recalibration=1", "budget.num_threads=1", "progress=false"]
SEARCH = [sys.executable, "-m", "boolnas.search"]


def compose_cfg(tmp_path: Path, *overrides: str) -> SearchConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("search", overrides=[*FAST, f"results_dir={tmp_path}", *overrides])
    return SearchConfig.from_cfg(OmegaConf.to_container(cfg, resolve=True))


class StubTrain:
    """Stands in for train_genotype: counts calls, accuracy from the genotype, optional divergence."""

    def __init__(self, diverge_slices: int | None = None) -> None:
        self.calls = 0
        self.diverge_slices = diverge_slices

    def __call__(self, genotype, data, budget, seed=0, plan=None):  # noqa: ANN001, ANN204
        self.calls += 1
        diverged = genotype.slices[0] == self.diverge_slices
        acc = float("nan") if diverged else 0.1 + 0.1 * genotype.slices[0] / 8 + 0.05 * genotype.width_mult
        return None, TrainResult(accuracy=acc, val_accuracy=acc, test_accuracy=None, epochs=1, steps=1, time_s=0.01,
                                 images_per_s=1.0, diverged=diverged,
                                 diverged_reason="loss nan is not finite at step 0" if diverged else None)


def run(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEARCH, *FAST, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def states(db: Path, name: str) -> list[TrialState]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return [t.state for t in study.get_trials(deepcopy=False)]


# --------------------------------------------------------------------------- pareto (pure)
def test_front_hypervolume_and_knee() -> None:
    pts = [(0.5, 10.0), (0.6, 20.0), (0.4, 30.0), (0.9, 80.0), (0.5, 10.0), (0.85, 30.0)]
    assert pareto_mask(pts) == [True, True, False, True, False, True]  # the repeated point counts once
    assert front(pts) == [0, 1, 5, 3]
    # boxes: [10,20]x0.5 + [20,30]x0.6 + [30,80]x0.85 + [80,100]x0.9, over the 1 x 100 reference box
    assert hypervolume(pts, 100.0) == pytest.approx((10 * 0.5 + 10 * 0.6 + 50 * 0.85 + 20 * 0.9) / 100)
    assert hypervolume([], 100.0) == 0.0
    assert knee(pts) == 5


# --------------------------------------------------------------------------- in-process loop
def test_duplicates_are_reused_not_retrained(tmp_path: Path) -> None:
    # a space with two points: every later trial repeats one of them
    point = ["space.shortcut=[binary]", "space.slices=[1,4]", "space.downsample=[binary_maxpool]",
             "space.feature_reuse=[false]", "space.extras=[none]", "space.stem=[plain]", "space.dilated_last=[false]",
             "space.sign_grad=[ste]", "space.width_mult=[1.0]", "space.blocks=[2]", "sampler=random"]
    cfg = compose_cfg(tmp_path, "study=dup", "n_trials=6", "zero_cost=false", *point)
    stub = StubTrain()
    study = run_search(cfg, train_fn=stub, write=False)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 6 and stub.calls == 2  # the two presets basenet18_k1 / k4, then reuse
    assert {t.user_attrs["preset"] for t in done[:2]} == {"basenet18_k1", "basenet18_k4"}
    reused = [t for t in done if "reused_from" in t.user_attrs]
    assert len(reused) == 4 and all(t.user_attrs["energy_uJ"] > 0 for t in reused)


def test_energy_constraint_skips_training_and_divergence_fails_the_trial(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path, "study=cons", "n_trials=10", "zero_cost=false", "sampler=nsga2",
                      "constraints.max_energy_uJ=1000", "storage=journal")
    stub = StubTrain(diverge_slices=2)
    study = run_search(cfg, train_fn=stub, write=True)
    trials = study.get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 10 and (tmp_path / "cons" / "journal.log").is_file()
    over = [t for t in done if not t.user_attrs["feasible"]]
    assert over and all(t.user_attrs["constraint"][0] > 0 and t.values[0] == 0.0 for t in over)
    assert all("train_time_s" not in t.user_attrs for t in over if "reused_from" not in t.user_attrs)
    assert {t.user_attrs["preset"] for t in over} >= {"xnornet18", "bireal18", "reactnet18"}
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert all("diverged" in t.user_attrs["fail_reason"] for t in failed)
    rows = list(csv.DictReader((tmp_path / "cons" / "trials.csv").open()))
    assert len(rows) == len(trials)
    assert all(r["is_pareto"] == "False" for r in rows if r["feasible"] == "False")


# --------------------------------------------------------------------------- CLI end to end
@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search")
    out = run(f"results_dir={root}", "study=e2e", "n_trials=9")
    assert out.returncode == 0, out.stderr
    return root


def test_search_writes_results_and_rerun_does_no_work(searched: Path) -> None:
    study_dir = searched / "e2e"
    for name in ("trials.csv", "pareto.html", "report.html", "study.db"):
        assert (study_dir / name).is_file(), name
    rows = list(csv.DictReader((study_dir / "trials.csv").open()))
    assert len(rows) == 9 and all(r["state"] == "COMPLETE" for r in rows)
    assert [r["preset"] for r in rows[:7]] == ["xnornet18", "bireal18", "reactnet18", "basenet18_k1",
                                               "basenet18_k4", "boolnet18_k4", "boolnet18_k4_star"]
    assert any(r["is_pareto"] == "True" for r in rows)
    assert {"shortcut", "slices", "accuracy", "energy_uJ", "sram_uJ", "ops", "zc_naswot"} <= set(rows[0])
    again = run(f"results_dir={searched}", "study=e2e", "n_trials=9")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr
    assert len(states(study_dir / "study.db", "e2e")) == 9


def test_export_writes_yamls_that_train(searched: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "boolnas.search.cli.export", "study=e2e", f"results_dir={searched}",
                          "top_k=2", "select=knee"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    files = [Path(p) for p in out.stdout.split()]
    assert len(files) == 2 and all(f.parent == searched / "e2e" / "archs" for f in files)
    text = files[0].read_text()
    assert "genotype:" in text and "energy_uJ" in text and "boolnas-train arch=" in text
    train = subprocess.run([sys.executable, "-m", "boolnas.search.cli.train", f"arch={files[0]}", "budget=tiny",
                            "budget.train_subset=64", "budget.val_subset=64", "data=synthetic", "data.num_train=256",
                            "data.val_size=64", "progress=false", "format=json"],
                           capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    assert '"diverged": false' in train.stdout


def _wait_for(proc: subprocess.Popen, db: Path, name: str, ready, timeout: float = 900.0) -> None:  # noqa: ANN001
    # A safety net against a hung worker, not a performance limit: trials are slow on a loaded machine.
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if db.exists() and ready(states(db, name)):
                return
        except Exception:  # noqa: BLE001 (the worker is still creating the database)
            pass
        time.sleep(0.2)
    ended = f"exited with {proc.returncode}" if proc.poll() is not None else "still running"
    raise AssertionError(f"the search ({ended}) never showed a finished and a running trial at once")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_search_resumes_to_exactly_n_trials(tmp_path: Path, sig: signal.Signals) -> None:
    name = f"kill{int(sig)}"
    # many tiny epochs: each trial takes a few seconds, nearly all of it RUNNING
    args = [*SEARCH, *FAST, f"results_dir={tmp_path}", f"study={name}", "n_trials=3", "seed_presets=false",
            "sampler=random", "zero_cost=false", "budget.epochs=30"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / name / "study.db"
    try:
        _wait_for(proc, db, name, lambda s: s.count(TrialState.COMPLETE) >= 1 and TrialState.RUNNING in s)
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    first = states(db, name)
    assert 1 <= first.count(TrialState.COMPLETE) < 3
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert TrialState.RUNNING not in first and "resume" in err
    else:
        assert TrialState.RUNNING in first  # left behind by the killed worker
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    final = states(db, name)
    assert final.count(TrialState.COMPLETE) == 3 and TrialState.RUNNING not in final
    assert len(final) == len(first) + (3 - first.count(TrialState.COMPLETE))  # no trial counted twice
    if sig == signal.SIGKILL:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
        dead = [t for t in study.get_trials() if t.state == TrialState.FAIL]
        assert len(dead) == 1 and "died" in dead[0].user_attrs["fail_reason"]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("override", "message"),
    [("sampler=annealing", "sampler='annealing' is unknown"),
     ("space.slices=[3]", "space field 'slices'"),
     ("n_trials=-1", "n_trials must be a positive integer"),
     ("seed_presets=[resnet50]", "unknown preset 'resnet50'"),
     ("objectives=[accuracy,energy_uJ,carbon]", "unknown objective"),
     ("storage=postgres", "storage.url=postgresql"),
     ("constraints.max_energy_uJ=-5", "max_energy_uJ must be a positive number")],
)
def test_bad_overrides_exit_2_before_any_trial(tmp_path: Path, override: str, message: str) -> None:
    out = run(f"results_dir={tmp_path}", "study=bad", override, timeout=120)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "bad").exists()


def test_malformed_arch_yaml_seed_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("shortcut: [binary, nope\n")
    out = run(f"results_dir={tmp_path}", "study=bad", f"seed_presets=[{bad}]", timeout=120)
    assert out.returncode == 2 and "not valid YAML" in out.stderr
    assert not (tmp_path / "bad").exists()


def test_report_of_a_missing_study_is_a_user_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "boolnas.search.cli.report", "study=nope", f"results_dir={tmp_path}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "boolnas-search study=nope" in out.stderr
    assert os.listdir(tmp_path) == []
