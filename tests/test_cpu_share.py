"""Thread budgets: usable CPUs (affinity, cgroup quota), the trainer registry, SLURM and workers=N
declarations, the OpenMP spin policy, and what boolnas-train and the search do with them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from boolnas.evaluators.cpus import affinity_cpus, cgroup_cpu_quota, usable_cpus
from boolnas.search.cpu_share import LOCAL_WORKERS_ENV, REGISTRY_ENV, CpuShare, TrainerRegistry, prefer_short_spin

REPO = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time; from pathlib import Path; from boolnas.search.cpu_share import TrainerRegistry; "
        "TrainerRegistry(Path(sys.argv[1])).register(); print('ready', flush=True); time.sleep(600)")


def _cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (tmp_path / "proc_cgroup").write_text(proc)
    return root, tmp_path / "proc_cgroup"


def test_cgroup_v2_quota_caps_the_usable_cpus(tmp_path: Path) -> None:
    root, proc = _cgroup(tmp_path, "0::/job/task\n", {"cgroup.controllers": "cpu", "job/cpu.max": "150000 100000\n",
                                                     "job/task/cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)  # the parent's quota binds the task
    assert usable_cpus(root, proc) == 1  # 1.5 CPUs of time: a second thread would be throttled


def test_cgroup_v1_quota_and_no_quota(tmp_path: Path) -> None:
    root, proc = _cgroup(tmp_path, "3:cpu,cpuacct:/slurm/job1\n",
                         {"cpu,cpuacct/slurm/job1/cpu.cfs_quota_us": "100000\n",
                          "cpu,cpuacct/slurm/job1/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.0)
    assert usable_cpus(root, proc) == 1
    root, proc = _cgroup(tmp_path / "none", "0::/\n", {"cgroup.controllers": "cpu", "cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(root, proc) is None
    assert usable_cpus(root, proc) == affinity_cpus()


def test_affinity_mask_counts_not_the_host() -> None:
    """A process pinned to one CPU (taskset) gets 1, whatever the host has."""
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); " \
           "from boolnas.evaluators.cpus import usable_cpus; print(usable_cpus())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == "1", out.stderr


def test_registry_counts_live_trainers_and_drops_killed_ones(tmp_path: Path) -> None:
    mine = TrainerRegistry(tmp_path).register()
    assert mine.live() == 1
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        assert mine.live() == 2
        other.send_signal(signal.SIGKILL)  # dies holding its entry: the kernel drops the lock
        other.wait(timeout=30)
        assert mine.live() == 1
        assert len(list(tmp_path.glob("*.lock"))) == 1  # the stale entry was removed
    finally:
        other.kill()
    mine.unregister()
    assert mine.live() == 0 and not list(tmp_path.glob("*.lock"))


def test_share_takes_declarations_and_registry(tmp_path: Path) -> None:
    env = {REGISTRY_ENV: str(tmp_path)}
    share = CpuShare.from_environment(env, register=False)
    assert share.cpus == usable_cpus() and share.declared == 1 and share.threads() == share.cpus
    assert CpuShare(cpus=8, declared=2).threads() == 4
    assert CpuShare(cpus=2, declared=4).threads() == 1  # never 0
    assert CpuShare.from_environment({**env, LOCAL_WORKERS_ENV: "3"}, register=False).declared == 3
    assert CpuShare.from_environment({**env, "SLURM_NTASKS_PER_NODE": "4(x2)"}, register=False).declared == 4
    # SLURM gave the task its own CPUs: the node's other tasks do not share them
    slurm = CpuShare.from_environment({**env, "SLURM_CPUS_PER_TASK": "1", "SLURM_NTASKS_PER_NODE": "8"},
                                      register=False)
    assert slurm.cpus == 1 and slurm.declared == 1
    assert CpuShare.from_environment({**env, LOCAL_WORKERS_ENV: "junk"}, register=False).declared == 1
    registered = CpuShare.from_environment(env)
    try:
        assert registered.peers() == 1
        other = TrainerRegistry(tmp_path)
        # a second registry object in this process stands for a second trainer
        other.register()
        assert registered.peers() == 2 and CpuShare(cpus=8, registry=registered.registry).threads() == 4
        other.unregister()
    finally:
        assert registered.registry is not None
        registered.registry.unregister()


def test_short_spin_unless_the_user_chose_a_wait_policy() -> None:
    env: dict[str, str] = {}
    assert prefer_short_spin(env) and env["GOMP_SPINCOUNT"] == "10000"
    user = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not prefer_short_spin(user) and user == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_train_cli_takes_its_share_next_to_another_trainer(tmp_path: Path) -> None:
    """boolnas-train with budget.num_threads=0 beside a live trainer: half the CPUs (at least 1),
    said on stderr; its registry entry is gone when it exits."""
    registry = tmp_path / "registry"
    env = {**os.environ, REGISTRY_ENV: str(registry), "PYTHONPATH": str(REPO)}
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(registry)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        out = subprocess.run([sys.executable, "-m", "boolnas.search.cli.train", "arch=basenet18_k1", "data=synthetic",
                              "data.num_train=128", "data.val_size=64", "data.num_test=64", "budget=tiny",
                              "budget.train_subset=32", "budget.val_subset=32", "budget.resolution=8",
                              "format=json", "progress=false"], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        cpus = usable_cpus()
        assert f"{max(1, cpus // 2)} torch thread(s): {cpus} usable CPU(s) shared by 2 boolnas trainer(s)" in out.stderr
        assert len(list(registry.glob("*.lock"))) == 1  # only the other trainer's
    finally:
        other.kill()
        other.wait(timeout=30)


def test_search_trials_record_their_thread_share(tmp_path: Path) -> None:
    """A worker's trials train with its share of the CPUs (budget.num_threads=0) and record it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from boolnas.search.conf_dir import CONF_DIR
    from boolnas.search.config import SearchConfig
    from boolnas.search.loop import run_search

    overrides = ["data=synthetic", "data.num_train=128", "data.val_size=64", "data.num_test=64", "budget=tiny",
                 "budget.train_subset=32", "budget.val_subset=32", "budget.resolution=8", "budget.num_threads=0",
                 "progress=false", "seed_presets=false", "n_trials=2", f"results_dir={tmp_path}", "study=threads"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = SearchConfig.from_cfg(OmegaConf.to_container(compose("search", overrides=overrides), resolve=True))
    import torch

    before = torch.get_num_threads()
    try:
        study = run_search(cfg, share=CpuShare(cpus=4, declared=2), write=False)
    finally:
        torch.set_num_threads(before)  # the search set this process's threads; leave the next tests as they were
    assert [t.user_attrs.get("threads") for t in study.trials] == [2, 2]
