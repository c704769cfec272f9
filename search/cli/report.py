"""boolnas-report: regenerate a study's trials.csv, pareto.html and report.html from its storage.

``study=a,b`` (or ``study=[a,b]``) regenerates each study's own files and writes one combined
report overlaying their fronts and hypervolume histories, by default to ``<results_dir>/a+b/``
(``out=`` chooses another folder). Studies with different objectives are refused; other
differing settings are warned about on stderr and in the combined report.
"""

from __future__ import annotations

from boolnas.search.cli.support import quiet_interrupt_while_loading

quiet_interrupt_while_loading()  # Ctrl-C while the modules load: one line, no import traceback

import logging  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig, ListConfig, OmegaConf  # noqa: E402

from boolnas.search.cli.studies import existing_study, storage_from_folder  # noqa: E402
from boolnas.search.cli.support import guarded, run_cli  # noqa: E402
from boolnas.search.conf_dir import CONF_DIR  # noqa: E402
from boolnas.search.config import StorageConfig  # noqa: E402
from boolnas.search.report import study_results  # noqa: E402
from boolnas.search.report_files import (  # noqa: E402
    combined_dir,
    comparability,
    write_combined_report,
    write_study_files,
)
from boolnas.search.study import load_existing  # noqa: E402

log = logging.getLogger("boolnas.report")
_STUDY_LIST = re.compile(r"^study=([^\[\]'\"=,\s]+(?:,[^\[\]'\"=,\s]+)+)$")


def study_names(value: Any) -> list[str]:
    """The study names of ``study=``: one name, a list, or a quoted comma-separated string."""
    names = [str(v) for v in value] if isinstance(value, (list, ListConfig)) else str(value).split(",")
    names = [n.strip() for n in names]
    if not names or not all(names):
        raise ValueError(f"study={value!r} names no study: give study=<name> or study=<a>,<b>")
    return names


def _run(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "study"):
        raise ValueError("study=<name> is required")
    storage = StorageConfig.from_dict(OmegaConf.to_container(cfg.storage, resolve=True))
    results_dir = Path(str(cfg.results_dir))
    names = study_names(cfg.study)
    if len(set(names)) != len(names):
        raise ValueError(f"study= names a study twice: {names}")
    checked = [existing_study(n, storage, results_dir) for n in names]
    all_results = [study_results(load_existing(n, storage, results_dir)) for n in checked]
    out = cfg.get("out")
    if len(all_results) == 1:
        paths = write_study_files(all_results[0], Path(str(out)) if out else results_dir / checked[0])
        print(paths["report"])
        return
    comparability(all_results)  # refuse before writing anything
    own = {r.name: write_study_files(r, results_dir / r.name)["report"] for r in all_results}
    paths = write_combined_report(all_results, Path(str(out)) if out else combined_dir(results_dir, checked), own)
    for name in checked:
        print(own[name])
    print(paths["report"])


def as_list_override(argv: Sequence[str]) -> list[str]:
    """``study=a,b`` as ``study=[a,b]``: Hydra reads an unquoted comma list as a sweep and refuses it."""
    return [f"study=[{m.group(1)}]" if (m := _STUDY_LIST.match(a)) else a for a in argv]


@hydra.main(config_path=CONF_DIR, config_name="report_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg)


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    sys.argv[1:] = as_list_override(sys.argv[1:])
    run_cli(_hydra_main, "report_cli", groups=("storage",), storage_from_folder=storage_from_folder)


if __name__ == "__main__":
    main()
