"""boolnas-search: build or resume an Optuna study and run trials until it holds ``n_trials``.

The composed config is validated before any trial runs: an unknown config-group value, space
value, preset or a malformed arch YAML exits with code 2 and one line naming the problem.
Ctrl-C (SIGINT) marks the running trial FAIL, writes the reports and exits with 130; running
the same command again resumes the study. ``workers=N`` starts N worker processes on the study
(search/workers.py); too many failed trials in a row end a worker with exit code 3.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from search.cli_support import CONF_DIR, guarded, run_cli
from search.config import GROUPS, SearchConfig
from search.loop import TooManyFailures, run_search

log = logging.getLogger("boolnas.search")


def _run(cfg: DictConfig) -> None:
    config = SearchConfig.from_cfg(OmegaConf.to_container(cfg, resolve=True))
    if config.workers > 1:
        from hydra.core.hydra_config import HydraConfig

        from search.workers import run_workers

        code = run_workers(config, list(HydraConfig.get().overrides.task))
        if code:
            raise SystemExit(code)
        log.info("report: %s", config.study_dir / "report.html")
        return
    try:
        run_search(config)
    except KeyboardInterrupt:
        log.warning("interrupted: run the same command again to resume study %r", config.study)
        raise SystemExit(130) from None
    except TooManyFailures as exc:
        log.error("%s", exc)
        raise SystemExit(3) from None
    log.info("report: %s", config.study_dir / "report.html")


@hydra.main(config_path=CONF_DIR, config_name="search", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    """Console entry point: check the overrides first (bad input exits 2), then hand over to Hydra."""
    run_cli(_hydra_main, "search", groups=GROUPS)


if __name__ == "__main__":
    main()
