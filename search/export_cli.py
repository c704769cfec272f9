"""boolnas-export: write a study's best architectures to results/<study>/archs/*.yaml."""

from __future__ import annotations

from pathlib import Path

from search.cli_support import CONF_DIR, existing_study, guarded, quiet_interrupt_while_loading, run_cli

quiet_interrupt_while_loading()  # Ctrl-C while the modules load: one line, no import traceback

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from search.config import StorageConfig  # noqa: E402
from search.export import SELECTIONS, export  # noqa: E402
from search.study import load_existing  # noqa: E402


def _run(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "study"):
        raise ValueError("study=<name> is required")
    top_k, how = cfg.top_k, str(cfg.select)
    if how not in SELECTIONS:
        raise ValueError(f"select={how!r} is unknown; use one of {list(SELECTIONS)}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    storage = StorageConfig.from_dict(OmegaConf.to_container(cfg.storage, resolve=True))
    results_dir = Path(str(cfg.results_dir))
    name = existing_study(cfg.study, storage, results_dir)
    study = load_existing(name, storage, results_dir)
    for path in export(study, results_dir / name / "archs", top_k, how):
        print(path)


@hydra.main(config_path=CONF_DIR, config_name="export_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    run_cli(_hydra_main, "export_cli", groups=("storage",))


if __name__ == "__main__":
    main()
