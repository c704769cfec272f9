"""Proxy fidelity: does the cheap proxy budget rank architectures the way long training does?

Issue 7, item 1. For every architecture (the seven presets of ``space.PRESETS`` plus
``--n-sampled`` distinct genotypes drawn from the default space conf/space/boolnet.yaml with a
seeded chooser), the benchmark measures

- **proxy accuracy**: ``evaluators.accuracy.train_genotype`` under the search's default budget
  (conf/budget/proxy.yaml) on Fashion-MNIST, validation accuracy, for each of ``--proxy-seeds``
  (default 0 and 1) and their mean;
- **long training** (the reference ranking), seed 0, on the same network shape as the proxy
  (resolution 14, width x0.25: the compute per image is the same) but on the whole training
  split (55,000 images: Fashion-MNIST's 60,000 minus the 5,000-image validation split) for
  ``--long-epochs`` epochs (default 2), scored on the official **test split** (10,000 images) and on
  the whole validation split; wall time recorded;
- **baselines**: the zero-cost scores of ``evaluators.zero_cost.zero_cost_scores`` (one seeded
  batch of 64 training images, untrained proxy-task network), the parameter count and OPs of the
  plan on the proxy task, and the parameter count and OPs on the ImageNet target task
  (conf/task/imagenet.yaml).

Statistics: Kendall tau and Spearman rho (scipy.stats) of each predictor against long-training
test accuracy, with 95 % percentile-bootstrap intervals (architectures resampled with
replacement, 2,000 resamples, seeded; resamples with fewer than 3 distinct values of either
variable are skipped); signs as measured (a negative tau means "more of it, lower accuracy").
Also the seed-to-seed tau of the proxy (seed 0 against seed 1): the ceiling noise puts on any
proxy-vs-truth tau.

**The long-training recipe** (derived in ``long_budget`` from proxy.yaml and full.yaml):
proxy.yaml's network shape and evaluation settings (resolution 14, width_mult 0.25, 8 batches of
BN re-estimation, grad_clip 2.5); full.yaml's optimizer and binarization schedule (RAdam,
lr 0.002, progressive weight binarization with temperature x0.965 every 1/100 of the steps,
weight decay 0, no warm-up, no label smoothing); ``train_subset: null``, ``val_subset: null``,
``eval_test: true``. Two choices differ from full.yaml, both because two epochs is far from
convergence: batch 64 instead of 256 (two epochs at 256 would be only 428 steps, fewer than 2x
the proxy's 256; at 64 it is 1,718 steps; proxy_budget.md found smaller batches to be the
largest gain in short runs), and ``augment: false`` (augmentation pays off against
over-fitting, which two epochs do not reach; its 2-pixel shifts are also large at 14x14).

**Compute ratio.** Per image the proxy and the long run train the same network, so training
compute is proportional to images seen: the proxy sees 8,192 (256 steps of 32), the long run
2 x 859 steps of 64 = 109,952, i.e. **13.4x** the proxy's training compute per seed (6.7x the
two proxy seeds together). Scoring is not counted (the long run scores 5,000 validation and
10,000 test images, the proxy 2,000). The measured ratio is printed and is in the JSON summary.

Reproduce the committed figures (benchmarks/results/fidelity*.csv, fidelity.png, and with the
variants fidelity_cost.csv / fidelity_cost.png, the cost-vs-fidelity curve):

    .venv/bin/python benchmarks/fidelity.py --jobs 2 --threads 1
    .venv/bin/python benchmarks/fidelity.py --jobs 2 --threads 1 \
        --variant train_subset=4096 --variant train_subset=16384 --variant progressive=true

Each ``--variant key=value[,key=value]`` is the default proxy with those budget keys replaced,
trained per architecture and seed like the default and ranked against the same long runs; its
measurements share the cache (a variant equal to the default, or to a former default, is not
trained again).

(defaults: --n-sampled 9 --seed 0 --proxy-seeds 0 1 --long-epochs 2 --out benchmarks/results).
Time on the shared 2-core CPU machine: 16 architectures x (2 proxy runs + one long run of 13.4x
a proxy run). Training-step timings of the 16 networks (batch 64, one thread, taken while other
jobs loaded the host) put them at 1.2-13 ms per image, i.e. long runs of 2-25 min, adding up to
about 145 worker-minutes, most of it in the four sampled 8-slice genotypes and the k=4 presets.
With ``--jobs 2 --threads 1`` that is about 45-60 min on an otherwise idle machine and up to
~75-90 min while other work shares the cores; the longest single measurement (an 8-slice
genotype's long run, 12-25 min) is scheduled first (jobs run most expensive first). It is
resumable: every finished measurement is appended to ``<out>/fidelity_runs.jsonl``, keyed by
(architecture key, kind, seed, hash of the budget and data config), and a rerun skips what is
there (an interruption loses only the measurements in flight); delete the file to measure again.
Results do not depend on the order in which jobs run or on ``--jobs`` (every measurement seeds
its own weight init and data order), but ``--threads`` changes the order in which floats are
summed, which alone can move one accuracy by up to about a point (benchmarks/proxy_budget.md);
the thread count is not part of the cache key, so keep it fixed within one set of figures.

``--quick`` is a smoke run (``quick_setup``: 512 synthetic training images, conf/budget/tiny.yaml
cut to 2 steps at 14x14, a one-epoch long run of 8 steps; two presets and one sampled genotype;
output in a temp folder unless ``--out`` is given); it takes 20-40 s and is what
tests/test_fidelity_bench.py runs. Its numbers mean nothing.

Progress and logs go to stderr; stdout gets a table of the statistics, the verdict on the
default proxy (Kendall tau >= 0.6?) and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import math
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)
from _plots import pyplot, save_png  # noqa: E402

from boolnas.evaluators.data import DataConfig, Dataset, load_dataset  # noqa: E402
from boolnas.evaluators.training import Budget  # noqa: E402
from boolnas.space import PRESETS, Genotype, Task, get_preset, make_plan  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402
from boolnas.space.sampling import SearchSpace, sample  # noqa: E402

log = logging.getLogger("fidelity")

CONF = REPO / "conf"
DEFAULT_OUT = REPO / "benchmarks" / "results"
RUNS_FILE = "fidelity_runs.jsonl"
TAU_TARGET = 0.6  # issue 7: the proxy should reach Kendall tau >= 0.6 against long training
LONG_BATCH = 64
ZC_BATCH = 64
BOOTSTRAP = 2000
QUICK_PRESETS = ("basenet18_k1", "bireal18")
ZC_METRICS = ("zc_naswot", "zc_grad_norm", "zc_snip")
TARGET = "long_test_acc"
VARIANT_KIND = "proxy:"  # job kind of a proxy variant: "proxy:train_subset=4096"
CACHED_MARKER = "to run"  # stderr: "fidelity: N measurements, C cached, P to run"


# --------------------------------------------------------------------------- architectures
@dataclass(frozen=True)
class Arch:
    name: str  # preset name, or the genotype key of a sampled genotype
    genotype: Genotype
    is_preset: bool

    @property
    def key(self) -> str:
        return self.genotype.key()


class SeededChooser:
    """The one method of an Optuna trial that ``space.sampling.sample`` calls, from a seeded RNG."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.rng.choice(list(choices))


