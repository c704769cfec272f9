"""The CPUs this process may actually use: its affinity mask, capped by its cgroup's CPU quota.

``os.cpu_count()`` reports the host's cores; a container, a SLURM task or ``taskset`` may give a
process fewer. Sizing torch's thread pool from the host count oversubscribes the CPUs, and
OpenMP threads that spin while they wait for each other then collapse throughput (two trainings
of two threads each on two cores ran 22x slower than one). Only OS facts are read here; how the
CPUs are shared among several trainers is decided by the command-line layer (search/cpu_share.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (the host count where the mask cannot be read)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs' worth of time this process's cgroup may use per period (``2.5``: 250 % of one
    CPU), or None when there is no quota or it cannot be read. cgroup v2 (``cpu.max``) and v1
    (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); the tightest quota along the path counts."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        rel = Path(path.lstrip("/"))
        if controllers == "":  # v2 unified hierarchy (under unified/ on hybrid v1 + v2 hosts)
            v2 = root if (root / "cgroup.controllers").exists() or not (root / "unified").is_dir() else root / "unified"
            quotas += _along(rel, lambda d, b=v2: _v2_quota(b / d / "cpu.max"))
        elif "cpu" in controllers.split(","):
            base = root / controllers
            if not base.is_dir():
                base = root / "cpu"
            quotas += _along(rel, lambda d, b=base: _v1_quota(b / d))
    return min(quotas) if quotas else None


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process can keep busy: the affinity mask, capped by the cgroup quota (rounded
    down: a thread over the quota is throttled, not sped up), at least 1."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota + 1e-9)))
    return cpus


def _along(rel: Path, read: Callable[[Path], float | None]) -> list[float]:
    """Quotas of ``rel`` and each of its ancestors (a parent's quota binds its children)."""
    out = []
    for d in [rel, *rel.parents]:
        q = read(d)
        if q is not None:
            out.append(q)
    return out


def _v2_quota(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
