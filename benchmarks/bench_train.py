"""Training throughput of the proxy budget: BNN presets vs their plain fp32 twins, one run.

For each preset, the network of its plan on the proxy task (conf/budget/proxy.yaml: resolution,
width, batch size, optimizer, gradient clipping) trains on a fixed synthetic batch, and so does
its fp32 twin (evaluators/fp32_twin.py: same stem, widths, resolution and blocks, ordinary
convs, BN, ReLU and additive shortcuts), with the same batch size and optimizer. The two are
timed in alternating rounds (these machines are noisy), and the reported ratio is the median
over rounds of binary images/s divided by fp32 images/s (target >= 0.75). One training step is
what ``evaluators.training.train`` does per batch: weight temperature, forward, cross-entropy,
backward, gradient clipping, optimizer step.

    .venv/bin/python benchmarks/bench_train.py [--presets a b ...] [--rounds 7] [--steps 3]
        [--device cpu|cuda] [--batch-size N] [--bf16 off|on|both] [--channels-last off|on|both]

Imports torch, space/ and evaluators.training only (PyYAML when installed), so it also runs on a
bare GPU machine (benchmarks/gpu_check.sh). The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)

from boolnas.evaluators.fp32_twin import fp32_twin  # noqa: E402
from boolnas.evaluators.training import Budget, make_optimizer, to_channels_last  # noqa: E402
from boolnas.space import Task, get_preset, make_plan  # noqa: E402
from boolnas.space.builder import build  # noqa: E402

TARGET = 0.75  # binary images/s over fp32 images/s (issue acceptance)
PRESETS = ("basenet18_k1", "basenet18_k4", "boolnet18_k4", "bireal18", "reactnet18")
# The proxy task's data: Fashion-MNIST, 1x28x28, 10 classes (conf/data/fashion_mnist.yaml).
IN_CHANNELS, INPUT_SIZE, CLASSES = 1, 28, 10


def _scalar(text: str) -> Any:
    text = text.split("#", 1)[0].strip()
    low = text.lower()
    if low in ("null", "~", ""):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip("'\"")


def load_budget(path: Path) -> Budget:
    """The budget of a flat ``key: value`` YAML file; PyYAML when present, else a tiny parser
    (budget files are flat), so a bare machine needs no PyYAML."""
    text = path.read_text()
    try:
        import yaml

        data = yaml.safe_load(text)
    except ImportError:
        data = {}
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#") and ":" in line:
                key, value = line.split(":", 1)
                data[key.strip()] = _scalar(value)
    return Budget.from_dict(data)


def proxy_task(budget: Budget) -> Task:
    """The proxy task of evaluators.accuracy.proxy_task for Fashion-MNIST under ``budget``."""
    size = budget.resolution or INPUT_SIZE
    return Task(input_size=size, in_channels=IN_CHANNELS, num_classes=CLASSES, width_mult=budget.width_mult,
                stem="imagenet" if size >= 64 else "small")


@dataclass
class Trainer:
    """One model, its optimizer and a fixed batch: ``step()`` is one training step."""

    model: nn.Module
    step: Callable[[], None]
    sync: Callable[[], None]


def make_trainer(model: nn.Module, budget: Budget, task: Task, batch: int, device: torch.device, bf16: bool,
                 channels_last: bool, seed: int) -> Trainer:
    torch.manual_seed(seed)
    model.to(device).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        to_channels_last(model)
    x = torch.randn(batch, task.in_channels, task.input_size, task.input_size, device=device).contiguous(
        memory_format=fmt)
    y = torch.randint(0, task.num_classes, (batch,), device=device)
    optimizer = make_optimizer(model, budget)
    set_temperature = getattr(model, "set_weight_temperature", None)
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> None:
        if set_temperature is not None:
            set_temperature(0.5 if budget.progressive else 0.0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=budget.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if budget.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, budget.grad_clip)
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    return Trainer(model, step, sync)


def timed(trainer: Trainer, steps: int) -> float:
    trainer.sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    trainer.sync()
    return time.perf_counter() - start


def compare(preset: str, budget: Budget, batch: int, device: torch.device, bf16: bool, channels_last: bool,
            rounds: int, steps: int, warmup: int) -> dict[str, Any]:
    """Binary and fp32 images/s of ``preset``, measured in alternating rounds."""
    task = proxy_task(budget)
    plan = make_plan(get_preset(preset), task)
    pair = {"binary": make_trainer(build(plan), budget, task, batch, device, bf16, channels_last, 0),
            "fp32": make_trainer(fp32_twin(plan), budget, task, batch, device, bf16, channels_last, 0)}
    for trainer in pair.values():
        timed(trainer, warmup)
    times: dict[str, list[float]] = {"binary": [], "fp32": []}
    for r in range(rounds):
        order = ("binary", "fp32") if r % 2 == 0 else ("fp32", "binary")
        for name in order:
            times[name].append(timed(pair[name], steps))
    ratios = [f / b for b, f in zip(times["binary"], times["fp32"], strict=True)]
    rate = {name: batch * steps / statistics.median(t) for name, t in times.items()}
    ratio = statistics.median(ratios)
    return {"preset": preset, "bf16": bf16, "channels_last": channels_last, "binary_img_s": round(rate["binary"], 1),
            "fp32_img_s": round(rate["fp32"], 1), "ratio": round(ratio, 3), "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3), "meets_target": ratio >= TARGET}


def _options(value: str) -> list[bool]:
    return {"off": [False], "on": [True], "both": [False, True]}[value]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--budget", type=Path, default=REPO / "conf" / "budget" / "proxy.yaml")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the budget's")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="training steps per timed round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--bf16", choices=("off", "on", "both"), default="off")
    ap.add_argument("--channels-last", choices=("off", "on", "both"), default="off")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    budget = load_budget(args.budget)
    batch = args.batch_size or budget.batch_size
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            ap.error("--device cuda but torch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
    if args.threads:
        torch.set_num_threads(args.threads)
    task = proxy_task(budget)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"proxy budget {args.budget.name}: {task.input_size}x{task.input_size}, width x{budget.width_mult}, "
          f"batch {batch}, {budget.optimizer} lr {budget.lr}; {where}; torch {torch.__version__}")
    print(f"{args.rounds} alternating rounds of {args.steps} steps per network; ratio = binary / fp32 images/s "
          f"(median of rounds), target >= {TARGET}")
    head = (f"{'preset':<16}{'bf16':>6}{'ch_last':>8}{'binary img/s':>14}{'fp32 img/s':>12}{'ratio':>8}"
            f"{'range':>14}  target")
    print(head)
    print("-" * len(head))
    rows = []
    for bf16 in _options(args.bf16):
        for channels_last in _options(args.channels_last):
            for preset in args.presets:
                row = compare(preset, budget, batch, device, bf16, channels_last, args.rounds, args.steps,
                              args.warmup)
                rows.append(row)
                spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
                print(f"{preset:<16}{'on' if bf16 else 'off':>6}{'on' if channels_last else 'off':>8}"
                      f"{row['binary_img_s']:>14.0f}{row['fp32_img_s']:>12.0f}{row['ratio']:>8.2f}{spread:>14}  "
                      f"{'met' if row['meets_target'] else 'MISSED'}", flush=True)
    summary = {"benchmark": "train", "device": where, "batch_size": batch, "resolution": task.input_size,
               "width_mult": budget.width_mult, "target": TARGET, "rows": rows,
               "min_ratio": min(r["ratio"] for r in rows), "all_met": all(r["meets_target"] for r in rows)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