def sampled_genotypes(space: SearchSpace, n: int, seed: int, exclude: Iterable[str] = ()) -> list[Genotype]:
    """``n`` distinct genotypes (by key) of ``space``, none of them in ``exclude``."""
    chooser, seen, out = SeededChooser(seed), set(exclude), []
    for _ in range(1000 * max(n, 1)):
        if len(out) == n:
            break
        g = sample(chooser, space)
        if g.key() not in seen:
            seen.add(g.key())
            out.append(g)
    if len(out) < n:
        raise ValueError(f"the space holds fewer than {n} distinct genotypes besides the presets")
    return out


def architectures(presets: Sequence[str], n_sampled: int, seed: int, space_path: Path) -> list[Arch]:
    archs = [Arch(p, get_preset(p), True) for p in presets]
    space = SearchSpace.from_config(yaml.safe_load(space_path.read_text()))
    drawn = sampled_genotypes(space, n_sampled, seed, exclude=[get_preset(p).key() for p in PRESETS])
    return archs + [Arch(g.key(), g, False) for g in drawn]


# --------------------------------------------------------------------------- budgets
def load_budget(path: Path) -> Budget:
    return Budget.from_dict(yaml.safe_load(path.read_text()))


def long_budget(proxy: Budget, full: Budget, epochs: int, batch_size: int = LONG_BATCH,
                lr: float | None = None) -> Budget:
    """The reference recipe: the proxy's network shape, full training's optimizer and progressive
    binarization, the whole training split, test accuracy (see the module docstring)."""
    return replace(
        proxy, name="long", epochs=epochs, batch_size=batch_size, lr=lr or full.lr, optimizer=full.optimizer,
        real_lr_mult=full.real_lr_mult, warmup=full.warmup, label_smoothing=full.label_smoothing,
        weight_decay=full.weight_decay, grad_clip=full.grad_clip, progressive=full.progressive,
        temperature_decay=full.temperature_decay, temperature_every=full.temperature_every,
        train_subset=None, val_subset=None, augment=False, eval_test=True, checkpoint=False)


