"""boolnas-export: a study's best architectures as arch YAMLs, or one network for deployment.

- ``study=<name>``: write the study's selected architectures to results/<study>/archs/*.yaml;
- ``weights=<model.pt>`` (trained by ``boolnas-train budget=full``) and/or ``arch=<preset|yaml>``
  (fresh weights on ``task``): write the network as ONNX or TorchScript (evaluators/deploy/),
  verified against PyTorch first (``verify=true``).

stdout holds only the written paths, one per line; logs go to stderr. Bad input exits 2 with one
line; a network that fails its verification exits 1 and nothing is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from boolnas.search.cli.support import (
    check_output_dir,
    fail,
    guarded,
    quiet_interrupt_while_loading,
    run_cli,
)
from boolnas.search.conf_dir import CONF_DIR

quiet_interrupt_while_loading()  # Ctrl-C while the modules load: one line, no import traceback

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from boolnas.evaluators.accuracy import load_model  # noqa: E402
from boolnas.evaluators.deploy.artifacts import (  # noqa: E402
    FORMATS,
    SUFFIXES,
    VerificationError,
    export_network,
    metadata,
)
from boolnas.search.cli.studies import existing_study, storage_from_folder  # noqa: E402
from boolnas.search.config import StorageConfig  # noqa: E402
from boolnas.search.export import check_selection, export  # noqa: E402
from boolnas.search.study import load_existing  # noqa: E402
from boolnas.space import Task, make_plan  # noqa: E402
from boolnas.space.arch_io import load_arch  # noqa: E402
from boolnas.space.builder import PlanNetwork, build  # noqa: E402
from boolnas.space.fields import BOOL, INTEGER, PATH, field_value, one_of  # noqa: E402

log = logging.getLogger("boolnas.export")
NETWORK_KEYS = ("arch", "weights", "format", "out", "seed", "verify", "verify_images")
STUDY_KEYS = ("top_k", "select")


def _overridden() -> set[str]:
    """The top-level keys and groups the command line set (empty outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.lstrip("+~").partition("=")[0].split(".")[0] for o in HydraConfig.get().overrides.task}


def _keys(keys: list[str]) -> str:
    return f"{', '.join(k + '=' for k in keys)} {'applies' if len(keys) == 1 else 'apply'}"


def _run(cfg: DictConfig) -> None:
    given = _overridden()
    network = cfg.arch is not None or cfg.weights is not None
    if OmegaConf.is_missing(cfg, "study") or (cfg.study is None and not network):
        raise ValueError("nothing to export: give study=<name> (arch YAMLs of a study's best architectures) or "
                         "weights=<model.pt> / arch=<preset|yaml> (a network for deployment)")
    if cfg.study is not None and network:
        raise ValueError("give study= (arch YAMLs of a study) or arch= / weights= (one network), not both")
    if cfg.study is not None:
        stray = sorted(given & {*NETWORK_KEYS, "task"})
        if stray:
            raise ValueError(f"{_keys(stray)} to arch= / weights=; a study exports arch "
                             "YAMLs (train one with boolnas-train arch=<yaml> budget=full, then export its model.pt "
                             "with weights=)")
        _export_study(cfg)
    else:
        stray = sorted(given & {*STUDY_KEYS, "storage"})
        if stray:
            raise ValueError(f"{_keys(stray)} to study=, not to arch= / weights=")
        _export_network(cfg, task_given="task" in given)


def _export_study(cfg: DictConfig) -> None:
    top_k, how = cfg.top_k, str(cfg.select)
    check_selection(top_k, how)  # before the study is looked up
    storage = StorageConfig.from_dict(OmegaConf.to_container(cfg.storage, resolve=True))
    results_dir = Path(str(cfg.results_dir))
    name = existing_study(cfg.study, storage, results_dir)
    study = load_existing(name, storage, results_dir)
    for path in export(study, results_dir / name / "archs", top_k, how):
        print(path)


