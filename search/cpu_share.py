"""Thread budgets that cannot oversubscribe: the CPUs of a machine shared by its boolnas trainers.

Measured on the 2-core machine (bireal18, the proxy budget): one training alone took 27.9 s;
two started at once with torch's default threads (two each) took 620 s each, because their
OpenMP threads spin while they wait for each other and steal the cores from the other process.
Two policies stop that (benchmarks/bench_concurrency.py measures them):

- **Threads per trainer** = the CPUs this process may use (``evaluators.cpus.usable_cpus``:
  affinity mask and cgroup quota, capped by ``SLURM_CPUS_PER_TASK``) divided by the number of
  boolnas trainers on the machine: the most of what ``workers=N`` declared to its workers
  (``BOOLNAS_LOCAL_WORKERS``), ``SLURM_NTASKS_PER_NODE`` and the live entries of a per-machine
  registry, where every training process (``boolnas-train``, each search worker) holds a locked
  file while it lives. The budget is taken when a training starts (after its data is loaded, so
  trainers started together see each other) and is fixed for that training: the thread count
  changes the order in which floats are summed, so a run never changes it midway; search trials
  record it (``threads``).
- **Short spinning**: OpenMP threads of a training spin at most ``GOMP_SPINCOUNT=10000``
  iterations (libgomp's default is 300,000) before they sleep, unless the user set the
  OpenMP wait policy. Alone, a training is as fast as with the default; next to another it
  no longer burns the cores the other needs. This must be set before torch loads libgomp, so
  the command-line modules call :func:`prefer_short_spin` before importing torch.

Library code never reads the environment: :meth:`CpuShare.from_environment` is called by the
command-line entry points, which pass the share down.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from boolnas.evaluators.cpus import usable_cpus

log = logging.getLogger(__name__)

LOCAL_WORKERS_ENV = "BOOLNAS_LOCAL_WORKERS"  # set by workers=N for its worker processes
REGISTRY_ENV = "BOOLNAS_TRAINER_REGISTRY"  # a folder for the registry (default: <tmp>/boolnas-<uid>/trainers)
SPIN_ENV = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}  # libgomp (torch's), Intel OpenMP
USER_WAIT_POLICY = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def prefer_short_spin(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Let waiting OpenMP threads sleep soon (see the module docstring), unless the user chose a
    wait policy. Only takes effect when called before torch is imported; returns whether it set
    anything."""
    if any(k in environ for k in USER_WAIT_POLICY):
        return False
    environ.update(SPIN_ENV)
    return True


class TrainerRegistry:
    """Live boolnas training processes of this machine (this user): one locked file each.

    The lock is released by the kernel when its process dies, however it dies (SIGKILL, OOM), so
    a file whose lock can be taken is stale and is removed by whoever counts next.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._path: Path | None = None

    @classmethod
    def default(cls, environ: Mapping[str, str] = os.environ) -> TrainerRegistry:
        folder = environ.get(REGISTRY_ENV) or str(Path(tempfile.gettempdir()) / f"boolnas-{os.getuid()}" / "trainers")
        return cls(Path(folder))

    def register(self) -> TrainerRegistry:
        """Enter this process (idempotent). A registry that cannot be written is skipped with a
        warning: the thread budget then relies on what was declared."""
        if self._fd is not None:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.lock"
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            log.warning("trainer registry %s not usable (%s); threads are shared by what was declared only",
                        self.folder, exc)
            return self
        os.write(fd, str(os.getpid()).encode())
        self._fd, self._path = fd, path
        atexit.register(self.unregister)  # a killed process leaves a stale file: removed by the next count
        return self

    def unregister(self) -> None:
        if self._fd is None:
            return
        try:
            if self._path is not None:
                self._path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = self._path = None

    def live(self) -> int:
        """Registered processes that are still alive (this one included, if registered)."""
        try:
            entries = list(self.folder.glob("*.lock"))
        except OSError:
            return 1 if self._fd is not None else 0
        alive = 0
        for path in entries:
            if path == self._path:
                alive += 1
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue  # removed meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                alive += 1  # held: its process lives
            else:
                path.unlink(missing_ok=True)  # stale: its process died
            finally:
                os.close(fd)
        return alive


@dataclass
class CpuShare:
    """How many torch threads a training in this process should use."""

    cpus: int  # CPUs this process may use
    declared: int = 1  # trainers this machine was told to run (workers=N, SLURM tasks per node)
    registry: TrainerRegistry | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, register: bool = True) -> CpuShare:
        """The share of this process: usable CPUs, SLURM's and workers=N's declarations, and
        (``register``) this process entered in the machine's registry."""
        cpus = usable_cpus()
        per_task = _positive(environ.get("SLURM_CPUS_PER_TASK"))
        declared = _positive(environ.get(LOCAL_WORKERS_ENV)) or 1
        if per_task:  # SLURM gave this task its own CPUs: they are not shared with the node's other tasks
            cpus = min(cpus, per_task)
        else:
            declared = max(declared, _positive(environ.get("SLURM_NTASKS_PER_NODE")) or 1)
        registry = TrainerRegistry.default(environ).register() if register else None
        return cls(cpus=cpus, declared=declared, registry=registry)

    def peers(self) -> int:
        live = self.registry.live() if self.registry is not None else 1
        return max(1, self.declared, live)

    def threads(self) -> int:
        """Threads for a training starting now: an equal share of the CPUs, at least one."""
        return max(1, self.cpus // self.peers())

    def describe(self, threads: int) -> str:
        return f"{threads} torch thread(s): {self.cpus} usable CPU(s) shared by {self.peers()} boolnas trainer(s)"


def _positive(value: str | None) -> int | None:
    """A positive integer from an environment value such as '4' or SLURM's '4(x2)'; else None."""
    if not value:
        return None
    head = value.split("(")[0].split(",")[0].strip()
    try:
        n = int(head)
    except ValueError:
        return None
    return n if n > 0 else None
