"""evaluators/adam.py: the same updates as torch.optim.Adam(fused=True), state that round-trips,
and a training run that does not import torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from boolnas.evaluators.adam import AVAILABLE, FusedAdam

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="this torch has no fused Adam kernel")


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 6 * 6, 5))


def _groups(model: torch.nn.Module) -> list[dict]:
    params = list(model.parameters())
    return [{"params": params[:2], "lr": 0.01}, {"params": params[2:], "lr": 0.003}]


def _train(model: torch.nn.Module, opt, steps: int, lrs: list[float]) -> None:  # noqa: ANN001
    gen = torch.Generator().manual_seed(0)
    for s in range(steps):
        x, y = torch.randn(4, 3, 8, 8, generator=gen), torch.randint(0, 5, (4,), generator=gen)
        for g, lr in zip(opt.param_groups, lrs):
            g["lr"] = lr * (1 - s / steps)  # a schedule, as the training loop sets it
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_updates_equal_torch_fused_adam_bitwise(weight_decay: float) -> None:
    ours, ref = _model(1), _model(1)
    _train(ours, FusedAdam(_groups(ours), lr=0.01, weight_decay=weight_decay), 12, [0.01, 0.003])
    _train(ref, torch.optim.Adam(_groups(ref), lr=0.01, weight_decay=weight_decay, fused=True), 12, [0.01, 0.003])
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_state_dict_round_trip_resumes_exactly() -> None:
    straight, resumed = _model(2), _model(2)
    opt = FusedAdam(_groups(straight), lr=0.01)
    _train(straight, opt, 6, [0.01, 0.003])
    first = FusedAdam(_groups(resumed), lr=0.01)
    _train(resumed, first, 6, [0.01, 0.003])
    state = first.state_dict()
    assert all(isinstance(i, int) for i in state["state"])
    assert [len(g["params"]) for g in state["param_groups"]] == [2, 4]
    again = FusedAdam(_groups(resumed), lr=0.01)
    again.load_state_dict(state)
    _train(resumed, again, 3, [0.01, 0.003])
    _train(straight, opt, 3, [0.01, 0.003])
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="parameter groups"):
        FusedAdam([{"params": list(_model(3).parameters())}], lr=0.01).load_state_dict(state)


def test_a_training_run_does_not_import_dynamo() -> None:
    code = ("import sys, yaml; from boolnas.evaluators.data import load_dataset, DataConfig; "
            "from boolnas.evaluators.accuracy import train_genotype; from boolnas.evaluators.training import Budget; "
            "from boolnas.space import get_preset; "
            "d = load_dataset(DataConfig.from_conf('synthetic', num_train=128, val_size=32, num_test=32)); "
            "b = Budget.from_conf('tiny', name='t', batch_size=32, lr=0.002, train_subset=64, val_subset=32, "
            "width_mult=1.0, resolution=8, "
            "bn_recalibration=1); train_genotype(get_preset('boolnet18_k4'), d, b); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
