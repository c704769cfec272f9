"""Data-parallel training: sharded global batches, DDP equal to one process at the same global
batch, and torchrun (gloo) runs that survive a killed rank by resuming from the checkpoint."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from boolnas.evaluators.batches import GlobalBatchSampler
from boolnas.evaluators.data import DataConfig, load_dataset, open_streams
from boolnas.evaluators.distributed import DistContext
from boolnas.evaluators.training import Budget, train

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")


# ------------------------------------------------------------------------------------ sharding
@pytest.mark.parametrize(("n", "steps", "batch"), [(100, 6, 16), (10, 1, 16), (64, 4, 16)])
def test_the_shares_of_every_process_make_the_single_process_batches(n: int, steps: int, batch: int) -> None:
    def batches(rank: int, world: int) -> list[list[tuple[int, int]]]:
        sampler = GlobalBatchSampler(n, steps, batch, seed=5, ctx=DistContext(rank, world))
        sampler.set_epoch(3)
        items = list(sampler)
        assert len(items) == len(sampler)
        local = batch // world
        return [items[i:i + local] for i in range(0, len(items), local)]

    single = batches(0, 1)
    for world in (2, 4):
        shares = [batches(r, world) for r in range(world)]
        merged = [sum((s[i] for s in shares if i < len(s)), []) for i in range(len(single))]
        assert merged == single  # same images, same augmentation seeds, same order
    assert len({i for b in single for i, _ in b}) == min(n, steps * batch)  # no image twice per epoch
    other_epoch = GlobalBatchSampler(n, steps, batch, seed=5, ctx=DistContext())
    other_epoch.set_epoch(4)
    assert list(other_epoch) != [x for b in single for x in b]


def test_torchrun_environment_and_bad_values() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
           "TORCHELASTIC_RESTART_COUNT": "1"}
    assert DistContext.from_environment(env) == DistContext(3, 4, 1, 2, attempt=1)
    assert DistContext.from_environment({}) == DistContext() and not DistContext().active
    with pytest.raises(ValueError, match="start the training with torchrun"):
        DistContext.from_environment({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="rank 2 is not below the world size 2"):
        DistContext(2, 2)


def test_a_global_batch_that_does_not_divide_among_the_processes_is_refused() -> None:
    data = load_dataset(DataConfig.from_conf("synthetic", num_train=64, val_size=16, num_test=0, input_size=8))
    with pytest.raises(ValueError, match="batch_size=32 .* among 3 processes"):
        train(nn.Linear(1, 1), data, Budget.from_conf("tiny", batch_size=32, device="cpu"), dist_ctx=DistContext(0, 3))


# ------------------------------------------------------------------------------------ DDP == one process
SYNTH = DataConfig.from_conf("synthetic", num_train=256, val_size=64, num_test=0, input_size=8)


def _mlp() -> nn.Module:
    """No BatchNorm: per-process batch statistics are the one thing DDP legitimately changes."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _run(ctx: DistContext, stream: bool) -> tuple[dict[str, torch.Tensor], float]:
    data = open_streams(SYNTH, augment=True) if stream else load_dataset(SYNTH)
    budget = Budget.from_conf("tiny", name="ddp", epochs=2, batch_size=32, lr=0.01, train_subset=None, val_subset=None,
                              width_mult=1.0, device="cpu", num_threads=1, stream=stream, augment=stream,
                              bn_recalibration=0)  # in memory, augmentation is drawn per process
    model = _mlp()
    result = train(model, data, budget, seed=0, dist_ctx=ctx)
    return model.state_dict(), result.val_accuracy


def _worker(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        for stream in (True, False):
            state, acc = _run(DistContext(rank, world), stream)
            torch.save({"state": state, "acc": acc}, f"{out}/rank{rank}-{stream}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_train_the_weights_one_process_trains(tmp_path: Path) -> None:
    """Streamed and in-memory feeds: each process's share of every global batch, DDP's averaged
    gradients and the summed validation counts give one process's weights and accuracy."""
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_worker, args=(r, 2, str(tmp_path / "rdzv"), str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    for stream in (True, False):
        single_state, single_acc = _run(DistContext(), stream)
        for rank in range(2):
            saved = torch.load(tmp_path / f"rank{rank}-{stream}.pt", weights_only=True)
            assert saved["acc"] == single_acc
            for key, value in single_state.items():
                assert torch.allclose(saved["state"][key], value, atol=1e-5), (stream, key)


# ------------------------------------------------------------------------------------ torchrun
def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    values = dict(e.split(b"=", 1) for e in env if b"=" in e)
    return int(values[b"RANK"]) if b"RANK" in values else None


@pytest.mark.slow
def test_torchrun_restarts_a_killed_rank_and_the_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """Two gloo processes train budget=full; rank 1 is SIGKILLed after the first checkpoint;
    torchrun restarts both, they resume from the checkpoint and finish with one model.pt."""
    run_dir = tmp_path / "run"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "--max-restarts=1", "-m", "boolnas.search.cli.train",
           "progress=false", "format=json", "data=synthetic", "data.num_train=256", "data.val_size=64",
           "data.num_test=64", "arch=basenet18_k1", "budget=full", "budget.epochs=3", "budget.width_mult=0.25",
           "budget.batch_size=64", "budget.data_workers=1", f"run_dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        checkpoint = run_dir / "checkpoint.pt"
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists(), proc.communicate()[1]
        rank1 = [p for p in _children(proc.pid) if _rank_of(p) == 1]
        assert len(rank1) == 1
        os.kill(rank1[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, "\n".join(ln for ln in err.splitlines() if "[INFO]" in ln or "rror" in ln)[-6000:]
    assert "(torchrun restart 1)" in err  # the processes were started again ...
    assert "resumed from" in err and "at epoch" in err  # ... and resumed the run
    row = json.loads(out.strip().splitlines()[-1])
    assert row["epochs"] == 3 and row["diverged"] is False and row["test_accuracy"] is not None
    assert len(out.strip().splitlines()) == 1  # only rank 0 prints the result
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "curve.html", "model.pt", "result.json"]
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 3


@pytest.mark.slow
def test_the_gpu_checks_ddp_part_runs_on_cpu_processes() -> None:
    """benchmarks/gpu_check.sh's data-parallel check, on its CPU path (2 gloo processes): both
    networks train and their replicas stay equal (for the fp32 twin, whose BatchNorm statistics
    are not re-estimated, only because evaluation gives every process rank 0's statistics)."""
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE": "cpu", "CHECKS": "ddp", "BATCH": "16", "DDP_STEPS": "2",
           "SIZE": "14", "WIDTH": "0.25", "WORKERS": "1", "PRESETS": "basenet18_k1"}
    out = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["processes"] == 2 and summary["backend"] == "gloo"
    assert {(r["network"], r["replicas_in_sync"]) for r in summary["runs"]} == {("binary", True), ("fp32_twin", True)}
