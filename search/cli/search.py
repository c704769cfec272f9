"""boolnas-search: build or resume an Optuna study and run trials until it holds ``n_trials``.

The composed config is validated before any trial runs: an unknown config-group value, space
value, preset or a malformed arch YAML exits with code 2 and one line naming the problem.
Ctrl-C (SIGINT) or SIGTERM marks the running trial FAIL "interrupted", writes the reports and
exits with 130 (SIGINT) or 143 (SIGTERM); running the same command again resumes the study (and
evaluates a preset whose trial was interrupted). ``workers=N`` starts N worker processes on the study
(search/workers.py); too many failed trials in a row end a worker with exit code 3.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from boolnas.search.cli.support import (
    check_output_dir,
    guarded,
    on_interrupt,
    quiet_interrupt_while_loading,
    run_cli,
)
from boolnas.search.conf_dir import CONF_DIR
from boolnas.search.worker_env import START_GATE_ENV

quiet_interrupt_while_loading()  # Ctrl-C while torch loads: one line, no import traceback

from boolnas.search.cpu_share import CpuShare, prefer_short_spin  # noqa: E402

prefer_short_spin()  # before torch loads libgomp (search/cpu_share.py); the imports below load it

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from boolnas.evaluators.memory import available_bytes  # noqa: E402
from boolnas.search.cli.studies import storage_from_folder  # noqa: E402
from boolnas.search.config import GROUPS, SearchConfig  # noqa: E402
from boolnas.search.loop import TooManyFailures, run_search  # noqa: E402
from boolnas.search.workers import run_workers, wait_at_gate  # noqa: E402

log = logging.getLogger("boolnas.search")


def _run(cfg: DictConfig) -> None:
    container = OmegaConf.to_container(cfg, resolve=True)
    if container.get("workers") == "auto":
        container["workers"] = auto_workers(container)
    config = SearchConfig.from_cfg(container)
    check_output_dir(config.study_dir, "results_dir", config.results_dir)  # before the data loads
    if config.workers > 1:
        from hydra.core.hydra_config import HydraConfig

        code = run_workers(config, list(HydraConfig.get().overrides.task))
        if code:
            raise SystemExit(code)
        log.info("report: %s", config.study_dir / "report.html")
        return
    supervised = os.environ.get(START_GATE_ENV) == "1"  # a worker of workers=N (search/workers.py)
    try:
        # Ctrl-C / SIGTERM: the running trial is told FAIL "interrupted", the reports are written
        # (search/loop.py), then one line and exit 130 / 143 (search/cli/support.py)
        with on_interrupt(f"run the same command again to resume study {config.study!r}"):
            run_search(config, share=CpuShare.from_environment(), write=not supervised,
                       before_study=_wait_for_supervisor if supervised else None)
    except TooManyFailures as exc:
        log.error("%s", exc)
        raise SystemExit(3) from None
    if not supervised:
        log.info("report: %s", config.study_dir / "report.html")


def _wait_for_supervisor() -> None:
    if not wait_at_gate(sys.stdin.buffer):
        raise SystemExit(0)  # the supervisor refused the run (it says why) or had nothing to do


def auto_workers(container: dict[str, Any]) -> int:
    """``workers=auto``: one single-threaded worker per usable CPU, the most proxy trials per hour
    on the 2-core machine (benchmarks/bench_concurrency.py: 2 workers x 1 thread against 1 x 2);
    no more workers than trials, nor than GiBs of free memory (each holds its own data set)."""
    cpus = CpuShare.from_environment(register=False).cpus
    n_trials = container.get("n_trials")
    free = available_bytes("cpu")
    limits = [cpus, n_trials if isinstance(n_trials, int) and n_trials > 0 else cpus]
    if free is not None:
        limits.append(max(1, free // 2**30))
    workers = max(1, min(limits))
    log.info("workers=auto: %d worker(s) (%d usable CPU(s))", workers, cpus)
    return workers


@hydra.main(config_path=CONF_DIR, config_name="search", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    """Console entry point: check the overrides first (bad input exits 2), then hand over to Hydra."""
    run_cli(_hydra_main, "search", groups=GROUPS, storage_from_folder=storage_from_folder)


if __name__ == "__main__":
    main()
