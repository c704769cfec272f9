"""boolnas-export: write a study's best architectures to results/<study>/archs/*.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from search.cli_support import CONF_DIR, fail, guarded, setup_logging
from search.config import StorageConfig, check_group_choices
from search.export import export
from search.study import load_existing


def _run(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "study"):
        raise ValueError("study=<name> is required")
    storage = StorageConfig.from_dict(OmegaConf.to_container(cfg.storage, resolve=True))
    results_dir = Path(str(cfg.results_dir))
    study = load_existing(str(cfg.study), storage, results_dir)
    for path in export(study, results_dir / str(cfg.study) / "archs", cfg.top_k, str(cfg.select)):
        print(path)


@hydra.main(config_path=CONF_DIR, config_name="export_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    try:
        check_group_choices(sys.argv[1:], CONF_DIR, ("storage",))
    except ValueError as exc:
        setup_logging()
        fail(str(exc))
    _hydra_main()


if __name__ == "__main__":
    main()
