"""The accuracy objective: instantiate a genotype for the proxy task and train it.

The proxy task follows the data (input size, channels, classes) with the budget's width and
the small stem, so one genotype gets a cheap plan for training while the energy objective
uses the target task's plan.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from boolnas.evaluators.checkpoint import load_safe, save_atomic
from boolnas.evaluators.data import Dataset, Streams
from boolnas.evaluators.distributed import SINGLE, DistContext
from boolnas.evaluators.fp32_twin import Fp32Twin, fp32_twin
from boolnas.evaluators.memory import FLOAT_BYTES, require
from boolnas.evaluators.training import Budget, TrainResult, resolve_device, train
from boolnas.evaluators.two_step import train_two_step
from boolnas.space import Genotype, Task, make_plan
from boolnas.space.builder import PlanNetwork, build
from boolnas.space.fields import one_of
from boolnas.space.files import write_text_atomic
from boolnas.space.plan import Plan

log = logging.getLogger(__name__)


NETWORKS = ("binary", "fp32_twin")  # what boolnas-train trains from a genotype (network=...)


def check_network(network: Any) -> str:
    """``network`` when it is one of :data:`NETWORKS`; else ``network=... is unknown; use one of [...]``."""
    return one_of(network, "network", NETWORKS)


def proxy_task(data: Dataset | Streams, budget: Budget) -> Task:
    """The task a genotype is trained on under ``budget``."""
    size = budget.resolution or data.input_size
    return Task(input_size=size, in_channels=data.channels, num_classes=data.num_classes,
                width_mult=budget.width_mult, stem="imagenet" if size >= 64 else "small")


def plan_for(genotype: Genotype, task: Task, plan: Plan | None = None) -> Plan:
    """The plan of ``genotype`` on ``task``: ``plan`` when given (made once by the caller, e.g. a
    trial that scores and trains the same plan), checked to be that plan; else a new one."""
    if plan is None:
        return make_plan(genotype, task)
    if plan.genotype != genotype or plan.task != task:
        raise ValueError(f"the plan given is of genotype {plan.genotype.key()} on {plan.task.to_dict()}, "
                         f"not of genotype {genotype.key()} on {task.to_dict()}")
    return plan


def build_for(genotype: Genotype, task: Task, *, plan: Plan | None = None) -> PlanNetwork:
    """The binary network of ``genotype`` on ``task``, built from ``plan`` when given (see :func:`plan_for`)."""
    return build(plan_for(genotype, task, plan))


def build_network(genotype: Genotype, task: Task, network: str = "binary", *,
                  plan: Plan | None = None) -> PlanNetwork | Fp32Twin:
    """The binary network of ``genotype`` on ``task``, or its plain fp32 twin (a distillation teacher);
    built from ``plan`` when given (see :func:`plan_for`)."""
    if check_network(network) == "binary":
        return build_for(genotype, task, plan=plan)
    return fp32_twin(plan_for(genotype, task, plan))


def require_memory(genotype: Genotype, data: Dataset | Streams, budget: Budget, *,
                   plan: Plan | None = None) -> Plan:
    """The plan ``genotype`` trains under ``budget`` (``plan`` when given, see :func:`plan_for`),
    after refusing (exit 2 in the CLIs) a run that cannot fit in memory: the dataset resized for
    it, or one batch's layer outputs (each kept at least once for the backward pass)."""
    task = proxy_task(data, budget)
    plan = plan_for(genotype, task, plan)
    batch = min(budget.batch_size, data.num_train)
    require(batch * sum(s.out_elements for s in plan) * FLOAT_BYTES,
            f"training at {task.input_size}x{task.input_size}, width x{budget.width_mult}, batch {batch}",
            "lower budget.batch_size, budget.resolution or budget.width_mult", resolve_device(budget.device))
    data.require_memory_for(task.input_size)
    return plan


