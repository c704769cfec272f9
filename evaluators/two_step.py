"""The two-step BNN recipe of ReActNet (``budget.recipe=two_step``, conf/budget/full_two_step.yaml).

Step 1 trains the network with binary activations and real-valued weights; step 2 starts from
step 1's weights and trains it with binary weights. Both steps distil from the teacher of
``budget.kd_teacher`` when one is given (ReActNet's distributional loss, evaluators/training.py),
each with a fresh optimizer and learning-rate schedule; ``budget.epochs`` is the total, split by
``budget.step1_epochs`` (0: half each), so a two-step run costs what a one-step run of the same
budget costs.

Checkpoints: ``<run_dir>/step1/`` and ``<run_dir>/step2/``; a restarted run skips a finished
step 1 and resumes the step it was in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from torch import Tensor, nn

from boolnas.evaluators.data import Dataset, Streams
from boolnas.evaluators.distributed import SINGLE, DistContext
from boolnas.evaluators.training import Budget, TrainResult, train
from boolnas.space.quantizers import ProgressiveWeightBinarizer

log = logging.getLogger(__name__)


class RealWeights(ProgressiveWeightBinarizer):
    """Step 1's kernel quantizer: the latent weights pass through as they are, in training and in
    evaluation. A subclass of the progressive binarizer it replaces, so the network's state dict
    (the binarizer's temperature included) has the same keys in both steps."""

    def forward(self, w: Tensor) -> Tensor:
        return w

    def extra_repr(self) -> str:
        return "real weights (two-step recipe, step 1)"


def use_real_weights(model: nn.Module) -> int:
    """Replace every weight binarizer of ``model`` by :class:`RealWeights`; the number replaced."""
    count = 0
    for m in model.modules():
        q = getattr(m, "kernel_quantizer", None)
        if isinstance(q, ProgressiveWeightBinarizer) and not isinstance(q, RealWeights):
            m.kernel_quantizer = RealWeights(q.temperature)
            count += 1
    return count


def train_two_step(
    make_model: Callable[[], nn.Module],
    data: Dataset | Streams,
    budget: Budget,
    *,
    seed: int = 0,
    run_dir: str | Path | None = None,
    teacher: nn.Module | None = None,
    progress: bool = False,
    dist_ctx: DistContext = SINGLE,
) -> tuple[nn.Module, TrainResult]:
    """Train a fresh ``make_model()`` in two steps under ``budget``; the step-2 network and the
    combined result (history over both steps, each record tagged ``stage`` 1 or 2)."""
    first, second = budget.steps_split
    folder = Path(run_dir) if run_dir is not None else None
    step1 = make_model()
    replaced = use_real_weights(step1)
    if replaced == 0:
        raise ValueError("budget.recipe=two_step needs a network with binary weights; this one has none "
                         "(use budget.recipe=one_step)")
    log.info("two-step recipe, step 1: %d epochs with binary activations and real weights (%d binary convs)",
             first, replaced)
    r1 = train(step1, data, _step_budget(budget, 1, first, eval_test=False),
               seed=seed, run_dir=folder / "step1" if folder else None, teacher=teacher, progress=progress,
               dist_ctx=dist_ctx)
    if r1.diverged:
        return step1, _combined(r1, None, first)
    log.info("step 1 done: validation accuracy %.4f with real weights; step 2: %d epochs with binary weights",
             r1.val_accuracy, second)
    step2 = make_model()
    step2.load_state_dict(step1.state_dict())
    r2 = train(step2, data, _step_budget(budget, 2, second, eval_test=budget.eval_test), seed=seed + 1,
               run_dir=folder / "step2" if folder else None, teacher=teacher, progress=progress, dist_ctx=dist_ctx)
    return step2, _combined(r1, r2, first)


def _step_budget(budget: Budget, step: int, epochs: int, eval_test: bool) -> Budget:
    """The one-step budget of step ``step`` of ``budget``."""
    return replace(budget, name=f"{budget.name}:step{step}", epochs=epochs, eval_test=eval_test, recipe="one_step",
                   step1_epochs=0)


def _combined(r1: TrainResult, r2: TrainResult | None, first: int) -> TrainResult:
    """One result for both steps: step 2's accuracies, the totals of steps and time, one history."""
    history = [{**h, "stage": 1} for h in r1.history]
    if r2 is None:
        return replace(r1, history=history)
    history += [{**h, "epoch": h["epoch"] + first, "step": h["step"] + r1.steps, "stage": 2} for h in r2.history]
    time_s = r1.time_s + r2.time_s
    images = r1.images_per_s * r1.time_s + r2.images_per_s * r2.time_s
    return replace(r2, epochs=len(history), steps=r1.steps + r2.steps, time_s=time_s,
                   images_per_s=images / time_s if time_s > 0 else 0.0, history=history)
