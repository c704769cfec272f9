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

from evaluators.checkpoint import load_safe, save_atomic
from evaluators.data import Dataset
from evaluators.memory import FLOAT_BYTES, require
from evaluators.training import Budget, TrainResult, resolve_device, train
from space import Genotype, Task, make_plan
from space.builder import PlanNetwork, build
from space.files import write_text_atomic
from space.plan import Plan

log = logging.getLogger(__name__)


def proxy_task(data: Dataset, budget: Budget) -> Task:
    """The task a genotype is trained on under ``budget``."""
    size = budget.resolution or data.input_size
    return Task(input_size=size, in_channels=data.channels, num_classes=data.num_classes,
                width_mult=budget.width_mult, stem="imagenet" if size >= 64 else "small")


def build_for(genotype: Genotype, task: Task) -> PlanNetwork:
    return build(make_plan(genotype, task))


def require_memory(genotype: Genotype, data: Dataset, budget: Budget) -> Plan:
    """The plan ``genotype`` trains under ``budget``, after refusing (exit 2 in the CLIs) a run
    that cannot fit in memory: the dataset resized for it, or one batch's layer outputs (each
    kept at least once for the backward pass)."""
    task = proxy_task(data, budget)
    plan = make_plan(genotype, task)
    batch = min(budget.batch_size, len(data.train_y))
    require(batch * sum(s.out_elements for s in plan) * FLOAT_BYTES,
            f"training at {task.input_size}x{task.input_size}, width x{budget.width_mult}, batch {batch}",
            "lower budget.batch_size, budget.resolution or budget.width_mult", resolve_device(budget.device))
    data.require_memory_for(task.input_size)
    return plan


def train_genotype(genotype: Genotype, data: Dataset, budget: Budget, *, seed: int = 0,
                   run_dir: str | Path | None = None, progress: bool = False) -> tuple[PlanNetwork, TrainResult]:
    """Build ``genotype`` for the proxy task of ``budget`` and train it."""
    plan = require_memory(genotype, data, budget)
    data = data.resized(plan.task.input_size)
    task = plan.task
    torch.manual_seed(seed)  # weight init is part of the seeded run
    model = build(plan)
    teacher = load_model(budget.kd_teacher) if budget.kd_teacher else None
    if teacher is not None:
        t = teacher.plan.task
        if (t.in_channels, t.num_classes) != (task.in_channels, task.num_classes):
            raise ValueError(f"budget.kd_teacher={budget.kd_teacher}: the teacher takes {t.in_channels}-channel "
                             f"images and predicts {t.num_classes} classes, the data has {task.in_channels} "
                             f"and {task.num_classes}; give a teacher trained on the same dataset")
    result = train(model, data, budget, seed=seed, run_dir=run_dir, teacher=teacher, progress=progress)
    return model, result


def save_model(path: Path, model: PlanNetwork, genotype: Genotype, task: Task, metrics: dict[str, Any]) -> None:
    """Weights plus what is needed to rebuild them; loadable with ``weights_only=True``."""
    save_atomic({"genotype": genotype.to_dict(), "task": task.to_dict(), "metrics": metrics,
                 "state_dict": model.state_dict()}, path)


def load_model(path: str | Path) -> PlanNetwork:
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
    try:
        model = build_for(Genotype.from_dict(blob["genotype"]), Task.from_dict(blob["task"]))
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