def parse_variant(spec: str, proxy: Budget) -> Budget:
    """A proxy variant ``key=value[,key=value...]`` (conf/budget keys): the default proxy budget
    with those fields replaced, validated as any budget is."""
    overrides: dict[str, Any] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"proxy variant {spec!r}: expected key=value[,key=value...]")
        overrides[key.strip()] = yaml.safe_load(value)
    unknown = sorted(set(overrides) - set(asdict(proxy)))
    if unknown:
        raise ValueError(f"proxy variant {spec!r}: unknown budget key(s) {unknown}")
    return Budget.from_dict({**asdict(proxy), **overrides})


def quick_setup() -> tuple[Budget, DataConfig]:
    """The smoke run's proxy budget and data: conf/budget/tiny.yaml shrunk to 2 steps at 14x14 on
    a small synthetic set (512 training images), so the derived long run (one epoch) is 8 steps."""
    tiny = load_budget(CONF / "budget" / "tiny.yaml")
    data = DataConfig.from_conf("synthetic", num_train=512, num_test=256, val_size=256)
    return replace(tiny, resolution=14, train_subset=2 * tiny.batch_size, val_subset=256, bn_recalibration=2), data


def config_hash(**parts: Any) -> str:
    """A short stable hash of JSON-able parts (budget, data config, ...): the cache's key."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- measurements
@dataclass(frozen=True)
class Job:
    """One measurement: kind 'proxy' / 'long' (a training) or 'static' (zero-cost scores, counts)."""

    arch: str
    genotype: dict[str, Any]
    arch_key: str
    kind: str
    seed: int
    budget: Budget
    data: DataConfig
    target_task: Task
    cost: float = 0.0  # relative cost estimate, for scheduling only

    @property
    def measured_kind(self) -> str:
        """What is measured: a proxy variant is a proxy run under another budget, so it shares the
        cache with the default proxy (a variant equal to the default, or a former default kept
        as a variant, is not measured again)."""
        return "proxy" if self.kind.startswith(VARIANT_KIND) else self.kind

    @property
    def budget_hash(self) -> str:
        extra = {"zc_batch": ZC_BATCH, "target": asdict(self.target_task)} if self.kind == "static" else {}
        return config_hash(kind=self.measured_kind, budget=asdict(self.budget), data=asdict(self.data), **extra)

    @property
    def cache_key(self) -> str:
        return f"{self.arch_key}/{self.measured_kind}/s{self.seed}/{self.budget_hash}"


_DATA: dict[DataConfig, Dataset] = {}


def _dataset(cfg: DataConfig) -> Dataset:
    if cfg not in _DATA:
        _DATA[cfg] = load_dataset(cfg)
    return _DATA[cfg]


def init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _train(job: Job, data: Dataset) -> dict[str, Any]:
    from boolnas.evaluators.accuracy import train_genotype

    _, r = train_genotype(Genotype.from_dict(job.genotype), data, job.budget, seed=job.seed)
    return {"val_acc": r.val_accuracy, "test_acc": r.test_accuracy, "steps": r.steps,
            "images": r.steps * job.budget.batch_size, "train_time_s": r.time_s, "diverged": r.diverged,
            "diverged_reason": r.diverged_reason,
            # mean training loss over the run (x steps: the sum of training losses, a cheap predictor)
            "train_loss_mean": sum(h["loss"] for h in r.history) / len(r.history) if r.history else None}


def _static(job: Job, data: Dataset) -> dict[str, Any]:
    import torch

    from boolnas.evaluators.accuracy import build_for, proxy_task
    from boolnas.evaluators.zero_cost import zero_cost_scores

    genotype = Genotype.from_dict(job.genotype)
    task = proxy_task(data, job.budget)
    small = data.resized(task.input_size)
    idx = torch.randperm(len(small.train_y), generator=torch.Generator().manual_seed(job.seed))[:ZC_BATCH]
    torch.manual_seed(job.seed)
    scores = zero_cost_scores(build_for(genotype, task), small.train_x[idx], small.train_y[idx])
    proxy, target = make_plan(genotype, task).totals(), make_plan(genotype, job.target_task).totals()
    return {**scores, "params": proxy["params_binary"] + proxy["params_real"], "ops_proxy": proxy["ops"],
            "params_target": target["params_binary"] + target["params_real"], "ops_target": target["ops"]}


def measure(job: Job) -> dict[str, Any]:
    """Run one measurement (in a worker process or in-process); the cache line it produces."""
    start = time.perf_counter()
    data = _dataset(job.data)
    result = _static(job, data) if job.kind == "static" else _train(job, data)
    result["time_s"] = time.perf_counter() - start
    return {"key": job.cache_key, "arch": job.arch, "arch_key": job.arch_key, "kind": job.kind, "seed": job.seed,
            "budget_hash": job.budget_hash, "result": result,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def make_jobs(archs: Sequence[Arch], proxy: Budget, long: Budget, proxy_seeds: Sequence[int], data: DataConfig,
              target_task: Task, variants: Mapping[str, Budget] | None = None) -> list[Job]:
    """Per architecture: zero-cost scores, the default proxy per seed, the long run, and each proxy
    variant per seed (kind ``proxy:<spec>``; its budget hash keeps it apart in the cache)."""
    jobs = []
    for a in archs:
        per_image = cpu_cost(a.genotype, proxy)
        base = {"arch": a.name, "genotype": a.genotype.to_dict(), "arch_key": a.key, "data": data,
                "target_task": target_task}
        jobs.append(Job(**base, kind="static", seed=0, budget=proxy, cost=0.0))
        jobs += [Job(**base, kind="proxy", seed=s, budget=proxy, cost=per_image * _images(proxy))
                 for s in proxy_seeds]
        jobs.append(Job(**base, kind="long", seed=0, budget=long, cost=per_image * _images(long)))
        for spec, budget in (variants or {}).items():
            jobs += [Job(**base, kind=f"{VARIANT_KIND}{spec}", seed=s, budget=budget,
                         cost=per_image * _images(budget)) for s in proxy_seeds]
    return jobs


def cpu_cost(genotype: Genotype, budget: Budget) -> float:
    """A rough per-image CPU cost, for scheduling only: the values a forward pass writes (slices
    counted) on a 1-channel 28x28 proxy task. Eager BNN training on CPU is dominated by
    element-wise ops over k-slice maps, not by MACs (Spearman 0.73 against measured step times
    of the 16 default architectures; MACs: 0.45)."""
    task = Task(input_size=budget.resolution or 28, in_channels=1, num_classes=10, width_mult=budget.width_mult,
                stem="small")
    return float(sum(layer.out_elements for layer in make_plan(genotype, task)))


def _images(budget: Budget, train_size: int = 55_000) -> int:
    n = min(budget.train_subset or train_size, train_size)
    return max(1, n // budget.batch_size) * budget.batch_size * budget.epochs


# --------------------------------------------------------------------------- cache
def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Cache lines by key (the last one wins); a torn last line (an interrupted write) is skipped."""
    cache: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return cache
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            cache[entry["key"]] = entry
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s line %d is not a cache entry; ignored", path, n)
    return cache


