"""boolnas-report: regenerate a study's trials.csv, pareto.html and report.html from its storage."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from search.cli_support import CONF_DIR, existing_study, guarded, run_cli
from search.config import StorageConfig
from search.report import write_reports
from search.study import load_existing

log = logging.getLogger("boolnas.report")


def _run(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "study"):
        raise ValueError("study=<name> is required")
    storage = StorageConfig.from_dict(OmegaConf.to_container(cfg.storage, resolve=True))
    results_dir = Path(str(cfg.results_dir))
    name = existing_study(cfg.study, storage, results_dir)
    study = load_existing(name, storage, results_dir)
    paths = write_reports(study, results_dir / name)
    print(paths["report"])


@hydra.main(config_path=CONF_DIR, config_name="report_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    run_cli(_hydra_main, "report_cli", groups=("storage",))


if __name__ == "__main__":
    main()
