"""boolnas-plan: the layer plan and op counts of presets or arch files, as a table or JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from boolnas.search.cli.support import guarded, quiet_interrupt_while_loading, run_cli
from boolnas.search.conf_dir import CONF_DIR

quiet_interrupt_while_loading()  # Ctrl-C while the modules load: one line, no import traceback

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from boolnas.space import PRESETS, Task, make_plan  # noqa: E402
from boolnas.space.arch_io import load_arch  # noqa: E402
from boolnas.space.fields import one_of  # noqa: E402

FORMATS = ("table", "json")


def resolve_archs(ref: str) -> list[tuple[str, Any]]:
    """``all`` -> every preset; otherwise one preset name or arch YAML path."""
    refs = list(PRESETS) if ref == "all" else [ref]
    return [load_arch(r) for r in refs]


def _run(cfg: DictConfig) -> None:
    one_of(cfg.format, "format", FORMATS, problem="is not supported")
    task = Task.from_dict(OmegaConf.to_container(cfg.task, resolve=True))
    results = []
    for name, genotype in resolve_archs(str(cfg.arch)):
        plan = make_plan(genotype, task)
        if cfg.format == "table":
            print(f"== {name} on {task.input_size}x{task.input_size}x{task.in_channels}, "
                  f"{task.num_classes} classes (key {genotype.key()})")
            print(plan.describe())
            print()
        else:
            results.append({"arch": name, "key": genotype.key(), "genotype": genotype.to_dict(),
                            **plan.totals(), "widths": list(plan.widths), "layers": len(plan)})
    if cfg.format == "json":
        json.dump(results if cfg.arch == "all" else results[0], sys.stdout)
        print()


@hydra.main(config_path=CONF_DIR, config_name="plan_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg, output_key="")


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    run_cli(_hydra_main, "plan_cli", groups=("task",))


if __name__ == "__main__":
    main()