def append_cache(path: Path, entry: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class RunStats:
    done: int = 0
    failed: list[str] = field(default_factory=list)


def run_jobs(jobs: Sequence[Job], cache_path: Path, cache: dict[str, dict[str, Any]], n_jobs: int,
             threads: int) -> RunStats:
    """Measure ``jobs`` (most expensive first), appending each result to the cache as it lands."""
    from tqdm.auto import tqdm

    stats = RunStats()
    if not jobs:
        return stats
    ordered = sorted(jobs, key=lambda j: -j.cost)
    bar = tqdm(total=len(ordered), desc="fidelity", unit="run", file=sys.stderr, dynamic_ncols=True)

    def landed(job: Job, get: Callable[[], dict[str, Any]]) -> None:
        try:
            entry = get()
        except Exception as exc:  # one broken architecture must not lose the others
            log.error("%s %s seed %d failed: %s: %s", job.arch, job.kind, job.seed, type(exc).__name__, exc)
            stats.failed.append(f"{job.arch}/{job.kind}/s{job.seed}")
        else:
            append_cache(cache_path, entry)
            cache[entry["key"]] = entry
            stats.done += 1
            bar.set_postfix_str(f"{job.arch[:16]} {job.kind} {entry['result']['time_s']:.0f}s", refresh=False)
        bar.update(1)

    try:
        if n_jobs <= 1:
            init_worker(threads)
            for job in ordered:
                landed(job, lambda job=job: measure(job))
        else:
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("spawn"),
                                     initializer=init_worker, initargs=(threads,)) as pool:
                futures: dict[Future[dict[str, Any]], Job] = {pool.submit(measure, j): j for j in ordered}
                try:
                    for fut in as_completed(futures):
                        landed(futures[fut], fut.result)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return stats


