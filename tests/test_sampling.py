"""Sampling: the default space holds the presets, enqueued presets come back, configs validate."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from boolnas.space import PRESETS, Genotype, get_preset, sample
from boolnas.space.sampling import SearchSpace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPACE = yaml.safe_load((ROOT / "conf/space/boolnet.yaml").read_text())
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("per_stage", [False, True])
def test_default_space_contains_presets_and_enqueued_presets_are_sampled_back(per_stage: bool) -> None:
    space = SearchSpace.from_config({**DEFAULT_SPACE, "per_stage": per_stage})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for name in PRESETS:
        assert space.contains(get_preset(name)), name
        study.enqueue_trial(space.params_of(get_preset(name)))
    for name in PRESETS:
        trial = study.ask()
        assert sample(trial, space).key() == get_preset(name).key()
        study.tell(trial, 0.0)


def test_per_stage_space_draws_mixed_designs_and_uniform_space_does_not() -> None:
    def draws(per_stage: bool) -> list[Genotype]:
        space = SearchSpace.from_config({**DEFAULT_SPACE, "per_stage": per_stage})
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        out = []
        for _ in range(40):
            trial = study.ask()
            out.append(sample(trial, space))
            study.tell(trial, 0.0)
        return out

    assert all(g.is_uniform for g in draws(False))
    assert any(not g.is_uniform for g in draws(True))


def test_narrowed_space_only_yields_allowed_values() -> None:
    cfg = {**DEFAULT_SPACE, "slices": [1, 4], "shortcut": ["binary"]}
    space = SearchSpace.from_config(cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(30):
        trial = study.ask()
        g = sample(trial, space)
        assert set(g.slices) <= {1, 4} and set(g.shortcut) == {"binary"}
        assert "placement" not in trial.params  # binary stages ignore placement
        study.tell(trial, 0.0)
    assert not space.contains(get_preset("bireal18"))
    with pytest.raises(ValueError, match="not a point of this search space"):
        space.params_of(get_preset("bireal18"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"slices": [1, 3]}, "'slices'"),
        ({"slices": []}, "empty"),
        ({"shortcut": ["binary", "binary"]}, "duplicate"),
        ({"sampler": "tpe"}, "unknown space field"),
        ({"per_stage": "yes"}, "'per_stage'"),
        ({"width_mult": [0.0]}, "'width_mult'"),
    ],
)
def test_bad_space_configs_are_refused(override: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchSpace.from_config({**DEFAULT_SPACE, **override})


def test_missing_space_field_is_refused() -> None:
    cfg = dict(DEFAULT_SPACE)
    del cfg["stem"]
    with pytest.raises(ValueError, match="stem"):
        SearchSpace.from_config(cfg)