def train_genotype(genotype: Genotype, data: Dataset | Streams, budget: Budget, *, seed: int = 0,
                   run_dir: str | Path | None = None, progress: bool = False, network: str = "binary",
                   dist_ctx: DistContext = SINGLE, plan: Plan | None = None) -> tuple[nn.Module, TrainResult]:
    """Build ``genotype`` (or its fp32 twin) for the proxy task of ``budget`` and train it, in one
    step or with the two-step recipe (``budget.recipe``), distilling from ``budget.kd_teacher``.

    ``plan``: the genotype's plan on that proxy task when the caller already made it (a
    ValueError if it is another plan); by default it is made here. Either way it is made once
    and every network of the run is built from it.
    """
    plan = require_memory(genotype, data, budget, plan=plan)
    task = plan.task
    if isinstance(data, Dataset):
        data = data.resized(task.input_size)
    elif data.input_size != task.input_size:
        raise ValueError(f"the data is streamed at {data.input_size}x{data.input_size} but budget.resolution asks "
                         f"for {task.input_size}; open the streams at the budget's resolution")
    check_network(network)
    if budget.recipe == "two_step" and network != "binary":
        raise ValueError("budget.recipe=two_step trains binary networks; train network=fp32_twin with "
                         "budget.recipe=one_step (e.g. budget=full)")

    def make() -> PlanNetwork | Fp32Twin:
        torch.manual_seed(seed)  # weight init is part of the seeded run
        return build_network(genotype, task, network, plan=plan)

    model = make() if budget.recipe == "one_step" else None
    teacher = load_teacher(budget.kd_teacher, task) if budget.kd_teacher else None
    if model is None:
        return train_two_step(make, data, budget, seed=seed, run_dir=run_dir, teacher=teacher, progress=progress,
                              dist_ctx=dist_ctx)
    result = train(model, data, budget, seed=seed, run_dir=run_dir, teacher=teacher, progress=progress,
                   dist_ctx=dist_ctx)
    return model, result


def load_teacher(path: str | Path, task: Task) -> PlanNetwork | Fp32Twin:
    """The distillation teacher saved at ``path``, checked against the student's ``task``."""
    teacher = load_model(path)
    t = teacher.plan.task
    if (t.in_channels, t.num_classes) != (task.in_channels, task.num_classes):
        raise ValueError(f"budget.kd_teacher={path}: the teacher takes {t.in_channels}-channel "
                         f"images and predicts {t.num_classes} classes, the data has {task.in_channels} "
                         f"and {task.num_classes}; give a teacher trained on the same dataset")
    if t.input_size != task.input_size:
        log.warning("budget.kd_teacher=%s was trained on %dx%d images, the student trains on %dx%d: the teacher "
                    "sees images of another size than it learned from", path, t.input_size, t.input_size,
                    task.input_size, task.input_size)
    return teacher


def save_model(path: Path, model: nn.Module, genotype: Genotype, task: Task, metrics: dict[str, Any],
               network: str = "binary") -> None:
    """Weights plus what is needed to rebuild them; loadable with ``weights_only=True``."""
    save_atomic({"genotype": genotype.to_dict(), "task": task.to_dict(), "network": network, "metrics": metrics,
                 "state_dict": model.state_dict()}, path)


def load_model(path: str | Path) -> PlanNetwork | Fp32Twin:
    """Rebuild and load a network saved by :func:`save_model` (e.g. a distillation teacher)."""
    path = Path(path)
    expected = "expected a model.pt from boolnas-train budget=full"
    if path.is_dir():
        raise ValueError(f"model file {path} is a directory ({expected})")
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist ({expected})")
    blob = load_safe(path, fix="give a model.pt written by boolnas-train budget=full")
    if not isinstance(blob, dict) or not {"genotype", "task", "state_dict"} <= set(blob):
        raise ValueError(f"{path} is not a boolnas model file (expected keys genotype, task, state_dict)")
    network = blob.get("network", "binary")  # model files written before fp32 twins hold binary networks
    if network not in NETWORKS:
        raise ValueError(f"model file {path}: network {network!r} is unknown (expected one of {list(NETWORKS)})")
    try:
        model = build_network(Genotype.from_dict(blob["genotype"]), Task.from_dict(blob["task"]), network)
    except ValueError as exc:
        raise ValueError(f"model file {path}: {exc}") from None
    if not isinstance(blob["state_dict"], dict):
        raise ValueError(f"model file {path}: 'state_dict' is not a mapping of tensors")
    try:
        model.load_state_dict(blob["state_dict"])
    except (RuntimeError, TypeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "key" in ln or "size mismatch" in ln), lines[0] if lines else "")
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise ValueError(f"model file {path}: its weights do not fit its genotype ({detail}); "
                         "the file is corrupt or was edited") from None
    return model.eval()


def training_curve_html(history: list[dict[str, float]], path: Path, title: str) -> Path | None:
    """Interactive loss / validation-accuracy curve; skipped (None) where plotly is missing."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        log.warning("plotly is not installed: no training curve written")
        return None
    epochs = [h["epoch"] for h in history]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=epochs, y=[h["loss"] for h in history], name="train loss"), secondary_y=False)
    fig.add_trace(go.Scatter(x=epochs, y=[h.get("val_accuracy") for h in history], name="val accuracy"),
                  secondary_y=True)
    fig.update_layout(title=title, xaxis_title="epoch")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="accuracy", secondary_y=True)
    return write_text_atomic(path, fig.to_html(include_plotlyjs=True, full_html=True))
