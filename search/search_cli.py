"""boolnas-search: build or resume an Optuna study and run trials until it holds ``n_trials``.

The composed config is validated before any trial runs: an unknown config-group value, space
value, preset or a malformed arch YAML exits with code 2 and one line naming the problem.
Ctrl-C (SIGINT) marks the running trial FAIL, writes the reports and exits with 130; running
the same command again resumes the study.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from search.cli_support import CONF_DIR, fail, guarded, setup_logging
from search.config import SearchConfig, check_group_choices
from search.loop import run_search

log = logging.getLogger("boolnas.search")


def _run(cfg: DictConfig) -> None:
    config = SearchConfig.from_cfg(OmegaConf.to_container(cfg, resolve=True))
    try:
        run_search(config)
    except KeyboardInterrupt:
        log.warning("interrupted: run the same command again to resume study %r", config.study)
        raise SystemExit(130) from None
    log.info("report: %s", config.study_dir / "report.html")


@hydra.main(config_path=CONF_DIR, config_name="search", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    """Console entry point: check config-group names first (exit 2), then hand over to Hydra."""
    try:
        check_group_choices(sys.argv[1:], CONF_DIR)
    except ValueError as exc:
        setup_logging()
        fail(str(exc))
    _hydra_main()


if __name__ == "__main__":
    main()
