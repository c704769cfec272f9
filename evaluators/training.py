"""One training loop for every budget: proxy (search), full (final training), tiny (tests).

Optimizer (Adam / RAdam), cosine schedule, gradient clipping, progressive weight binarization
(temperature multiplied by ``decay`` every ``every`` steps), optional knowledge distillation
from a teacher checkpoint, seeded, CPU by default and CUDA when present. A loss that becomes
NaN / inf or exceeds ``diverge_loss`` ends the run early with ``diverged=True`` and the reason.
Full runs checkpoint every epoch and resume from the last checkpoint.

Batches come from in-memory tensors or from streamed DataLoaders (evaluators/batches.py); with
several processes (torchrun) the loop runs data-parallel (evaluators/distributed.py): sharded
global batches, DDP gradients, metrics summed over processes, rank 0 checkpoints.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from boolnas.evaluators import distributed
from boolnas.evaluators.adam import AVAILABLE as FUSED_ADAM
from boolnas.evaluators.adam import FusedAdam
from boolnas.evaluators.batches import Feed, make_feed
from boolnas.evaluators.checkpoint import Checkpointer
from boolnas.evaluators.data import Dataset, Streams
from boolnas.evaluators.distributed import SINGLE, DistContext
from boolnas.space.fields import BOOL, INTEGER, NUMBER, STRING, field_value, one_of
from boolnas.space.records import FromConf, record_from_mapping

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "radam")
DEVICES = ("auto", "cpu", "cuda")
RECIPES = ("one_step", "two_step")


@dataclass(frozen=True)
class Budget(FromConf):
    """How much training a candidate gets. Every value comes from conf/budget/*.yaml (budgets made
    in code start from one: :meth:`from_conf`); the defaults below are those of keys added after
    studies were made with budgets that lack them (conf/budget/proxy.yaml leaves them out, so the
    settings a study records stay as they were)."""

    CONF_GROUP: ClassVar[str] = "budget"

    name: str
    epochs: int
    batch_size: int
    lr: float
    real_lr_mult: float  # lr of real-valued parameters (BN, stem, LAS, FC, ...) / lr of latent binary weights
    warmup: float  # share of the steps with a linear lr warm-up before the cosine decay
    label_smoothing: float
    optimizer: str
    weight_decay: float
    grad_clip: float | None
    train_subset: int | None  # training images used per epoch (None: all)
    val_subset: int | None  # validation images scored (None: all)
    width_mult: float  # width of the proxy task's plan
    resolution: int | None  # train and score at this input size (area-downsampled); None: native
    progressive: bool  # progressive weight binarization
    temperature_decay: float
    temperature_every: int  # steps between decays; 0: spread 100 decays over the run
    augment: bool  # random crop (pad 2) + horizontal flip
    eval_test: bool  # score the official test split at the end (final reports only)
    checkpoint: bool  # save every epoch and resume (full training)
    bn_recalibration: int  # training batches that re-estimate BN statistics with hard weights before eval
    diverge_loss: float  # a loss above this counts as diverged
    kd_teacher: str | None  # checkpoint of a trained teacher (boolnas-train budget=full)
    kd_weight: float  # share of the soft (distillation) loss
    kd_temperature: float
    device: str
    channels_last: bool
    bf16: bool
    num_threads: int  # torch CPU threads; 0: the CLIs size it (search/cpu_share.py), else torch's default
    inject_nan_at_step: int | None  # testing aid: make the loss NaN at this step
    stream: bool = False  # read the data through DataLoader workers (memory flat in the data set's size)
    data_workers: int = 0  # DataLoader worker processes per training process (stream only; 0: in the trainer)
    recipe: str = "one_step"  # two_step: binary activations + real weights, then binary weights (two_step.py)
    step1_epochs: int = 0  # two_step: epochs of step 1 (0: half of epochs); step 2 gets the rest

    def __post_init__(self) -> None:
        def check(name: str, kind: str, **bounds: Any) -> None:
            field_value(getattr(self, name), f"budget.{name}", kind, **bounds)

        def positive(names: tuple[str, ...], kind: str = NUMBER, optional: bool = False) -> None:
            # finite: nan or inf would only show up as a diverged run
            for n in names:
                check(n, kind, low=0, low_open=True, high=math.inf, high_open=True, optional=optional)

        positive(("epochs", "batch_size"), INTEGER)
        positive(("lr", "real_lr_mult", "width_mult", "temperature_decay", "kd_temperature"))
        check("diverge_loss", NUMBER, low=0, low_open=True)  # may be inf: never diverged
        check("bn_recalibration", INTEGER, low=0)
        positive(("train_subset", "val_subset", "resolution"), INTEGER, optional=True)
        positive(("grad_clip",), optional=True)
        one_of(self.optimizer, "budget.optimizer", OPTIMIZERS)
        one_of(self.device, "budget.device", DEVICES)
        for n in ("warmup", "label_smoothing", "kd_weight"):
            check(n, NUMBER, low=0, high=1, high_open=n != "kd_weight")
        for n in ("temperature_every", "num_threads", "data_workers", "step1_epochs"):
            check(n, INTEGER, low=0)
        check("weight_decay", NUMBER, low=0, high=math.inf, high_open=True)
        for n in ("progressive", "augment", "eval_test", "checkpoint", "channels_last", "bf16", "stream"):
            check(n, BOOL)
        check("name", STRING)
        if self.kd_teacher is not None and (not isinstance(self.kd_teacher, str) or not self.kd_teacher):
            raise ValueError(f"budget.kd_teacher must be the path of a model.pt (or null), got {self.kd_teacher!r}")
        check("inject_nan_at_step", INTEGER, low=0, optional=True, expected="a non-negative integer or null")
        one_of(self.recipe, "budget.recipe", RECIPES)
        if self.recipe == "two_step":
            if self.epochs < 2:
                raise ValueError(f"budget.recipe=two_step needs budget.epochs >= 2 (one per step), got {self.epochs}")
            if self.step1_epochs >= self.epochs:
                raise ValueError(f"budget.step1_epochs={self.step1_epochs} leaves no epoch for step 2 of "
                                 f"budget.epochs={self.epochs}; lower it (0: half)")

    @property
    def steps_split(self) -> tuple[int, int]:
        """Epochs of the two steps of ``recipe=two_step``: (step 1, step 2)."""
        first = self.step1_epochs or self.epochs // 2
        return first, self.epochs - first

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        return record_from_mapping(cls, data, "budget")


@dataclass
class TrainResult:
    """What a run measured. ``accuracy`` is validation accuracy, or test accuracy when measured."""

    accuracy: float
    val_accuracy: float
    test_accuracy: float | None
    epochs: int
    steps: int
    time_s: float
    images_per_s: float
    diverged: bool
    diverged_reason: str | None = None
    device: str = "cpu"
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self, with_history: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_history:
            out.pop("history")
        return out


class Diverged(Exception):
    """Raised inside the loop when the loss is no longer finite or explodes."""


def resolve_device(name: str, ctx: DistContext = SINGLE) -> torch.device:
    """The device ``budget.device`` names; with several processes, CUDA device ``local_rank``."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("budget.device=cuda but no CUDA device is available; use budget.device=cpu")
        if ctx.active:
            if ctx.local_rank >= torch.cuda.device_count():
                raise ValueError(f"process {ctx.rank} wants CUDA device {ctx.local_rank} but this machine has "
                                 f"{torch.cuda.device_count()}; start at most that many processes per machine")
            return torch.device("cuda", ctx.local_rank)
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@torch.no_grad()
def count_correct(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
                  bf16: bool = False, channels_last: bool = False) -> tuple[int, int]:
    """(correct, seen) top-1 predictions of ``model`` (eval mode) over ``batches``."""
    was_training = model.training
    model.eval()
    correct = seen = 0
    for x, y in batches:
        xb = _to_device(x, device, channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(xb)
        correct += int((logits.argmax(1).cpu() == y).sum())
        seen += len(y)
    model.train(was_training)
    return correct, seen


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device,
             bf16: bool = False) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``x``, ``y``."""
    if len(y) == 0:
        return float("nan")
    step = batch_size * 2
    correct, seen = count_correct(model, ((x[i:i + step], y[i:i + step]) for i in range(0, len(y), step)), device, bf16)
    return correct / seen


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer channels-last. ``model.to(memory_format=...)`` refuses
    a BNN: its multi-slice sign offsets are 5-D buffers."""
    with torch.no_grad():
        for m in model.modules():
            for tensors in (m._parameters, m._buffers):
                for t in tensors.values():
                    if t is not None and t.dim() == 4:
                        t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model


def _latent_binary_weights(model: nn.Module) -> set[int]:
    """ids of the latent weights of binary convs: the ``weight`` of every module with a kernel quantizer."""
    return {id(m.weight) for m in model.modules()
            if getattr(m, "kernel_quantizer", None) is not None
            and isinstance(getattr(m, "weight", None), nn.Parameter)}


def make_optimizer(model: nn.Module, budget: Budget) -> torch.optim.Optimizer | FusedAdam:
    """Adam / RAdam with two parameter groups: latent binary weights at ``lr``, the real-valued
    rest at ``lr * real_lr_mult`` (latent weights only matter through their sign, real ones
    through their value, so they tolerate different step sizes)."""
    binary = _latent_binary_weights(model)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) in binary], "lr": budget.lr},
              {"params": [p for p in params if id(p) not in binary], "lr": budget.lr * budget.real_lr_mult}]
    groups = [g for g in groups if g["params"]]
    # One fused kernel (Adam) or multi-tensor ops (RAdam) per step instead of ~10 small ops per
    # parameter tensor: ~3.5 % of a batch-32 proxy step on CPU. Adam runs torch's fused kernel
    # outside torch.optim, which saves the first use's 1.2-1.9 s import (evaluators/adam.py).
    if budget.optimizer == "adam":
        if FUSED_ADAM:
            return FusedAdam(groups, lr=budget.lr, weight_decay=budget.weight_decay)
        return torch.optim.Adam(groups, lr=budget.lr, weight_decay=budget.weight_decay)
    try:
        return torch.optim.RAdam(groups, lr=budget.lr, weight_decay=budget.weight_decay, foreach=True)
    except RuntimeError:  # older torch without foreach RAdam on this device
        return torch.optim.RAdam(groups, lr=budget.lr, weight_decay=budget.weight_decay)


def lr_factor(step: int, total_steps: int, warmup: float) -> float:
    """Multiplier of the base lr at ``step``: linear warm-up over ``warmup * total_steps`` steps
    (from 1/(w+1)), then a cosine decay to 0 at ``total_steps``."""
    w = int(warmup * total_steps)
    if step < w:
        return (step + 1) / (w + 1)
    return 0.5 * (1.0 + math.cos(math.pi * (step - w) / max(1, total_steps - w)))


def train(
    model: nn.Module,
    data: Dataset | Streams,
    budget: Budget,
    *,
    seed: int = 0,
    run_dir: str | Path | None = None,
    teacher: nn.Module | None = None,
    progress: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    dist_ctx: DistContext = SINGLE,
) -> TrainResult:
    """Train ``model`` on ``data`` under ``budget`` and score it.

    ``data``: in-memory tensors (:class:`Dataset`) or streams read by DataLoaders (:class:`Streams`).
    ``run_dir`` (with ``budget.checkpoint``) holds the checkpoint that a restarted run resumes.
    ``dist_ctx``: this process's place in a data-parallel run (its process group already started);
    ``budget.batch_size`` is then the global batch, shared out among the processes.
    """
    seed_everything(seed)
    if budget.num_threads:
        torch.set_num_threads(budget.num_threads)
    if budget.batch_size % dist_ctx.world_size:
        raise ValueError(f"budget.batch_size={budget.batch_size} (the global batch) does not divide among "
                         f"{dist_ctx.world_size} processes; choose a multiple of {dist_ctx.world_size}")
    device = resolve_device(budget.device, dist_ctx)
    model.to(device)
    if budget.channels_last:
        to_channels_last(model)
    if teacher is not None:
        teacher.to(device).eval()
        if budget.channels_last:
            to_channels_last(teacher)
    feed = make_feed(data, budget, seed, dist_ctx, device)
    steps_per_epoch = feed.steps_per_epoch
    total_steps = steps_per_epoch * budget.epochs
    every = budget.temperature_every or max(1, total_steps // 100)
    optimizer = make_optimizer(model, budget)
    # The schedule is a pure function of the step (lr_factor), set before every optimizer step:
    # no scheduler object, and a resumed run recomputes it from the checkpoint's step.
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    checkpointer = Checkpointer(Path(run_dir)) if (budget.checkpoint and run_dir is not None) else None
    start_epoch, step, history = 0, 0, []
    if checkpointer is not None:
        state = checkpointer.load()
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, step, history = int(state["epoch"]), int(state["step"]), list(state["history"])
            if state.get("generator") is not None:
                feed.set_generator_state(state["generator"])
            log.info("resumed from %s at epoch %d (step %d)", checkpointer.path, start_epoch, step)
    if not distributed.same_everywhere(dist_ctx, start_epoch, device):
        raise ValueError(f"the training processes found different checkpoints in {run_dir}: put run_dir on a file "
                         "system that every machine of the run shares")
    net = distributed.wrap(model, dist_ctx, device)  # after the checkpoint: DDP starts from rank 0's weights
    set_temperature = getattr(model, "set_weight_temperature", None)
    bar = _progress_bar(total_steps, step, budget.name) if (progress and dist_ctx.is_main) else None
    diverged_reason: str | None = None
    images = 0
    started = time.perf_counter()
    model.train()
    try:
        for epoch in range(start_epoch, budget.epochs):
            epoch_loss = 0.0
            for xb, yb in feed.epoch(epoch):
                xb, yb = _to_device(xb, device, budget.channels_last), yb.to(device, non_blocking=True)
                if set_temperature is not None:
                    set_temperature(budget.temperature_decay ** (step // every) if budget.progressive else 0.0)
                loss = _step(net, teacher, xb, yb, budget, device)
                if budget.inject_nan_at_step is not None and step == budget.inject_nan_at_step:
                    loss = loss * float("nan")
                value = distributed.mean_of(dist_ctx, loss.detach())  # the same on every process
                if not math.isfinite(value) or value > budget.diverge_loss:
                    why = ("is not finite" if not math.isfinite(value)
                           else f"exceeds diverge_loss={budget.diverge_loss:g}")
                    raise Diverged(f"loss {value:.4g} {why} at step {step} (epoch {epoch + 1})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if budget.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), budget.grad_clip)
                factor = lr_factor(step, total_steps, budget.warmup)
                for group, base in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = base * factor
                optimizer.step()
                step += 1
                images += len(yb) * dist_ctx.world_size
                epoch_loss += value
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            record = {"epoch": epoch + 1, "step": step, "loss": epoch_loss / steps_per_epoch}
            if budget.checkpoint or epoch + 1 == budget.epochs:
                record["val_accuracy"] = _val_accuracy(model, feed, budget, device, dist_ctx)
            history.append(record)
            if on_epoch is not None and dist_ctx.is_main:
                on_epoch(record)
            if checkpointer is not None and dist_ctx.is_main:
                checkpointer.save({
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1, "step": step,
                    "history": history, "generator": feed.generator_state(),
                })
    except Diverged as exc:
        diverged_reason = str(exc)
        log.warning("training diverged: %s", diverged_reason)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    test_acc: float | None = None
    if diverged_reason is not None:
        val_acc = float("nan")
    else:
        val_acc = history[-1].get("val_accuracy") if history else None
        if val_acc is None:
            val_acc = _val_accuracy(model, feed, budget, device, dist_ctx)
        if budget.eval_test:
            test_acc = _accuracy(model, feed, "test", None, budget, device, dist_ctx)
            if test_acc is None:
                log.warning("the data has no test images: no test accuracy (an image folder needs a test/ folder "
                            "or data.num_test > 0)")
    return TrainResult(
        accuracy=test_acc if test_acc is not None else val_acc,
        val_accuracy=val_acc,
        test_accuracy=test_acc,
        epochs=len(history),
        steps=step,
        time_s=elapsed,
        images_per_s=images / elapsed if elapsed > 0 else 0.0,
        diverged=diverged_reason is not None,
        diverged_reason=diverged_reason,
        device=str(device),
        history=history,
    )


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """ReActNet's distributional loss: KL(teacher || student) of the softened class distributions,
    times T^2 (the gradient scale of the hard loss), averaged over the batch."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature**2


def _step(model: nn.Module, teacher: nn.Module | None, xb: torch.Tensor, yb: torch.Tensor, budget: Budget,
          device: torch.device) -> torch.Tensor:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=budget.bf16):
        logits = model(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=budget.label_smoothing)
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(xb)
            kd = distillation_loss(logits, teacher_logits, budget.kd_temperature)
            loss = (1 - budget.kd_weight) * loss + budget.kd_weight * kd
    return loss


def _accuracy(model: nn.Module, feed: Feed, split: str, limit: int | None, budget: Budget, device: torch.device,
              ctx: DistContext) -> float | None:
    """Top-1 accuracy on ``split`` (every process scores its share; counts summed); None without images."""
    correct, seen = count_correct(model, feed.scored(split, limit), device, budget.bf16, budget.channels_last)
    correct, seen = distributed.all_sum(ctx, [float(correct), float(seen)], device)
    return correct / seen if seen else None


def _val_accuracy(model: nn.Module, feed: Feed, budget: Budget, device: torch.device, ctx: DistContext) -> float:
    _recalibrate(model, feed, budget, device, ctx)
    acc = _accuracy(model, feed, "val", budget.val_subset, budget, device, ctx)
    return float("nan") if acc is None else acc


def _recalibrate(model: nn.Module, feed: Feed, budget: Budget, device: torch.device, ctx: DistContext) -> None:
    """Re-estimate BN statistics with the evaluation (hard) weights on a few training batches.

    Short binary trainings leave running statistics that lag the weights (and the soft weights'
    scale); evaluated as they are, binary-shortcut networks score near chance. Every process
    uses the same batches; rank 0's statistics are then given to all (also for networks that are
    not re-estimated: their last training steps left each process its own statistics).
    """
    recalibrate = getattr(model, "recalibrate_bn", None)
    if recalibrate is not None and budget.bn_recalibration > 0:
        batches = (_to_device(x, device, budget.channels_last) for x in feed.calibration(budget.bn_recalibration))
        was_training = model.training
        recalibrate(batches)
        model.train(was_training)
    # Each process's last training batch moved its own running statistics: score rank 0's everywhere.
    distributed.broadcast_buffers(model, ctx)


def _progress_bar(total: int, initial: int, name: str) -> Any:
    from tqdm.auto import tqdm  # stderr by default, so stdout stays clean for JSON

    return tqdm(total=total, initial=initial, desc=f"train[{name}]", unit="step", mininterval=0.5, leave=False)