# --------------------------------------------------------------------------- table
def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def build_rows(archs: Sequence[Arch], jobs: Sequence[Job], cache: dict[str, dict[str, Any]],
               proxy_seeds: Sequence[int]) -> list[dict[str, Any]]:
    by_arch: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    for j in jobs:
        entry = cache.get(j.cache_key)
        by_arch.setdefault(j.arch_key, {})[(j.kind, j.seed)] = entry["result"] if entry else {}
    rows = []
    for a in archs:
        got = by_arch[a.key]
        proxy = [_nan(got[("proxy", s)].get("val_acc")) for s in proxy_seeds]
        times = [_nan(got[("proxy", s)].get("time_s")) for s in proxy_seeds]
        long, static = got[("long", 0)], got[("static", 0)]
        row: dict[str, Any] = {"name": a.name, "is_preset": a.is_preset,
                               "genotype": json.dumps(a.genotype.to_dict(), sort_keys=True, separators=(",", ":"))}
        row.update({f"proxy_acc_s{s}": acc for s, acc in zip(proxy_seeds, proxy)})
        row["proxy_acc_mean"] = float(np.mean(proxy))
        row.update(long_test_acc=_nan(long.get("test_acc")), long_val_acc=_nan(long.get("val_acc")),
                   long_time_s=_nan(long.get("time_s")), proxy_time_s=float(np.mean(times)))
        row.update({m: _nan(static.get(m)) for m in ZC_METRICS})
        row.update({m: _nan(static.get(m)) for m in ("params", "ops_proxy", "params_target", "ops_target")})
        rows.append(row)
    return rows


def predictors(proxy_seeds: Sequence[int]) -> list[str]:
    return ["proxy_acc_mean", f"proxy_acc_s{proxy_seeds[0]}", *ZC_METRICS, "params", "ops_proxy",
            "params_target", "ops_target"]


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


# --------------------------------------------------------------------------- statistics
def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    return float(stats.kendalltau(x, y).statistic), float(stats.spearmanr(x, y).statistic)


def _finite_pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs where both values are known; -inf is a valid (lowest) score, NaN is a missing one."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(xa) | np.isnan(ya))
    return xa[keep], ya[keep]


def rank_agreement(x: Sequence[float], y: Sequence[float], resamples: int = BOOTSTRAP,
                   seed: int = 0) -> dict[str, float]:
    """Kendall tau and Spearman rho of ``x`` vs ``y`` with 95 % percentile-bootstrap intervals."""
    xa, ya = _finite_pairs(x, y)
    n = len(xa)
    out = {"kendall_tau": float("nan"), "tau_ci_low": float("nan"), "tau_ci_high": float("nan"),
           "spearman_rho": float("nan"), "rho_ci_low": float("nan"), "rho_ci_high": float("nan"), "n": n}
    if n < 3:
        return out
    out["kendall_tau"], out["spearman_rho"] = _corr(xa, ya)
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        xs, ys = xa[idx], ya[idx]
        if len(np.unique(xs)) < 3 or len(np.unique(ys)) < 3:
            continue
        tau, rho = _corr(xs, ys)
        if not math.isnan(tau):
            taus.append(tau)
            rhos.append(rho)
    if taus:
        out["tau_ci_low"], out["tau_ci_high"] = (float(v) for v in np.percentile(taus, [2.5, 97.5]))
        out["rho_ci_low"], out["rho_ci_high"] = (float(v) for v in np.percentile(rhos, [2.5, 97.5]))
    return out


def summarize(rows: Sequence[dict[str, Any]], proxy_seeds: Sequence[int], seed: int,
              resamples: int = BOOTSTRAP) -> list[dict[str, Any]]:
    """Every predictor against long-training test accuracy (the first row: the proxy's mean), then
    the proxy's seed-to-seed agreement."""
    col = {k: [r[k] for r in rows] for k in rows[0]}
    pairs = [(p, TARGET) for p in predictors(proxy_seeds)]
    if len(proxy_seeds) >= 2:
        pairs.append((f"proxy_acc_s{proxy_seeds[0]}", f"proxy_acc_s{proxy_seeds[1]}"))
    return [{"predictor": p, "target": t, **rank_agreement(col[p], col[t], resamples, seed)} for p, t in pairs]


