"""scheduler=asha: rungs in one study, promotion by Pareto rank, workers, PostgreSQL, resume."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_scaleout import SEARCH, _during_search, _kill_mid_trial, _running, rows_of, search
from test_search import compose_cfg

from boolnas.evaluators.training import TrainResult
from boolnas.search.loop import run_search
from boolnas.search.promotion import promotion_order
from boolnas.search.report import study_results, trials_frame
from boolnas.space import Genotype

ASHA = ["scheduler=asha", "scheduler.rungs=[0.5,1,2]", "scheduler.eta=3", "seed_presets=false", "sampler=random"]


class RungStub:
    """Stands in for train_genotype: accuracy grows with the genotype's slices and with the rung's
    training images; records the images of every call."""

    def __init__(self) -> None:
        self.images: list[tuple[str, int]] = []

    def __call__(self, genotype, data, budget, seed=0, plan=None):  # noqa: ANN001, ANN204
        self.images.append((genotype.key(), budget.train_subset))
        acc = 0.1 + 0.05 * genotype.slices[0] + 0.1 * budget.train_subset / 128 + 0.01 * genotype.width_mult
        return None, TrainResult(accuracy=acc, val_accuracy=acc, test_accuracy=None, epochs=1, steps=1, time_s=0.01,
                                 images_per_s=1.0, diverged=False)


def assert_each_rung_trained_once(rows: list[dict[str, str]]) -> None:
    trained = [(r["candidate"], r["rung"]) for r in rows if r["state"] == "COMPLETE" and not r["reused_from"]]
    assert len(trained) == len(set(trained)), Counter(trained).most_common(3)
    assert not [r for r in rows if r["state"] == "RUNNING"]


# --------------------------------------------------------------------------- in process
@pytest.fixture(scope="module")
def asha_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, RungStub]:
    stub = RungStub()
    cfg = compose_cfg(tmp_path_factory.mktemp("asha"), "study=asha", "n_trials=30", *ASHA,
                      "budget.train_subset=64", "budget.batch_size=32")
    return run_search(cfg, train_fn=stub, write=False), stub


def test_promotions_follow_the_pareto_order_of_their_rung(asha_study: tuple[optuna.Study, RungStub]) -> None:
    study, _ = asha_study
    trials = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    promoted = [t for t in trials if t.user_attrs["rung"] > 0]
    assert {t.user_attrs["rung"] for t in promoted} == {1, 2}
    for t in promoted:
        rung, parent = t.user_attrs["rung"], t.user_attrs["promoted_from"]
        # the rung below as it stood when this promotion was enqueued: finished before its parent's promotion
        below = [x for x in trials if x.user_attrs["rung"] == rung - 1 and x.number < t.number]
        seen: dict[str, tuple[float, float]] = {}
        for x in below:
            seen.setdefault(x.user_attrs["candidate"], (x.user_attrs["accuracy"], x.user_attrs["energy_uJ"]))
        keys = list(seen)
        top = [keys[i] for i in promotion_order(list(seen.values()))[:len(keys) // 3]]
        assert t.user_attrs["candidate"] in top, (t.number, rung)
        assert study.trials[parent].user_attrs["candidate"] == t.user_attrs["candidate"]
        assert t.user_attrs["energy_uJ"] == study.trials[parent].user_attrs["energy_uJ"]  # costed once


def test_each_rung_trains_with_its_budget_once_per_candidate(asha_study: tuple[optuna.Study, RungStub]) -> None:
    study, stub = asha_study
    assert len(stub.images) == len(set(stub.images))  # no candidate trained twice at one rung
    assert {n for _, n in stub.images} == {32, 64, 128}
    rungs = Counter(t.user_attrs["rung"] for t in study.get_trials(states=(TrialState.COMPLETE,))
                    if "reused_from" not in t.user_attrs)
    assert rungs[0] > rungs[1] > rungs[2] > 0


def test_results_use_each_candidates_highest_rung(asha_study: tuple[optuna.Study, RungStub]) -> None:
    study, _ = asha_study
    df = trials_frame(study)
    done = df[df["state"] == "COMPLETE"]
    top = done.groupby("candidate")["rung"].transform("max")
    assert (done["superseded"] == (done["rung"] < top)).all()
    assert not (done["superseded"] & done["is_pareto"]).any()
    assert done["superseded"].any() and {"rung", "candidate", "promoted_from"} <= set(df.columns)
    results = study_results(study)
    assert [(a.lower, a.upper) for a in results.rungs] == [(0, 1), (1, 2)]
    assert results.rungs[0].n >= 3 and results.rungs[0].tau == results.rungs[0].tau  # measured, not nan


class LossStub(RungStub):
    """Like RungStub, plus a training history whose loss sum ranks genotypes by energy-unrelated
    width, unlike the accuracy: promotion by loss sum must follow it."""

    def __call__(self, genotype, data, budget, seed=0, plan=None):  # noqa: ANN001, ANN204
        _, r = super().__call__(genotype, data, budget, seed)
        loss = 3.0 - genotype.width_mult - 0.001 * genotype.slices[0]  # per step; lower for wider genotypes
        r.history = [{"epoch": 1, "step": 4, "loss": loss}]
        r.steps = 4
        return None, r


def test_promotion_by_training_loss_sum(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path, "study=asha_loss", "n_trials=24", *ASHA, "scheduler.rank_by=loss_sum",
                      "budget.train_subset=64", "budget.batch_size=32")
    study = run_search(cfg, train_fn=LossStub(), write=False)
    trials = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    promoted = [t for t in trials if t.user_attrs["rung"] == 1]
    assert promoted
    for t in trials:  # recorded as the loop keeps it: mean loss x steps
        g = Genotype.from_dict(t.user_attrs["genotype"])
        assert t.user_attrs["train_loss_sum"] == pytest.approx(4 * (3.0 - g.width_mult - 0.001 * g.slices[0]))
    for t in promoted:
        below = [x for x in trials if x.user_attrs["rung"] == 0 and x.number < t.number]
        seen: dict[str, tuple[float, float]] = {}
        for x in below:
            seen.setdefault(x.user_attrs["candidate"], (-x.user_attrs["train_loss_sum"], x.user_attrs["energy_uJ"]))
        keys = list(seen)
        top = [keys[i] for i in promotion_order(list(seen.values()))[:len(keys) // 3]]
        assert t.user_attrs["candidate"] in top, t.number


def test_asha_refuses_rungs_below_one_batch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="less than one batch"):
        compose_cfg(tmp_path, "scheduler=asha", "scheduler.rungs=[0.1,1]", "budget.train_subset=64",
                    "budget.batch_size=32")


# --------------------------------------------------------------------------- real workers
@pytest.mark.slow
def test_two_workers_on_sqlite(tmp_path: Path) -> None:
    out = search(f"results_dir={tmp_path}", "study=mf2", "workers=2", "n_trials=14", *ASHA)
    assert out.returncode == 0, out.stderr
    rows = rows_of(tmp_path, "mf2")
    assert len([r for r in rows if r["state"] == "COMPLETE"]) == 14
    assert_each_rung_trained_once(rows)
    assert {r["rung"] for r in rows if r["state"] == "COMPLETE"} >= {"0", "1"}
    assert len({r["worker"] for r in rows}) == 2


@pytest.mark.slow
def test_two_workers_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    out = search(f"results_dir={tmp_path}", "study=mfpg", "storage=postgres", "workers=2", "n_trials=12", *ASHA,
                 env={"BOOLNAS_STORAGE_URL": postgres_url})
    assert out.returncode == 0, out.stderr
    rows = rows_of(tmp_path, "mfpg")
    assert len([r for r in rows if r["state"] == "COMPLETE"]) == 12
    assert_each_rung_trained_once(rows)
    assert any(r["rung"] == "1" for r in rows)


@pytest.mark.slow
def test_resume_after_a_killed_worker_and_ctrl_c(tmp_path: Path) -> None:
    """A worker SIGKILLed mid-training, then Ctrl-C to the supervisor; the rerun finishes the
    study with no candidate trained twice at one rung, and promotions keep their rung."""
    args = [*SEARCH, f"results_dir={tmp_path}", "study=mfk", "workers=2", "n_trials=12", *ASHA, "budget.epochs=20"]
    storage = f"sqlite:///{tmp_path / 'mfk' / 'study.db'}"
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim, err = _during_search(proc, lambda: _kill_mid_trial(storage, "mfk"))
    assert proc.returncode == 0, err
    proc = subprocess.Popen([*args, "n_trials=20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def interrupt_while_training() -> bool:
        if not any(t.user_attrs.get("trains") for t in _running(storage, "mfk")):
            return False
        proc.send_signal(signal.SIGINT)
        return True

    _, err = _during_search(proc, interrupt_while_training)
    assert proc.returncode == 130, err
    again = subprocess.run([*args, "n_trials=20"], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    rows = rows_of(tmp_path, "mfk")
    assert len([r for r in rows if r["state"] == "COMPLETE"]) == 20
    assert_each_rung_trained_once(rows)
    (dead,) = [r for r in rows if int(r["number"]) == victim.number]
    retried = [r for r in rows if r["retry_of"] and int(float(r["retry_of"])) == victim.number]
    assert dead["state"] == "FAIL" and retried and all(r["rung"] == dead["rung"] for r in retried)
