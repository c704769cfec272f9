"""A study is one experiment: mixed-setting resumes refused, variants on request, every objective counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from test_search import FAST, StubTrain, compose_cfg

from boolnas.search.export import export, select
from boolnas.search.fingerprint import SettingsChanged, differences, fingerprint
from boolnas.search.loop import run_search
from boolnas.search.objectives import study_objectives
from boolnas.search.pareto import knee_of, nondominated
from boolnas.search.report import trials_frame

BASE = ["study=s", "n_trials=4", "seed_presets=false", "sampler=random", "zero_cost=false"]


def search_in_process(tmp_path: Path, *overrides: str, n_trials: int = 4) -> optuna.Study:
    cfg = compose_cfg(tmp_path, *BASE, f"n_trials={n_trials}", *overrides)
    return run_search(cfg, train_fn=StubTrain(), write=False)


# --------------------------------------------------------------------------- fingerprint
@pytest.mark.parametrize(
    ("override", "key"),
    [("data.seed=3", "data.seed"),
     ("budget.lr=0.01", "budget.lr"),
     ("budget=proxy", "budget: 'tiny' -> 'proxy'"),
     ("energy=horowitz45nm", "energy: 'boolnet65nm' -> 'horowitz45nm'"),
     ("task=cifar10", "task.num_classes"),
     ("constraints.max_energy_uJ=2000", "constraints.max_energy_uJ: (unset) -> 2000"),
     ("space.slices=[1,2,4]", "space.slices"),
     ("seed=7", "seed: 0 -> 7")],
)
def test_resume_with_other_settings_is_refused_naming_the_key(tmp_path: Path, override: str, key: str) -> None:
    study = search_in_process(tmp_path)
    before = len(study.get_trials())
    with pytest.raises(SettingsChanged) as err:
        search_in_process(tmp_path, override, n_trials=6)
    assert key in str(err.value) and "allow_changed=[" in str(err.value)
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s/study.db").trials) == before


def test_settings_that_cannot_change_results_may_change(tmp_path: Path) -> None:
    search_in_process(tmp_path)
    study = search_in_process(tmp_path, "sampler=tpe", "budget.num_threads=2", "max_consecutive_failures=9",
                              n_trials=6)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 6
    assert [t.user_attrs["sampler"] for t in trials] == ["random"] * 4 + ["tpe"] * 2
    assert len(study.user_attrs["fingerprints"]) == 1
    assert study.user_attrs["config"]["sampler"]["name"] == "random"  # the creating run's config is kept


def test_allow_changed_adds_a_variant_that_reuses_nothing_across_settings(tmp_path: Path) -> None:
    first = search_in_process(tmp_path, "space.slices=[1]", "space.shortcut=[binary]", n_trials=2)
    assert {t.user_attrs["key"] for t in first.trials}  # every trial reused the one genotype of this space
    stub = StubTrain()
    cfg = compose_cfg(tmp_path, *BASE, "n_trials=4", "space.slices=[1]", "space.shortcut=[binary]", "budget.lr=0.01",
                      "allow_changed=[budget]")
    study = run_search(cfg, train_fn=stub, write=False)
    assert stub.calls >= 1  # measured again under the new budget, not copied from variant 0
    variants = [t.user_attrs.get("variant", 0) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert variants[:2] == [0, 0] and set(variants[2:]) == {1}
    assert [f["budget"]["lr"] for f in study.user_attrs["fingerprints"]] == [0.005, 0.01]
    again = compose_cfg(tmp_path, *BASE, "n_trials=5", "space.slices=[1]", "space.shortcut=[binary]",
                        "budget.lr=0.01", "allow_changed=[budget]")
    run_search(again, train_fn=StubTrain(), write=False)
    assert len(study.user_attrs["fingerprints"]) == 2  # the same settings: the same variant


@pytest.mark.parametrize("bad", ["allow_changed=[sampler]", "allow_changed=budget"])
def test_allow_changed_names_only_settings_of_the_fingerprint(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="allow_changed"):
        compose_cfg(tmp_path, *BASE, bad)


def test_fingerprint_ignores_where_the_training_runs() -> None:
    base = {"budget": {"lr": 1, "num_threads": 0, "device": "auto"}, "seed": 0}
    moved = {"budget": {"lr": 1, "num_threads": 4, "device": "cuda"}, "seed": 0}
    assert differences(fingerprint(base), fingerprint(moved)) == []
    assert differences(fingerprint(base), fingerprint({**base, "seed": 1})) == [("seed", 0, 1)]
    # a setting added to boolnas after a study was made is no difference; a removed one is
    assert differences({"budget": {"lr": 1}}, {"budget": {"lr": 1, "stream": False}}) == []
    assert differences({"budget": {"lr": 1, "old": 2}}, {"budget": {"lr": 1}}) == [("budget.old", 2, None)]


def test_the_readme_demo_then_a_mixed_resume_exits_2_and_the_right_resume_works(tmp_path: Path) -> None:
    demo = [sys.executable, "-m", "boolnas.search", "study=demo", f"results_dir={tmp_path}", "data=synthetic",
            "budget=tiny",
            "constraints.max_energy_uJ=2000", "progress=false", "seed_presets=false", "zero_cost=false",
            "data.num_train=256", "data.val_size=64", "data.num_test=64"]
    first = subprocess.run([*demo, "n_trials=2"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    mixed = [a for a in demo if not a.startswith(("data", "budget=", "constraints."))]
    out = subprocess.run([*mixed, "n_trials=3"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr
    assert "data: 'synthetic' -> 'fashion_mnist'" in out.stderr and "budget: 'tiny' -> 'proxy'" in out.stderr
    assert "constraints.max_energy_uJ: 2000" in out.stderr and "Traceback" not in out.stderr
    resumed = subprocess.run([*demo, "n_trials=3", "sampler=nsga2"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="demo", storage=f"sqlite:///{tmp_path}/demo/study.db")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3


# --------------------------------------------------------------------------- every objective counts
@pytest.fixture(scope="module")
def three_objectives(tmp_path_factory: pytest.TempPathFactory) -> optuna.Study:
    tmp = tmp_path_factory.mktemp("three")
    cfg = compose_cfg(tmp, "study=three", "n_trials=16", "seed_presets=true", "sampler=random", "zero_cost=false",
                      "objectives=[accuracy,energy_uJ,ops]")
    return run_search(cfg, train_fn=StubTrain(), write=False)


def _vectors(trials: list[optuna.trial.FrozenTrial]) -> set[tuple[float, ...]]:
    return {tuple(t.values) for t in trials}


def test_the_front_of_three_objectives_is_optunas_best_trials(three_objectives: optuna.Study) -> None:
    study = three_objectives
    assert study.metric_names == ["accuracy", "energy_uJ", "ops"]
    assert study_objectives(study) == ("accuracy", "energy_uJ", "ops")
    df = trials_frame(study)
    ours = [t for t in study.trials if t.number in set(df.loc[df["is_pareto"], "number"])]
    assert _vectors(ours) == _vectors(study.best_trials)
    two_d = nondominated([t.values[:2] for t in study.get_trials(states=(TrialState.COMPLETE,))],
                         ["maximize", "minimize"])
    assert sum(two_d) < len(ours)  # the third objective adds members a 2-D front would drop


def test_knee_and_export_use_every_objective(three_objectives: optuna.Study, tmp_path: Path) -> None:
    study = three_objectives
    df = trials_frame(study)
    front = df[df["is_pareto"] & (df["state"] == "COMPLETE")].drop_duplicates("key").sort_values("energy_uJ")
    k = knee_of(front[["accuracy", "energy_uJ", "ops"]].astype(float).values.tolist(),
                ["maximize", "minimize", "minimize"])
    picked = select(df, 1, "knee", study_objectives(study))
    assert int(picked.iloc[0]["number"]) == int(front.iloc[k]["number"])
    assert len(select(df, 100, "pareto", study_objectives(study))) == len(front)
    paths = export(study, tmp_path, 1, "knee")
    payload = yaml.safe_load(paths[0].read_text())
    assert payload["measured_with"]["data"]["name"] == "synthetic"
    assert payload["measured_with"]["budget"]["name"] == "tiny" and payload["measured_with"]["energy"]["name"]
    assert payload["reproduce"].startswith(f"boolnas-train arch={paths[0]} data=synthetic")
    assert "budget=tiny" in payload["reproduce"] and "budget.train_subset=64" in payload["reproduce"]
    assert "budget.num_threads" not in payload["reproduce"] and "budget=full" in payload["train"]


def test_exported_reproduce_line_retrains_to_the_recorded_accuracy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "boolnas.search", *FAST, f"results_dir={tmp_path}", "study=r",
                          "n_trials=1", "seed_presets=[basenet18_k1]", "zero_cost=false"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path}/r/study.db")
    payload = yaml.safe_load(export(study, tmp_path / "archs", 1, "pareto")[0].read_text())
    cmd = payload["reproduce"].split()
    assert cmd[0] == "boolnas-train"
    run = subprocess.run([sys.executable, "-m", "boolnas.search.cli.train", *cmd[1:], "format=json",
                          "budget.num_threads=1", "progress=false"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(run.stdout)["accuracy"] == pytest.approx(payload["metrics"]["accuracy"])