def variant_summary(archs: Sequence[Arch], jobs: Sequence[Job], cache: dict[str, dict[str, Any]],
                    rows: Sequence[dict[str, Any]], proxy_seeds: Sequence[int], seed: int,
                    resamples: int = BOOTSTRAP) -> list[dict[str, Any]]:
    """The cost-vs-fidelity table: for the default proxy and every variant, its relative training
    compute (images per run x the per-image cost of its network shape, summed over the
    architectures, default = 1), its mean measured time per run, Kendall tau / Spearman rho of its
    seed-mean accuracy against long-training test accuracy, and its seed-to-seed tau."""
    target = [r[TARGET] for r in rows]
    default_compute = sum(j.cost for j in jobs if j.kind == "proxy")
    out = []
    for kind in ["proxy", *dict.fromkeys(j.kind for j in jobs if j.kind.startswith(VARIANT_KIND))]:
        mine = [j for j in jobs if j.kind == kind]
        got = {(j.arch_key, j.seed): cache[j.cache_key]["result"] for j in mine if j.cache_key in cache}
        acc = {s: [_nan(got.get((a.key, s), {}).get("val_acc")) for a in archs] for s in proxy_seeds}
        mean = np.mean([acc[s] for s in proxy_seeds], axis=0)
        stat = rank_agreement(mean, target, resamples, seed)
        noise = (rank_agreement(acc[proxy_seeds[0]], acc[proxy_seeds[1]], 0, seed)["kendall_tau"]
                 if len(proxy_seeds) >= 2 else float("nan"))
        times = [r["time_s"] for r in got.values()]
        out.append({
            "variant": "default" if kind == "proxy" else kind[len(VARIANT_KIND):],
            "images_per_run": _images(mine[0].budget), "compute": sum(j.cost for j in mine) / default_compute,
            "mean_time_s": float(np.mean(times)) if times else float("nan"), "runs": len(got),
            **{k: stat[k] for k in ("kendall_tau", "tau_ci_low", "tau_ci_high", "spearman_rho", "n")},
            "seed_to_seed_tau": noise, "mean_proxy_acc": float(np.nanmean(mean)) if got else float("nan"),
        })
    return out


def plot_cost(variants: Sequence[dict[str, Any]], path: Path, subtitle: str) -> None:
    """Kendall tau (95 % CI) against relative proxy compute, one point per variant."""
    plt = pyplot()

    pts = sorted((v for v in variants if not math.isnan(v["kendall_tau"])), key=lambda v: v["compute"])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    # Variants of equal compute sit side by side (a few % apart on the log axis), not on top of each other.
    seen: dict[float, int] = {}
    x = []
    for v in pts:
        seen[v["compute"]] = seen.get(v["compute"], -1) + 1
        x.append(v["compute"] * 1.07 ** seen[v["compute"]])
    tau = np.array([v["kendall_tau"] for v in pts])
    err = np.vstack([tau - [v["tau_ci_low"] for v in pts], np.array([v["tau_ci_high"] for v in pts]) - tau])
    ax.errorbar(x, tau, yerr=np.nan_to_num(err), marker="o", linestyle="none", capsize=3, color="C0",
                label="proxy (seed mean) vs long training, 95% CI")
    ax.plot(x, [v["seed_to_seed_tau"] for v in pts], marker="^", linestyle="none", color="C1",
            label="proxy seed 0 vs seed 1 (noise ceiling)")
    for xv, v in zip(x, pts, strict=True):
        ax.annotate(v["variant"], (xv, v["kendall_tau"]), textcoords="offset points", xytext=(5, -12),
                    fontsize=8, fontweight="bold" if v["variant"] == "default" else "normal")
    ax.axhline(TAU_TARGET, color="0.5", linestyle=":", label=f"target tau = {TAU_TARGET}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("proxy training compute per run (relative to the default proxy)")
    ax.set_ylabel("Kendall tau")
    ax.set_title(f"Cost vs fidelity of the proxy\n{subtitle}", fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=150)


# --------------------------------------------------------------------------- plot
def _label_points(ax: Any, labels: Sequence[tuple[str, float, float]], size: float = 8.0) -> None:
    """Annotate points so that no two labels overlap: each label takes the first of a few places
    around its point (right, left; above, below, further out) whose box, estimated in points,
    meets no label placed before it."""
    to_pt = 72.0 / ax.figure.dpi
    placed: list[tuple[float, float, float, float]] = []
    for name, x, y in sorted(labels, key=lambda t: -t[2]):
        px, py = (v * to_pt for v in ax.transData.transform((x, y)))
        w, h = 0.6 * size * len(name), size
        spots = [(dx, dy) for dy in (4, -h - 4, h + 6, -2 * h - 6) for dx in (4, -w - 4)]
        for dx, dy in spots:
            box = (px + dx, py + dy, px + dx + w, py + dy + h)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in placed):
                break
        placed.append(box)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=size,
                    arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 0, "shrinkB": 3})


