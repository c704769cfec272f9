"""The training loop: learning, determinism, divergence, checkpoints, distillation, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from boolnas.evaluators.accuracy import load_model, proxy_task, save_model, train_genotype
from boolnas.evaluators.data import DataConfig, load_dataset
from boolnas.evaluators.training import Budget, train
from boolnas.space import get_preset, make_plan
from boolnas.space.builder import build

SYNTH = DataConfig.from_conf("synthetic", val_size=256, num_train=1024, num_test=256)
TINY = Budget.from_conf("tiny", epochs=2, val_subset=None)


@pytest.fixture(scope="module")
def data():
    return load_dataset(SYNTH)


def test_training_learns_the_synthetic_task(data) -> None:
    _, result = train_genotype(get_preset("basenet18_k1"), data, TINY, seed=0)
    assert not result.diverged
    assert result.val_accuracy > 0.5  # chance is 0.1
    assert result.steps == 2 * (512 // 64) and result.epochs == 2
    assert result.images_per_s > 0


def test_same_seed_same_accuracy_on_cpu(data) -> None:
    budget = Budget.from_conf("tiny", train_subset=256, val_subset=None)
    a = train_genotype(get_preset("boolnet18_k4"), data, budget, seed=3)[1]
    b = train_genotype(get_preset("boolnet18_k4"), data, budget, seed=3)[1]
    assert a.val_accuracy == b.val_accuracy
    assert a.history[-1]["loss"] == b.history[-1]["loss"]


def test_nan_loss_ends_the_run_as_diverged(data) -> None:
    budget = Budget.from_conf("tiny", lr=0.002, val_subset=None, inject_nan_at_step=3)
    result = train_genotype(get_preset("bireal18"), data, budget)[1]
    assert result.diverged
    assert "step 3" in result.diverged_reason and "not finite" in result.diverged_reason


def test_exploding_loss_counts_as_diverged(data) -> None:
    budget = Budget.from_conf("tiny", lr=0.002, train_subset=256, val_subset=None, diverge_loss=1e-6)
    result = train_genotype(get_preset("basenet18_k1"), data, budget)[1]
    assert result.diverged and "exceeds diverge_loss" in result.diverged_reason


def test_progressive_binarization_reaches_low_temperature(data) -> None:
    seen: list[float] = []
    model = build(make_plan(get_preset("basenet18_k1"), proxy_task(data, TINY)))
    original = model.set_weight_temperature
    model.set_weight_temperature = lambda t: (seen.append(t), original(t))  # type: ignore[method-assign]
    train(model, data, TINY)
    assert seen[0] == 1.0 and seen[-1] < 0.05 and seen == sorted(seen, reverse=True)


def test_saved_model_reloads_with_weights_only(tmp_path: Path, data) -> None:
    model, result = train_genotype(get_preset("basenet18_k4"), data, TINY)
    save_model(tmp_path / "model.pt", model, get_preset("basenet18_k4"), proxy_task(data, TINY), {"acc": 1.0})
    blob = torch.load(tmp_path / "model.pt", weights_only=True)
    assert blob["genotype"]["slices"] == 4
    reloaded = load_model(tmp_path / "model.pt")
    x = data.val_x[:8]
    model.eval()
    assert torch.equal(model(x).argmax(1), reloaded(x).argmax(1))


def test_distillation_from_a_teacher_checkpoint(tmp_path: Path, data) -> None:
    teacher, _ = train_genotype(get_preset("bireal18"), data, TINY)
    save_model(tmp_path / "teacher.pt", teacher, get_preset("bireal18"), proxy_task(data, TINY), {})
    budget = Budget(**{**TINY.__dict__, "kd_teacher": str(tmp_path / "teacher.pt"), "kd_weight": 0.5})
    result = train_genotype(get_preset("basenet18_k1"), data, budget)[1]
    assert not result.diverged and result.val_accuracy > 0.3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "budget.epochs"), ("optimizer", "sgd", "budget.optimizer"), ("lr", -1.0, "budget.lr"),
     ("device", "tpu", "budget.device"), ("kd_weight", 2.0, "budget.kd_weight")],
)
def test_bad_budget_values_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Budget.from_conf("tiny", **{field: value})


# ------------------------------------------------------------------------------------ CLI
CLI = [sys.executable, "-m", "boolnas.search.cli.train", "progress=false"]
SYNTH_ARGS = ["data=synthetic", "data.num_train=512", "data.val_size=128"]
KEYS = {"accuracy", "val_accuracy", "test_accuracy", "epochs", "time_s", "images_per_s", "diverged"}


def run_cli(*args: str, synthetic: bool = True) -> subprocess.CompletedProcess[str]:
    data_args = SYNTH_ARGS if synthetic else []
    return subprocess.run([*CLI, *data_args, *args], capture_output=True, text=True, timeout=300)


def test_cli_json_has_only_the_result_on_stdout() -> None:
    out = run_cli("arch=basenet18_k1", "budget=tiny", "format=json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert KEYS <= set(row) and row["diverged"] is False and 0 <= row["accuracy"] <= 1


def test_cli_reports_nan_divergence_without_traceback() -> None:
    out = run_cli("arch=basenet18_k1", "budget=tiny", "budget.inject_nan_at_step=2", "format=json")
    row = json.loads(out.stdout)
    assert row["diverged"] is True and "step 2" in row["diverged_reason"]
    assert "Traceback" not in out.stderr and "step 2" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["arch=nonet"], "unknown preset"), (["data.root=/nonexistent"], "dataset-fashion-mnist"),
     (["budget.optimizer=sgd"], "budget.optimizer"), (["format=xml"], "format")],
)
def test_cli_bad_input_fails_cleanly(args: list[str], message: str) -> None:
    out = run_cli(*args, "budget=tiny", synthetic=False)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_full_budget_resumes_after_interruption(tmp_path: Path, sig: signal.Signals) -> None:
    run_dir = tmp_path / "run"
    args = ["arch=basenet18_k1", "budget=full", "budget.epochs=4", "budget.width_mult=0.25", "budget.batch_size=64",
            f"run_dir={run_dir}", "format=json"]
    proc = subprocess.Popen([*CLI, *SYNTH_ARGS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = run_dir / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), proc.communicate()[1]
    os.kill(proc.pid, sig)
    proc.communicate()
    saved = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= saved < 4
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    assert f"resumed from {checkpoint} at epoch {saved}" in out.stderr
    row = json.loads(out.stdout)
    assert row["epochs"] == 4 and row["test_accuracy"] is not None
    assert (run_dir / "model.pt").is_file() and (run_dir / "curve.html").is_file()
