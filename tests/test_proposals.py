"""Energy-aware proposals: the exact expected hypervolume improvement, the accuracy model, the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState
from test_search import StubTrain, compose_cfg

from boolnas.search.loop import run_search
from boolnas.search.pareto import hypervolume
from boolnas.search.proposals import PROPOSED, LinearModel, ProposerConfig, expected_hv_improvement


@pytest.mark.parametrize("seed", range(4))
def test_expected_improvement_is_the_monte_carlo_mean(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = [(float(a), float(e)) for a, e in zip(rng.uniform(0.3, 0.9, 6), rng.uniform(100, 900, 6))]
    ref = 1000.0
    mu, sigma, energy = rng.uniform(0.3, 0.95, 5), rng.uniform(0.01, 0.2, 5), rng.uniform(50, 1100, 5)
    exact = expected_hv_improvement(mu, sigma, energy, points, ref)
    base = hypervolume(points, ref)
    for i in range(5):
        draws = np.clip(rng.normal(mu[i], sigma[i], 4000), -1, 2)
        mc = np.mean([hypervolume([*points, (float(a), float(energy[i]))], ref) - base for a in draws])
        # hypervolume() ignores accuracies <= 0 and counts the box [0, 1] only; the draws stay inside it
        assert exact[i] == pytest.approx(mc, abs=4e-3), i
    assert exact[energy >= ref].sum() == 0


def test_improvement_grows_with_predicted_accuracy_and_falls_with_energy() -> None:
    points = [(0.6, 300.0), (0.8, 700.0)]
    gain = expected_hv_improvement(np.array([0.5, 0.7, 0.9]), np.full(3, 0.05), np.full(3, 400.0), points, 1000.0)
    assert gain[0] < gain[1] < gain[2]
    cheap = expected_hv_improvement(np.full(3, 0.7), np.full(3, 0.05), np.array([100.0, 400.0, 800.0]), points,
                                    1000.0)
    assert cheap[0] > cheap[1] > cheap[2]


def test_linear_model_fits_and_is_unsure_far_from_its_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = 0.5 + x @ np.array([0.1, -0.05, 0.02]) + rng.normal(0, 0.005, 40)
    model = LinearModel(x, y, ridge=1e-3)
    mu, sd = model.predict(np.array([[0.0, 0.0, 0.0], [20.0, 20.0, 20.0]]))
    assert mu[0] == pytest.approx(0.5, abs=0.01)
    assert sd[1] > 5 * sd[0]


@pytest.mark.parametrize(("options", "message"), [
    ({"name": "bo"}, "proposer.name"), ({"candidates": 0}, "candidates"), ({"startup": 1}, "startup"),
    ({"explore": 1.5}, "explore"), ({"ridge": 0}, "ridge"), ({"nope": 1}, "unknown proposer option")])
def test_bad_proposer_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProposerConfig.from_dict({"name": "ehvi", **options})


def test_search_trains_proposals_after_its_startup(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path, "study=ea", "n_trials=24", "seed_presets=false", "sampler=random", "zero_cost=false",
                      "proposer=ehvi", "proposer.startup=8", "proposer.explore=0.25", "proposer.candidates=64")
    study = run_search(cfg, train_fn=StubTrain(), write=False)
    trials = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    proposed = [t for t in trials if PROPOSED in t.user_attrs]
    assert all(t.number >= 8 for t in proposed)
    assert 8 <= len(proposed) < 16  # about three quarters of the trials after the start-up; the rest sampled
    assert all(t.user_attrs[PROPOSED] >= 0 for t in proposed)
    keys = [t.user_attrs["key"] for t in proposed]
    first: dict[str, int] = {}
    for t in trials:
        first.setdefault(t.user_attrs["key"], t.number)
    assert all(first[k] == t.number for k, t in zip(keys, proposed, strict=True))  # never an evaluated genotype
    again = run_search(compose_cfg(tmp_path / "b", "study=ea", "n_trials=24", "seed_presets=false", "sampler=random",
                                   "zero_cost=false", "proposer=ehvi", "proposer.startup=8",
                                   "proposer.explore=0.25", "proposer.candidates=64"),
                       train_fn=StubTrain(), write=False)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]  # seeded: reproducible