def plot(rows: Sequence[dict[str, Any]], main_stat: dict[str, Any], proxy_seeds: Sequence[int], path: Path,
         subtitle: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 6))
    for preset, style in ((False, {"color": "0.55", "marker": "o", "label": "sampled"}),
                          (True, {"color": "C0", "marker": "s", "label": "preset"})):
        pts = [r for r in rows if r["is_preset"] == preset
               and not (math.isnan(r["proxy_acc_mean"]) or math.isnan(r[TARGET]))]
        if not pts:
            continue
        x = np.array([r["proxy_acc_mean"] for r in pts])
        seeds = np.array([[r[f"proxy_acc_s{s}"] for s in proxy_seeds] for r in pts])
        xerr = np.vstack([x - seeds.min(1), seeds.max(1) - x])
        ax.errorbar(x, [r[TARGET] for r in pts], xerr=xerr, linestyle="none", capsize=2, **style)
        if preset:
            _label_points(ax, [(r["name"], r["proxy_acc_mean"], r[TARGET]) for r in pts])
    seeds_txt = ", ".join(str(s) for s in proxy_seeds)
    ax.set_xlabel(f"proxy validation accuracy (mean of seeds {seeds_txt}; bars: seed range)")
    ax.set_ylabel("long-training test accuracy (seed 0)")
    tau, lo, hi = main_stat["kendall_tau"], main_stat["tau_ci_low"], main_stat["tau_ci_high"]
    ax.set_title(f"Proxy vs long training: Kendall tau = {tau:.2f} (95% CI {lo:.2f} to {hi:.2f}), "
                 f"n = {main_stat['n']}\n{subtitle}", fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path, dpi=150)


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-sampled", type=int, default=None, help="genotypes drawn from the space (default 9)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the drawn genotypes and of the bootstrap")
    ap.add_argument("--proxy-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--long-epochs", type=int, default=None, help="epochs of the long run (default 2)")
    ap.add_argument("--long-batch-size", type=int, default=LONG_BATCH)
    ap.add_argument("--long-lr", type=float, default=None, help="default: conf/budget/full.yaml's lr")
    ap.add_argument("--presets", nargs="*", default=None, choices=PRESETS, help="default: all seven")
    ap.add_argument("--space", type=Path, default=CONF / "space" / "boolnet.yaml")
    ap.add_argument("--jobs", type=int, default=1, help="measurements in parallel (spawned worker processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per measurement")
    ap.add_argument("--bootstrap", type=int, default=BOOTSTRAP, help="bootstrap resamples")
    ap.add_argument("--out", type=Path, default=None, help=f"default: {DEFAULT_OUT} ({{tmp}}/... with --quick)")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                    help="a proxy variant measured beside the default (repeatable), e.g. train_subset=4096; "
                         "adds fidelity_cost.csv and fidelity_cost.png")
    ap.add_argument("--quick", action="store_true", help="smoke run: synthetic data, tiny budgets, 3 archs")
    args = ap.parse_args(argv)
    if args.quick:
        args.presets = list(QUICK_PRESETS) if args.presets is None else args.presets
        args.n_sampled = 1 if args.n_sampled is None else args.n_sampled
        args.long_epochs = args.long_epochs or 1
        args.out = args.out or Path(tempfile.gettempdir()) / "boolnas-fidelity-quick"
    args.presets = list(PRESETS) if args.presets is None else args.presets
    args.n_sampled = 9 if args.n_sampled is None else args.n_sampled
    args.long_epochs = args.long_epochs or 2
    args.out = args.out or DEFAULT_OUT
    if args.jobs < 1 or args.threads < 1 or args.bootstrap < 0:
        ap.error("--jobs and --threads must be at least 1, --bootstrap at least 0")
    if len(args.presets) + args.n_sampled < 3:
        ap.error("at least 3 architectures are needed for rank statistics")
    return args


def _print_table(summary: Sequence[dict[str, Any]]) -> None:
    print(f"{'predictor':<16}{'target':<16}{'tau':>7}{'95% CI':>16}{'rho':>7}{'95% CI':>16}{'n':>4}")
    for s in summary:
        print(f"{s['predictor']:<16}{s['target']:<16}{s['kendall_tau']:>7.3f}"
              f"{s['tau_ci_low']:>8.2f}..{s['tau_ci_high']:<6.2f}{s['spearman_rho']:>7.3f}"
              f"{s['rho_ci_low']:>8.2f}..{s['rho_ci_high']:<6.2f}{s['n']:>4}")


