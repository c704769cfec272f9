"""boolnas-report: regenerate a study's trials.csv, pareto.html and report.html from its storage."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from search.cli_support import CONF_DIR, fail, guarded, setup_logging
from search.config import StorageConfig, check_group_choices
from search.report import write_reports
from search.study import load_existing

log = logging.getLogger("boolnas.report")


def _run(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "study"):
        raise ValueError("study=<name> is required")
    storage = StorageConfig.from_dict(OmegaConf.to_container(cfg.storage, resolve=True))
    results_dir = Path(str(cfg.results_dir))
    study = load_existing(str(cfg.study), storage, results_dir)
    paths = write_reports(study, results_dir / str(cfg.study))
    print(paths["report"])


@hydra.main(config_path=CONF_DIR, config_name="report_cli", version_base=None)
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