def _checked(cfg: DictConfig) -> tuple[str, int, bool, int]:
    fmt = one_of(str(cfg.format), "format", FORMATS)
    seed = field_value(cfg.seed, "seed", INTEGER, low=0)
    verify = field_value(cfg.verify, "verify", BOOL)
    n = field_value(cfg.verify_images, "verify_images", INTEGER, low=1)
    field_value(cfg.out, "out", PATH, optional=True, expected="a file path (or null)")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            if verify:
                import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ValueError(f"format=onnx needs the package {exc.name!r}: pip install 'boolnas[deploy]' "
                             "(or format=torchscript, which needs torch only)") from None
    return fmt, seed, verify, n


def _network(cfg: DictConfig, task_given: bool, seed: int) -> tuple[Any, str, Any, str, Path]:
    """(the network, its name, genotype, what its weights are, the default output stem)."""
    import torch

    if cfg.weights is not None:
        weights = Path(str(cfg.weights))
        if task_given:
            raise ValueError(f"weights={weights} carries its own task; drop task= (it sets the task of fresh "
                             "weights, arch= without weights=)")
        net = load_model(weights)
        if not isinstance(net, PlanNetwork):
            raise ValueError(f"weights={weights} holds a {type(net).__name__}, not a binary network (an fp32 twin "
                             "trained as a distillation teacher?); export a model.pt of network=binary")
        genotype = net.plan.genotype
        name = weights.parent.name or weights.stem
        if cfg.arch is not None:
            arch_name, arch = load_arch(str(cfg.arch))
            if arch.key() != genotype.key():
                raise ValueError(f"weights={weights} holds architecture {genotype.key()}, arch={cfg.arch} is "
                                 f"{arch.key()}: drop arch= (the model file names its architecture) or give its "
                                 "model.pt")
            name = arch_name
        return net, name, genotype, f"trained: {weights}", weights.with_suffix("")
    name, genotype = load_arch(str(cfg.arch))
    task = Task.from_dict(OmegaConf.to_container(cfg.task, resolve=True))
    torch.manual_seed(seed)
    net = build(make_plan(genotype, task)).eval()
    log.info("%s with fresh weights (seed %d) on %dx%d, %d classes: untrained BatchNorm statistics, for structure "
             "and latency; train it (boolnas-train budget=full) and export its model.pt for accuracy",
             name, seed, task.input_size, task.input_size, task.num_classes)
    stem = Path(str(cfg.results_dir)) / "deploy" / f"{name}-{genotype.key()}"
    return net, name, genotype, f"fresh (seed {seed})", stem


def _export_network(cfg: DictConfig, task_given: bool) -> None:
    fmt, seed, verify, n = _checked(cfg)
    net, name, genotype, weights, stem = _network(cfg, task_given, seed)
    out = Path(str(cfg.out)) if cfg.out is not None else stem.with_name(stem.name + SUFFIXES[fmt])
    if out.is_dir():
        raise ValueError(f"out={out} is a folder; give the file to write (e.g. {out / (name + SUFFIXES[fmt])})")
    check_output_dir(out.parent, "out", out)
    meta = metadata(name, genotype, net.plan.task, weights, net.plan.totals())
    try:
        path, verification = export_network(net, fmt, out, meta, verify_images=n if verify else 0, seed=seed)
    except VerificationError as exc:
        fail(str(exc), code=1)
    if verification is not None and verification.parity.flips and cfg.weights is None:
        log.info("fresh weights: untrained BatchNorm statistics (mean 0, bias 0) put exact ties at the signs' "
                 "thresholds (a binary conv sum of 0); the export decides them as sign(0) = +1, the float "
                 "simulation by the rounding of its alpha-scaled sums")
    log.info("wrote %s (%s of %s, %s)", path, fmt, name, weights)
    print(path)


@hydra.main(config_path=CONF_DIR, config_name="export_cli", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    # where a failed write sends the user: the study's results_dir=, or the network's out=
    guarded(_run, cfg, output_key="results_dir" if cfg.get("study") is not None else "out")


def main() -> None:
    """Console entry point: a bad override exits 2 with a message, then Hydra runs ``_run``."""
    run_cli(_hydra_main, "export_cli", groups=("storage", "task"), storage_from_folder=storage_from_folder)


if __name__ == "__main__":
    main()
