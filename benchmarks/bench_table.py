"""boolnas-bench: every genotype of a finite BNN subspace, measured at several training fidelities.

Issue 14. The subspace is conf/space/bench.yaml (108 genotypes: shortcut design x slices x
downsampling x feature reuse x stem; one block per stage, width x1.0). For each genotype, and for
the seven literature presets as reference points outside the subspace, the campaign measures on
Fashion-MNIST (validation split, 2,000 images scored):

- **three training fidelities** of the search's proxy budget (conf/budget/proxy.yaml, batch 32,
  one epoch over a fresh random subset): 2,048 images (64 steps, 1/4 of the proxy), 8,192 (256
  steps, the proxy itself, seeds 0 and 1) and 32,768 (1,024 steps, 4x the proxy: the reference);
  each with its wall time and the mean training loss over the run (x steps = the sum of training
  losses, "SoTL", a cheap predictor the literature reports to rank well);
- **static predictors**: the zero-cost scores (NASWOT, grad-norm, SNIP on one seeded batch of 64
  images), parameters and OPs on the proxy and on the ImageNet target task;
- **exact energy** of the ImageNet plan on both shipped hardware profiles (boolnet65nm,
  horowitz45nm: total and compute / SRAM / DRAM, cycles), computed when the table is written, so
  a change of the energy model needs no new training, only a rerun with ``--table-only``.

Measurements run in worker processes (``--jobs``, ``--threads`` torch threads each; the thread
count changes float summation order, so it is recorded and must stay fixed within one table) and
append to the resumable cache ``<out>/runs.jsonl`` (the fidelity benchmark's cache format: one
JSON line per finished measurement, keyed by genotype, kind, seed and budget hash); a rerun after
a kill skips what is there. Then ``<out>/table.csv`` (one row per genotype) and
``<out>/meta.json`` (command, thread count, torch version, counts) are written.

The committed table was made with (niced, in the background, on the shared 2-core machine)::

    nice -n 19 .venv/bin/python benchmarks/bench_table.py --jobs 2 --threads 1

``--quick`` is a smoke run (synthetic data, 2-step budgets, 4 genotypes, a temp folder) for the
tests. ``--table-only`` rebuilds the table from the cache without training (rows whose
measurements are missing get empty cells).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity as fid  # noqa: E402  (the fidelity benchmark's jobs, cache and worker pool)

from boolnas.evaluators.data import DataConfig  # noqa: E402
from boolnas.evaluators.energy import estimate, load_profile  # noqa: E402
from boolnas.evaluators.training import Budget  # noqa: E402
from boolnas.space import PRESETS, Genotype, Task, get_preset, make_plan  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402
from boolnas.space.sampling import SearchSpace, enumerate_space  # noqa: E402

log = logging.getLogger("bench_table")

REPO = fid.REPO
CONF = fid.CONF
DEFAULT_OUT = REPO / "benchmarks" / "results" / "bench"
SPACE = CONF / "space" / "bench.yaml"
RUNS_FILE = "runs.jsonl"
TABLE_FILE = "table.csv"
META_FILE = "meta.json"
FIDELITY_FILE = "fidelity.csv"  # every predictor against the reference fidelity
PROFILES = ("boolnet65nm", "horowitz45nm")
GENOTYPE_COLUMNS = ("shortcut", "placement", "slices", "downsample", "feature_reuse", "stem", "blocks",
                    "width_mult")


@dataclass(frozen=True)
class Fidelity:
    """One training fidelity: the proxy budget over ``factor`` times its images."""

    name: str  # column prefix, e.g. "f1"
    factor: float
    seeds: tuple[int, ...]

    def budget(self, proxy: Budget) -> Budget:
        return replace(proxy, train_subset=max(proxy.batch_size, round(proxy.train_subset * self.factor)))

    def kind(self, proxy: Budget) -> str:
        """Job kind: the default proxy is 'proxy' (so its cache lines match the fidelity
        benchmark's), the others a proxy variant 'proxy:train_subset=N'."""
        if self.factor == 1:
            return "proxy"
        return f"{fid.VARIANT_KIND}train_subset={self.budget(proxy).train_subset}"


FIDELITIES = (Fidelity("f0.25", 0.25, (0,)), Fidelity("f1", 1.0, (0, 1)), Fidelity("f4", 4.0, (0,)))
TOP = FIDELITIES[-1]  # the reference


def bench_archs(space_path: Path, presets: Sequence[str], limit: int | None = None) -> list[fid.Arch]:
    """The subspace's genotypes (named by key, in enumeration order), then the presets."""
    space = SearchSpace.from_config(yaml.safe_load(space_path.read_text()))
    genotypes = enumerate_space(space)[:limit]
    return [fid.Arch(g.key(), g, False) for g in genotypes] + [fid.Arch(p, get_preset(p), True) for p in presets]


def make_jobs(archs: Sequence[fid.Arch], proxy: Budget, data: DataConfig, target: Task) -> list[fid.Job]:
    jobs = []
    for a in archs:
        per_image = fid.cpu_cost(a.genotype, proxy)
        base = {"arch": a.name, "genotype": a.genotype.to_dict(), "arch_key": a.key, "data": data,
                "target_task": target}
        jobs.append(fid.Job(**base, kind="static", seed=0, budget=proxy))
        for f in FIDELITIES:
            budget = f.budget(proxy)
            jobs += [fid.Job(**base, kind=f.kind(proxy), seed=s, budget=budget,
                             cost=per_image * fid._images(budget)) for s in f.seeds]
    return jobs


# --------------------------------------------------------------------------- table
def energy_columns(genotype: Genotype, target: Task) -> dict[str, float]:
    plan = make_plan(genotype, target)
    out: dict[str, float] = {}
    for name in PROFILES:
        r = estimate(plan, load_profile(name))
        tag = "" if name == PROFILES[0] else f"_{name}"
        out[f"energy_uJ{tag}"] = r.total_uJ
        if not tag:
            out.update(energy_compute_uJ=r.compute_uJ, energy_sram_uJ=r.sram_uJ, energy_dram_uJ=r.dram_uJ,
                       latency_cycles=r.cycles)
    return out


def build_rows(archs: Sequence[fid.Arch], jobs: Sequence[fid.Job], cache: dict[str, dict[str, Any]],
               proxy: Budget, target: Task) -> list[dict[str, Any]]:
    results = {(j.arch_key, j.kind, j.seed): (cache.get(j.cache_key) or {}).get("result", {}) for j in jobs}
    rows = []
    for a in archs:
        g = a.genotype.to_dict()
        row: dict[str, Any] = {"name": a.name, "key": a.key, "is_preset": a.is_preset}
        row.update({c: g[c] if not isinstance(g[c], list) else json.dumps(g[c]) for c in GENOTYPE_COLUMNS})
        for f in FIDELITIES:
            kind = f.kind(proxy)
            accs = []
            for s in f.seeds:
                r = results[(a.key, kind, s)]
                acc = fid._nan(r.get("val_acc"))
                accs.append(acc)
                row[f"acc_{f.name}_s{s}"] = acc
                row[f"loss_sum_{f.name}_s{s}"] = _loss_sum(r)
                row[f"time_s_{f.name}_s{s}"] = fid._nan(r.get("time_s"))
                row[f"steps_{f.name}_s{s}"] = r.get("steps")
            if len(accs) > 1:
                row[f"acc_{f.name}_mean"] = sum(accs) / len(accs)
        static = results[(a.key, "static", 0)]
        row.update({m: fid._nan(static.get(m)) for m in fid.ZC_METRICS})
        row.update({m: fid._nan(static.get(m)) for m in ("params", "ops_proxy", "params_target", "ops_target")})
        row.update(energy_columns(a.genotype, target))
        row["genotype"] = json.dumps(g, sort_keys=True, separators=(",", ":"))
        rows.append(row)
    return rows


def _loss_sum(result: dict[str, Any]) -> float:
    """Sum of the training losses over the run (mean loss x steps); NaN when not measured."""
    mean, steps = result.get("train_loss_mean"), result.get("steps")
    return float("nan") if mean is None or not steps else float(mean) * int(steps)


def complete(row: dict[str, Any]) -> bool:
    return all(not math.isnan(row[f"acc_{f.name}_s{s}"]) for f in FIDELITIES for s in f.seeds)


# --------------------------------------------------------------------------- fidelity on the table
def _ranks(values: Sequence[float]) -> list[float]:
    from scipy.stats import rankdata

    return [float(v) for v in rankdata(values)]


def predictor_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Every cheap or trained predictor of the reference accuracy, oriented so that higher
    predicts more accurate (training-loss sums and counts as measured: their sign is the finding),
    plus rank-average blends of a trained fidelity with the best-ranking cheap predictor (OPs)."""
    col = {k: [float(r[k]) for r in rows] for k in rows[0] if k.startswith(("acc_", "loss_sum_", "zc_"))
           or k in ("params", "ops_proxy", "ops_target")}
    out = {k: v for k, v in col.items() if not k.startswith(f"acc_{TOP.name}")}
    out["neg_loss_sum_f0.25_s0"] = [-v for v in col["loss_sum_f0.25_s0"]]
    out["neg_loss_sum_f1_s0"] = [-v for v in col["loss_sum_f1_s0"]]
    for a, b in (("acc_f0.25_s0", "ops_proxy"), ("acc_f1_s0", "ops_proxy"), ("acc_f1_mean", "ops_proxy"),
                 ("neg_loss_sum_f0.25_s0", "ops_proxy"), ("zc_naswot", "ops_proxy")):
        ra, rb = _ranks(out[a]), _ranks(out[b])
        out[f"blend({a},{b})"] = [(x + y) / 2 for x, y in zip(ra, rb, strict=True)]
    return {k: v for k, v in out.items() if not k.startswith("loss_sum_")}


def fidelity_rows(rows: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Kendall tau / Spearman rho (95 % bootstrap CIs) of every predictor against the reference
    fidelity, over the subspace's fully measured genotypes; last, the proxy's seed-to-seed tau."""
    sub = [r for r in rows if not r["is_preset"] and complete(r)]
    if len(sub) < 3:
        return []
    target = [r[f"acc_{TOP.name}_s0"] for r in sub]
    out = [{"predictor": name, "target": f"acc_{TOP.name}_s0", **fid.rank_agreement(values, target, seed=seed)}
           for name, values in predictor_columns(sub).items()]
    out.sort(key=lambda s: -s["kendall_tau"] if not math.isnan(s["kendall_tau"]) else 2)
    out.append({"predictor": "acc_f1_s0", "target": "acc_f1_s1",
                **fid.rank_agreement([r["acc_f1_s0"] for r in sub], [r["acc_f1_s1"] for r in sub], seed=seed)})
    return out


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", type=Path, default=SPACE, help="a finite space config (per_stage: false)")
    ap.add_argument("--presets", nargs="*", default=list(PRESETS), choices=PRESETS,
                    help="reference points measured beside the subspace (default: all seven)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N genotypes of the subspace")
    ap.add_argument("--jobs", type=int, default=1, help="measurements in parallel (spawned worker processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per measurement")
    ap.add_argument("--out", type=Path, default=None, help=f"default: {DEFAULT_OUT}")
    ap.add_argument("--table-only", action="store_true", help="write the table from the cache, train nothing")
    ap.add_argument("--quick", action="store_true", help="smoke run: synthetic data, tiny budgets, 4 genotypes")
    args = ap.parse_args(argv)
    if args.quick:
        args.limit = args.limit or 3
        args.presets = args.presets if args.presets != list(PRESETS) else ["basenet18_k1"]
        args.out = args.out or Path(tempfile.gettempdir()) / "boolnas-bench-quick"
    args.out = args.out or DEFAULT_OUT
    if args.jobs < 1 or args.threads < 1 or (args.limit is not None and args.limit < 1):
        ap.error("--jobs, --threads and --limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.quick:
        proxy, data = fid.quick_setup()
    else:
        proxy, data = fid.load_budget(CONF / "budget" / "proxy.yaml"), DataConfig.from_conf("fashion_mnist")
    target = Task.from_dict(yaml.safe_load((CONF / "task" / "imagenet.yaml").read_text()))
    try:
        archs = bench_archs(args.space, args.presets, args.limit)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"error: --space {args.space}: {exc}", file=sys.stderr)
        sys.exit(2)
    jobs = make_jobs(archs, proxy, data, target)
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / RUNS_FILE
    cache = fid.read_cache(cache_path)
    pending = [] if args.table_only else list({j.cache_key: j for j in jobs if j.cache_key not in cache}.values())
    n_unique = len({j.cache_key for j in jobs})
    print(f"bench: {len(archs)} architectures, {n_unique} measurements, {n_unique - len(pending)} cached or skipped, "
          f"{len(pending)} {fid.CACHED_MARKER} (cache {cache_path}; {args.jobs} job(s) x {args.threads} thread(s))",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    stats = fid.run_jobs(pending, cache_path, cache, args.jobs, args.threads)
    print(f"bench: trained {stats.done} measurement(s) in {time.perf_counter() - started:.0f} s, "
          f"{len(stats.failed)} failed", file=sys.stderr, flush=True)

    rows = build_rows(archs, jobs, cache, proxy, target)
    write_text_atomic(args.out / TABLE_FILE, fid.to_csv(rows))
    ranking = fidelity_rows(rows)
    if ranking:
        write_text_atomic(args.out / FIDELITY_FILE, fid.to_csv(ranking))
        print(f"{'predictor (vs ' + ranking[0]['target'] + ')':<44}{'tau':>7}{'95% CI':>16}{'rho':>7}{'n':>5}")
        for s in ranking:
            print(f"{s['predictor'] + ('' if s['target'] == ranking[0]['target'] else ' vs ' + s['target']):<44}"
                  f"{s['kendall_tau']:>7.3f}{s['tau_ci_low']:>8.2f}..{s['tau_ci_high']:<6.2f}"
                  f"{s['spearman_rho']:>7.3f}{s['n']:>5}")
    import torch

    n_complete = sum(complete(r) for r in rows if not r["is_preset"])
    meta = {
        "benchmark": "bench_table", "quick": args.quick, "space": str(args.space.relative_to(REPO))
        if args.space.is_relative_to(REPO) else str(args.space),
        "command": "nice -n 19 .venv/bin/python benchmarks/bench_table.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])),
        "threads": args.threads, "torch": torch.__version__, "genotypes": len(archs) - len(args.presets),
        "complete_genotypes": n_complete, "presets": list(args.presets),
        "fidelities": {f.name: {"train_images": f.budget(proxy).train_subset, "seeds": list(f.seeds)}
                       for f in FIDELITIES},
        "reference_fidelity": TOP.name, "failed": stats.failed,
    }
    write_text_atomic(args.out / META_FILE, json.dumps(meta, indent=2) + "\n")
    print(f"bench: {n_complete} of {meta['genotypes']} genotypes measured at every fidelity; "
          f"wrote {args.out / TABLE_FILE}", file=sys.stderr)
    print(json.dumps(fid._json_safe(meta)))
    return meta


if __name__ == "__main__":
    outcome = main()
    sys.exit(1 if outcome["failed"] else 0)
