"""The two-step recipe (binary activations + real weights, then binary weights) with distillation
from a real-valued teacher: the fp32 twin trained and saved by boolnas."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from boolnas.evaluators.accuracy import build_network, load_model, proxy_task, save_model, train_genotype
from boolnas.evaluators.data import DataConfig, load_dataset
from boolnas.evaluators.fp32_twin import Fp32Twin
from boolnas.evaluators.training import Budget, distillation_loss
from boolnas.evaluators.two_step import RealWeights, use_real_weights
from boolnas.space import get_preset
from boolnas.space.builder import build
from boolnas.space.layers import BinaryConv2d
from boolnas.space.quantizers import ProgressiveWeightBinarizer

REPO = Path(__file__).resolve().parents[1]
SYNTH = DataConfig.from_conf("synthetic", val_size=256, num_train=1024, num_test=256)
TINY = Budget.from_conf("tiny", epochs=4, val_subset=None, num_threads=1, progressive=False)


@pytest.fixture(scope="module")
def data():
    return load_dataset(SYNTH)


@pytest.fixture(scope="module")
def teacher_path(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fp32 twin of reactnet18, trained by boolnas and saved as a model.pt."""
    genotype = get_preset("reactnet18")
    twin, result = train_genotype(genotype, data, replace(TINY, epochs=2), network="fp32_twin")
    assert isinstance(twin, Fp32Twin) and result.val_accuracy > 0.5
    path = tmp_path_factory.mktemp("teacher") / "model.pt"
    save_model(path, twin, genotype, proxy_task(data, TINY), {}, network="fp32_twin")
    return path


def test_step_one_convolves_with_the_real_weights(data) -> None:
    model = build_network(get_preset("boolnet18_k4"), proxy_task(data, TINY))
    convs = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    keys = set(model.state_dict())
    assert use_real_weights(model) == len(convs) > 0
    assert set(model.state_dict()) == keys  # step 1's checkpoints load into step 2's network
    conv = convs[3].conv
    assert isinstance(conv.kernel_quantizer, RealWeights)
    for mode in (True, False):  # training and evaluation alike
        conv.train(mode)
        assert torch.equal(conv.kernel_quantizer(conv.weight), conv.weight)
    binary = next(m for m in build(model.plan).modules() if isinstance(m, BinaryConv2d)).conv.eval()
    w = binary.kernel_quantizer(binary.weight)
    assert torch.equal(w.abs(), w.abs().amax((1, 2, 3), keepdim=True).expand_as(w))  # alpha_o * sign(W_o)


def test_the_distributional_loss_is_the_kl_of_the_student_from_the_teacher() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 10), torch.randn(8, 10)
    p = F.softmax(teacher / 2.0, 1)
    kl = (p * (p.log() - F.log_softmax(student / 2.0, 1))).sum(1).mean() * 4.0
    assert torch.allclose(distillation_loss(student, teacher, 2.0), kl, atol=1e-6)
    assert float(distillation_loss(teacher, teacher, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_the_fp32_twin_teacher_reloads_from_its_model_file(data, teacher_path: Path) -> None:
    blob = torch.load(teacher_path, weights_only=True)
    assert blob["network"] == "fp32_twin"
    teacher = load_model(teacher_path)
    assert isinstance(teacher, Fp32Twin) and not teacher.training
    assert teacher(data.val_x[:4]).shape == (4, 10)
    legacy = tmp = teacher_path.with_name("binary.pt")  # a model.pt written before the network key
    model = build_network(get_preset("basenet18_k1"), proxy_task(data, TINY))
    save_model(tmp, model, get_preset("basenet18_k1"), proxy_task(data, TINY), {})
    blob = torch.load(tmp, weights_only=True)
    del blob["network"]
    torch.save(blob, legacy)
    assert type(load_model(legacy)).__name__ == "PlanNetwork"


def test_two_steps_with_a_teacher_train_end_to_end(data, teacher_path: Path) -> None:
    budget = replace(TINY, recipe="two_step", kd_teacher=str(teacher_path))
    model, result = train_genotype(get_preset("reactnet18"), data, budget, seed=2)
    assert not result.diverged and result.epochs == 4 and result.steps == 4 * (512 // 64)
    assert [h["stage"] for h in result.history] == [1, 1, 2, 2]
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    quantizers = [m.conv.kernel_quantizer for m in model.modules() if isinstance(m, BinaryConv2d)]
    assert quantizers and all(type(q) is ProgressiveWeightBinarizer for q in quantizers)  # step 2: binary weights
    assert result.val_accuracy > 0.5  # chance is 0.1


def test_a_restarted_run_skips_the_finished_first_step(data, tmp_path: Path) -> None:
    budget = replace(TINY, recipe="two_step", step1_epochs=1, epochs=3, checkpoint=True, train_subset=256,
                     bn_recalibration=2)
    first = train_genotype(get_preset("basenet18_k1"), data, budget, seed=1, run_dir=tmp_path)[1]
    assert [h["stage"] for h in first.history] == [1, 2, 2]
    assert torch.load(tmp_path / "step1" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    (tmp_path / "step2" / "checkpoint.pt").unlink()  # as if killed before step 2 saved anything
    again = train_genotype(get_preset("basenet18_k1"), data, budget, seed=1, run_dir=tmp_path)[1]
    assert again.steps == first.steps and again.history[0] == first.history[0]
    assert again.val_accuracy == first.val_accuracy  # step 2 retrained from the same step-1 weights


@pytest.mark.parametrize(("changes", "message"), [
    ({"recipe": "three_step"}, "budget.recipe"),
    ({"recipe": "two_step", "epochs": 1}, "needs budget.epochs >= 2"),
    ({"recipe": "two_step", "epochs": 4, "step1_epochs": 4}, "leaves no epoch for step 2"),
])
def test_bad_two_step_budgets_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(TINY, **changes)


def test_two_steps_train_binary_networks_only(data) -> None:
    with pytest.raises(ValueError, match="two_step trains binary networks"):
        train_genotype(get_preset("basenet18_k1"), data, replace(TINY, recipe="two_step"), network="fp32_twin")


def test_the_cli_trains_the_two_step_budget_with_a_teacher(teacher_path: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "boolnas.search.cli.train", "progress=false", "format=json", "data=synthetic",
         "data.num_train=256", "data.val_size=128", "data.num_test=128", "arch=reactnet18", "budget=full_two_step",
         "budget.epochs=2", "budget.batch_size=64", "budget.width_mult=0.25", "budget.data_workers=0",
         "budget.bn_recalibration=2",
         f"budget.kd_teacher={teacher_path}", f"run_dir={run_dir}"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["epochs"] == 2 and row["test_accuracy"] is not None
    assert "step 1 done" in out.stderr
    assert (run_dir / "step1" / "checkpoint.pt").is_file() and (run_dir / "step2" / "checkpoint.pt").is_file()
    student = load_model(run_dir / "model.pt")
    assert any(isinstance(m, BinaryConv2d) for m in student.modules())