def _ratio(jobs: Sequence[Job], cache: dict[str, dict[str, Any]], kind: str) -> float:
    images = [cache[j.cache_key]["result"]["images"] for j in jobs if j.kind == kind and j.cache_key in cache]
    return float(np.median(images)) if images else float("nan")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    proxy, data = (quick_setup() if args.quick
                   else (load_budget(CONF / "budget" / "proxy.yaml"), DataConfig.from_conf("fashion_mnist")))
    long = long_budget(proxy, load_budget(CONF / "budget" / "full.yaml"), args.long_epochs, args.long_batch_size,
                       args.long_lr)
    target_task = Task.from_dict(yaml.safe_load((CONF / "task" / "imagenet.yaml").read_text()))
    try:
        variants = {spec: parse_variant(spec, proxy) for spec in args.variant}
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    archs = architectures(args.presets, args.n_sampled, args.seed, args.space)
    jobs = make_jobs(archs, proxy, long, args.proxy_seeds, data, target_task, variants)
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / RUNS_FILE
    cache = read_cache(cache_path)
    unique = {j.cache_key for j in jobs}
    pending = list({j.cache_key: j for j in jobs if j.cache_key not in cache}.values())
    print(f"fidelity: {len(archs)} architectures, {len(unique)} measurements, {len(unique) - len(pending)} cached, "
          f"{len(pending)} {CACHED_MARKER} (cache {cache_path}; {args.jobs} job(s) x {args.threads} thread(s))",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    stats = run_jobs(pending, cache_path, cache, args.jobs, args.threads)
    print(f"fidelity: trained {stats.done} measurement(s) in {time.perf_counter() - started:.0f} s, "
          f"{len(stats.failed)} failed", file=sys.stderr, flush=True)

    rows = build_rows(archs, jobs, cache, args.proxy_seeds)
    summary = summarize(rows, args.proxy_seeds, args.seed, args.bootstrap)
    write_text_atomic(args.out / "fidelity.csv", to_csv(rows))
    write_text_atomic(args.out / "fidelity_summary.csv", to_csv(summary))
    main_stat = summary[0]
    ratio = _ratio(jobs, cache, "long") / _ratio(jobs, cache, "proxy")
    subtitle = (f"{'QUICK SMOKE RUN: ' if args.quick else ''}long run = {ratio:.1f}x the proxy's images "
                f"({long.epochs} epoch(s) at {long.resolution or 'native'} px, width x{long.width_mult})")
    plot(rows, main_stat, args.proxy_seeds, args.out / "fidelity.png", subtitle)

    if variants:
        cost = variant_summary(archs, jobs, cache, rows, args.proxy_seeds, args.seed, args.bootstrap)
        write_text_atomic(args.out / "fidelity_cost.csv", to_csv(cost))
        plot_cost(cost, args.out / "fidelity_cost.png", subtitle)

    _print_table(summary)
    if variants:
        print(f"{'proxy variant':<34}{'compute':>8}{'s/run':>7}{'tau':>7}{'95% CI':>16}{'seed tau':>9}")
        for v in cost:
            print(f"{v['variant']:<34}{v['compute']:>8.2f}{v['mean_time_s']:>7.1f}{v['kendall_tau']:>7.3f}"
                  f"{v['tau_ci_low']:>8.2f}..{v['tau_ci_high']:<6.2f}{v['seed_to_seed_tau']:>9.3f}")
    tau, lo, hi = main_stat["kendall_tau"], main_stat["tau_ci_low"], main_stat["tau_ci_high"]
    meets = bool(tau >= TAU_TARGET)
    print(f"compute: the long run sees {ratio:.1f}x the proxy's training images (same network per image)"
          + ("" if ratio >= 10 or args.quick else "  -- BELOW the intended 10x"))
    print(f"default proxy (mean of seeds {' '.join(map(str, args.proxy_seeds))}) vs long-training test accuracy: "
          f"Kendall tau = {tau:.3f} (95% bootstrap CI {lo:.3f} to {hi:.3f}, n = {main_stat['n']}): "
          f"{'MEETS' if meets else 'does NOT meet'} tau >= {TAU_TARGET}"
          + ("" if not meets or lo >= TAU_TARGET else f" (but the CI's lower end is below {TAU_TARGET})"))
    s2s = next((s for s in summary if s["target"] != TARGET), None)
    result = {
        "benchmark": "fidelity", "quick": args.quick, "n_archs": len(archs), "n_presets": len(args.presets),
        "measured": stats.done, "cached": len(unique) - len(pending), "failed": stats.failed,
        "compute_ratio": round(ratio, 2), "proxy_tau": tau, "proxy_tau_ci": [lo, hi],
        "proxy_rho": main_stat["spearman_rho"], "meets_tau_0_6": meets,
        "seed_to_seed_tau": s2s["kendall_tau"] if s2s else None,
        "taus": {s["predictor"]: s["kendall_tau"] for s in summary if s["target"] == TARGET},
        "variants": ({v["variant"]: {"compute": v["compute"], "tau": v["kendall_tau"]} for v in cost}
                     if variants else {}),
        "out": str(args.out),
    }
    print(json.dumps(_json_safe(result)))
    return result


def _json_safe(value: Any) -> Any:
    """NaN / inf as null: the summary line stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    outcome = main()
    sys.exit(1 if outcome["failed"] else 0)
