"""Every option of every config group composes with each command's config and validates.

conf/<group>/<option>.yaml is where the defaults live. Each option is composed with Hydra into
every primary config (conf/<command>.yaml) whose defaults list names the group, and the group's
section is validated by its typed record (the same ``from_dict`` the commands call); with the
search's config the whole composed config goes through ``SearchConfig.from_cfg`` as well.

Outside resources are stood in for, not skipped: ``storage=postgres`` gets a dummy
``BOOLNAS_STORAGE_URL`` (validation does not connect), ``data=imagefolder`` its required
``data.root`` (a temporary folder), and ``SearchConfig.from_cfg``'s check that the dataset's files
are in place is switched off (it stats files, it validates nothing of the config).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from boolnas.evaluators.data import DataConfig
from boolnas.evaluators.energy import HardwareProfile
from boolnas.evaluators.training import Budget
from boolnas.search import config as search_config
from boolnas.search.config import GROUPS, SamplerConfig, SearchConfig, StorageConfig
from boolnas.search.proposals import ProposerConfig
from boolnas.search.rungs import SchedulerConfig
from boolnas.space import Task
from boolnas.space.sampling import SearchSpace

CONF_DIR = str(importlib.resources.files("boolnas.conf"))
PRIMARIES = ("search", "train_cli", "energy_cli", "plan_cli", "report_cli", "export_cli")
# the typed record of each group's section
VALIDATORS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "space": SearchSpace.from_config,
    "sampler": SamplerConfig.from_dict,
    "scheduler": SchedulerConfig.from_dict,
    "proposer": ProposerConfig.from_dict,
    "storage": StorageConfig.from_dict,
    "data": DataConfig.from_dict,
    "budget": Budget.from_dict,
    "energy": HardwareProfile.from_dict,
    "task": Task.from_dict,
}
# the records built in code from a shipped option file: ``from_conf(option)``
FROM_CONF: dict[str, Callable[[str], Any]] = {
    "sampler": SamplerConfig.from_conf,
    "scheduler": SchedulerConfig.from_conf,
    "proposer": ProposerConfig.from_conf,
    "storage": StorageConfig.from_conf,
    "data": DataConfig.from_conf,
    "budget": Budget.from_conf,
    "task": Task.from_conf,
}
# what an option needs from outside to validate: overrides (``{tmp}``: a temporary folder)
NEEDS = {("data", "imagefolder"): ("data.root={tmp}",)}


def groups_of(primary: str) -> list[str]:
    """The config groups named in the defaults list of conf/<primary>.yaml (hydra/ overrides aside)."""
    defaults = yaml.safe_load(Path(CONF_DIR, f"{primary}.yaml").read_text())["defaults"]
    return [next(iter(d)) for d in defaults if isinstance(d, dict) and not next(iter(d)).startswith("override ")]


def options_of(group: str) -> list[str]:
    return sorted(p.stem for p in Path(CONF_DIR, group).glob("*.yaml"))


CASES = [(primary, group, option) for primary in PRIMARIES for group in groups_of(primary)
         for option in options_of(group)]
# each group with a ``from_conf`` composed once per option, into the first primary config that names it
SHIPPED = [(next(p for p in PRIMARIES if group in groups_of(p)), group, option) for group in FROM_CONF
           for option in options_of(group)]


def composed(primary: str, overrides: list[str]) -> dict[str, Any]:
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose(primary, overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def _outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOLNAS_STORAGE_URL", "postgresql://user:secret@localhost/boolnas")
    monkeypatch.setattr(search_config, "_data_present", lambda data: data)


def test_every_group_is_covered() -> None:
    """Each folder of conf/ (but hydra/) is a group some command uses, and has a validator."""
    folders = {p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and not p.name.startswith(("_", "hydra"))}
    used = {g for primary in PRIMARIES for g in groups_of(primary)}
    assert folders == used == set(VALIDATORS) == set(GROUPS)
    assert all(options_of(g) for g in folders)


@pytest.mark.parametrize(("primary", "group", "option"), CASES, ids=[f"{p}-{g}={o}" for p, g, o in CASES])
def test_option_composes_and_validates(primary: str, group: str, option: str, tmp_path: Path) -> None:
    extra = [o.format(tmp=tmp_path) for o in NEEDS.get((group, option), ())]
    cfg = composed(primary, [f"{group}={option}", *extra])
    VALIDATORS[group](dict(cfg[group]))
    if primary == "search":
        assert SearchConfig.from_cfg(cfg).study == cfg["study"]


def test_every_primary_config_validates_with_its_defaults() -> None:
    """The defaults lists themselves: each group's default option validates (no override)."""
    for primary in PRIMARIES:
        cfg = composed(primary, [])
        for group in groups_of(primary):
            VALIDATORS[group](dict(cfg[group]))
    SearchConfig.from_cfg(composed("search", []))


@pytest.mark.parametrize(("primary", "group", "option"), SHIPPED, ids=[f"{g}={o}" for _, g, o in SHIPPED])
def test_from_conf_is_what_hydra_composes(primary: str, group: str, option: str) -> None:
    """A record made in code from an option file equals the one the commands validate from Hydra's
    composition of that option: conf/ is the one source of the values."""
    cfg = composed(primary, [f"{group}={option}"])
    assert FROM_CONF[group](option) == VALIDATORS[group](dict(cfg[group]))
