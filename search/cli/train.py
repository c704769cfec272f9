"""boolnas-train: train one architecture (preset or arch YAML) under a budget.

stdout holds only the result (a table or one JSON object); logs and the progress bar go to
stderr. ``budget=full`` keeps a checkpoint per epoch in the run folder and resumes from it.
Ctrl-C or SIGTERM ends it with one line (how to resume) and exit code 130 / 143.

Started by ``torchrun --nproc_per_node=N`` (one or several machines), it trains data-parallel:
this module reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK, joins the process group (gloo on
CPU, NCCL on CUDA), and only rank 0 logs, checkpoints and writes ``model.pt`` and the result.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from boolnas.search.cli.support import (
    check_output_dir,
    guarded,
    on_interrupt,
    quiet_interrupt_while_loading,
    run_cli,
)
from boolnas.search.conf_dir import CONF_DIR

quiet_interrupt_while_loading()  # Ctrl-C while torch loads: one line, no import traceback

from boolnas.search.cpu_share import CpuShare, prefer_short_spin  # noqa: E402

prefer_short_spin()  # before torch loads libgomp (search/cpu_share.py); the imports below load it

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from boolnas.evaluators import distributed  # noqa: E402
from boolnas.evaluators.accuracy import (  # noqa: E402
    check_network,
    proxy_task,
    save_model,
    train_genotype,
    training_curve_html,
)
from boolnas.evaluators.data import DataConfig, load_dataset, open_streams  # noqa: E402
from boolnas.evaluators.distributed import DistContext  # noqa: E402
from boolnas.evaluators.training import Budget, resolve_device  # noqa: E402
from boolnas.space.arch_io import load_arch  # noqa: E402
from boolnas.space.fields import BOOL, INTEGER, PATH, field_value, one_of  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402

log = logging.getLogger("boolnas.train")
FORMATS = ("table", "json")
JSON_KEYS = ("accuracy", "val_accuracy", "test_accuracy", "epochs", "time_s", "images_per_s", "diverged")


def _run(cfg: DictConfig) -> None:
    one_of(cfg.format, "format", FORMATS, problem="is not supported")
    seed = field_value(cfg.seed, "seed", INTEGER, low=0)
    field_value(cfg.progress, "progress", BOOL)
    field_value(cfg.run_dir, "run_dir", PATH, optional=True, expected="a folder path (or null)")
    check_network(cfg.network)
    ctx = DistContext.from_environment(os.environ)  # torchrun's RANK / WORLD_SIZE / LOCAL_RANK
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 logs; the others only warn
    name, genotype = load_arch(str(cfg.arch))
    budget = Budget.from_dict(OmegaConf.to_container(cfg.budget, resolve=True))
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    run_dir = None
    if budget.checkpoint:
        suffix = "" if cfg.network == "binary" else f"-{cfg.network}"
        run_dir = Path(cfg.run_dir or f"results/train/{name}-{genotype.key()}{suffix}")
        if run_dir.exists() and not run_dir.is_dir():
            raise ValueError(f"run_dir {run_dir} is a file; give a folder for the checkpoint and weights")
        check_output_dir(run_dir, "run_dir")
    share = CpuShare.from_environment()  # registered now, so trainers started together see each other
    if ctx.local_world_size > 1:  # torchrun started this many trainers here at once
        share = replace(share, declared=max(share.declared, ctx.local_world_size))
    if budget.stream:
        data = open_streams(data_cfg, resolution=budget.resolution, augment=budget.augment)
    else:
        data = load_dataset(data_cfg)
    if not budget.num_threads:  # auto: this process's share of the machine, fixed for the run
        budget = replace(budget, num_threads=share.threads())
        log.info("%s", share.describe(budget.num_threads))
    if run_dir is not None:
        log.info("run folder %s (a restarted run resumes from its checkpoint)", run_dir)
    what = name if cfg.network == "binary" else f"the {cfg.network} of {name}"
    log.info("training %s (%s) under budget %s on %s%s", what, genotype.key(), budget.name, data.name,
             f", {ctx.world_size} processes" if ctx.active else "")
    distributed.start(ctx, resolve_device(budget.device, ctx))
    try:
        # Ctrl-C / SIGTERM: one line (how to resume), exit 130 / 143 (search/cli/support.py)
        with on_interrupt(f"run the same command again to resume from the last checkpoint in {run_dir}"
                          if run_dir is not None else "nothing was written"):
            model, result = train_genotype(genotype, data, budget, seed=seed, run_dir=run_dir,
                                           progress=cfg.progress, network=cfg.network, dist_ctx=ctx)
    finally:
        distributed.stop()
    if not ctx.is_main:
        return  # rank 0 writes the weights and prints the result
    if result.diverged:
        log.error("diverged: %s", result.diverged_reason)
    out = {k: result.to_dict()[k] for k in JSON_KEYS}
    out["diverged_reason"] = result.diverged_reason
    if run_dir is not None and not result.diverged:
        task = proxy_task(data, budget)
        save_model(run_dir / "model.pt", model, genotype, task, out, network=cfg.network)
        curve = training_curve_html(result.history, run_dir / "curve.html", f"{name} ({budget.name})")
        write_text_atomic(run_dir / "result.json", json.dumps({"arch": name, "network": cfg.network, **out},
                                                              indent=2))
        log.info("weights %s, curve %s", run_dir / "model.pt", curve)
    if cfg.format == "json":
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:<16}{value if not isinstance(value, float) else f'{value:.4f}'}")


@hydra.main(config_path=CONF_DIR, config_name="train_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    guarded(_run, cfg, output_key="run_dir")


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    run_cli(_hydra_main, "train_cli", groups=("data", "budget"))


if __name__ == "__main__":
    main()
