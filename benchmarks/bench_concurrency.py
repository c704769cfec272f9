"""Concurrent trainings and the default search: thread budgets before and after (issue 13).

Two parts, every figure measured in this one run, side by side:

1. **Separately started trainings.** ``boolnas-train arch=bireal18 budget=proxy`` alone, then 2
   and 4 copies started at the same moment as separate commands, and 2 copies started
   ``--stagger`` s apart (the first already runs when the second looks at the machine). Each
   copy's wall time over the lone run's is the slowdown; the targets are <= 2.3x for two and
   <= 4.6x for four. **Before** is the old behaviour, reproduced with explicit settings: torch's
   default thread count (every CPU) in every process and libgomp's default spinning
   (``GOMP_SPINCOUNT=300000``); it collapses, so its runs use ``--before-images`` training images
   (default 2,048, a quarter of the proxy) to stay short, against a lone run of the same size.
2. **The default search** (conf/search.yaml, ``--search-trials`` trials on Fashion-MNIST): before =
   one worker on every CPU with default spinning; after = ``workers=auto`` (what ``make search``
   runs). Wall time, trials per hour and the summed training time of the trials. With
   ``--search-mode fixed`` (default) both searches train the same candidates: the seven presets
   and genotypes drawn from the default space with a seeded chooser, all enqueued
   (``seed_presets=[...]``), so only the parallelism differs. With ``--search-mode tpe`` they run
   the default TPE, whose candidates differ between one worker and two (parallel workers draw from
   their own seeds; an 8-slice candidate trains 3-4x longer than a 1-slice one): the wall times then
   mix the configuration's effect with the luck of the draw.

    .venv/bin/python benchmarks/bench_concurrency.py                 # about 25 min on 2 cores
    .venv/bin/python benchmarks/bench_concurrency.py --skip-search   # part 1 only, about 5 min
    .venv/bin/python benchmarks/bench_concurrency.py --skip-trainings --before-rev f4a0953^
        # part 2 against the old code itself (the commit before the thread budgets), not a reproduction

Run it on an otherwise idle machine. The last line of stdout is one JSON object.
``--quick`` (synthetic data, the tiny budget, 2 search trials) is the smoke run of the tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)
from _revision import add_worktree, command, remove_worktree  # noqa: E402

from boolnas.evaluators.cpus import usable_cpus  # noqa: E402

BIN = Path(sys.executable).parent
OLD_SPIN = {"GOMP_SPINCOUNT": "300000"}  # libgomp's default: what every process did before
TARGETS = {2: 2.3, 4: 4.6}


def train_cmd(args: argparse.Namespace, images: int | None = None, threads: int | None = None) -> list[str]:
    cmd = [str(BIN / "boolnas-train"), f"arch={args.arch}", "format=json", "progress=false"]
    cmd += ["data=synthetic", "budget=tiny"] if args.quick else ["budget=proxy"]
    if images:
        cmd.append(f"budget.train_subset={images}")
    if threads:
        cmd.append(f"budget.num_threads={threads}")
    return cmd


def run_together(cmd: list[str], copies: int, env: dict[str, str], registry: Path, stagger: float = 0.0) -> list[float]:
    """Start ``copies`` of ``cmd`` (``stagger`` s apart) and return each one's wall time."""
    env = {**env, "BOOLNAS_TRAINER_REGISTRY": str(registry)}
    procs, starts = [], []
    for i in range(copies):
        if i and stagger:
            time.sleep(stagger)
        starts.append(time.perf_counter())
        procs.append(subprocess.Popen(cmd, cwd=tempfile.gettempdir(), env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    times = []
    for p, t0 in zip(procs, starts, strict=True):
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
        times.append(time.perf_counter() - t0)
    return times


def part_trainings(args: argparse.Namespace, registry: Path) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    before_env = {**base, **OLD_SPIN}
    cpus = usable_cpus()
    after_cmd = train_cmd(args)
    before_cmd = train_cmd(args, images=None if args.quick else args.before_images, threads=cpus)
    lone_small = train_cmd(args, images=None if args.quick else args.before_images)
    out: dict[str, Any] = {"cpus": cpus, "arch": args.arch}
    log(f"after: {' '.join(after_cmd[1:])}")
    alone = run_together(after_cmd, 1, base, registry)[0]
    out["after"] = {"alone_s": alone}
    for n in (2, 4):
        t = run_together(after_cmd, n, base, registry)
        out["after"][f"x{n}_s"] = t
        out["after"][f"x{n}_slowdown"] = max(t) / alone
        log(f"after: {n} at once: {', '.join(f'{v:.1f}' for v in t)} s vs {alone:.1f} s alone -> "
            f"{max(t) / alone:.2f}x (target <= {TARGETS[n]}x)")
    t = run_together(after_cmd, 2, base, registry, stagger=args.stagger)
    out["after"]["x2_staggered_s"] = t
    out["after"]["x2_staggered_slowdown"] = max(t) / alone
    log(f"after: 2, {args.stagger:.0f} s apart: {', '.join(f'{v:.1f}' for v in t)} s -> {max(t) / alone:.2f}x")
    log(f"before ({cpus} threads each, default spinning): {' '.join(before_cmd[1:])}")
    small_alone = run_together(lone_small, 1, base, registry)[0]
    before_alone = run_together(before_cmd, 1, before_env, registry)[0]
    t = run_together(before_cmd, 2, before_env, registry)
    out["before"] = {"images": None if args.quick else args.before_images, "alone_s": before_alone,
                     "after_alone_s": small_alone, "x2_s": t, "x2_slowdown": max(t) / before_alone}
    log(f"before: alone {before_alone:.1f} s (after: {small_alone:.1f} s); 2 at once: "
        f"{', '.join(f'{v:.1f}' for v in t)} s -> {max(t) / before_alone:.2f}x")
    out["meets"] = all(out["after"][f"x{n}_slowdown"] <= TARGETS[n] for n in TARGETS)
    return out


def part_search(args: argparse.Namespace, registry: Path) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    base["BOOLNAS_TRAINER_REGISTRY"] = str(registry)
    cpus = usable_cpus()
    archs = Path(tempfile.mkdtemp(prefix="bench-concurrency-archs-"))
    seeds = fixed_candidates(args.search_trials, archs) if args.search_mode == "fixed" else []
    out: dict[str, Any] = {"trials": args.search_trials}
    old_tree = None
    if args.before_rev:  # the old code itself, with its own defaults (one worker on every CPU)
        old_tree = add_worktree(args.before_rev, Path(tempfile.mkdtemp(prefix="bench-concurrency-old-")) / "tree")
        out["before_rev"] = subprocess.run(["git", "-C", str(old_tree), "rev-parse", "HEAD"], capture_output=True,
                                           text=True, check=True).stdout.strip()
        runs = {"before": ([], base), "after": (["workers=auto"], base)}
    else:  # the old behaviour reproduced with this code's settings
        runs = {"before": ([f"budget.num_threads={cpus}", "workers=1"], {**base, **OLD_SPIN}),
                "after": (["workers=auto"], base)}
    try:
        for name, (extra, env) in runs.items():
            _time_search(args, name, extra, env, seeds, old_tree if name == "before" else None, out)
    finally:
        shutil.rmtree(archs, ignore_errors=True)
        if old_tree is not None:
            remove_worktree(old_tree)
            shutil.rmtree(old_tree.parent, ignore_errors=True)
    out["mode"] = args.search_mode
    out["same_candidates"] = out["after"].pop("keys") == out["before"].pop("keys")
    out["wall_ratio"] = out["after"]["wall_s"] / out["before"]["wall_s"]
    out["meets"] = out["wall_ratio"] <= 0.75
    return out


def _time_search(args: argparse.Namespace, name: str, extra: list[str], env: dict[str, str], seeds: list[str],
                 tree: Path | None, out: dict[str, Any]) -> None:
    """One default search, timed; ``tree``: run that checkout's code instead of this one's."""
    results = Path(tempfile.mkdtemp(prefix=f"bench-concurrency-{name}-"))
    search_args = ["study=bench", f"results_dir={results}", f"n_trials={args.search_trials}", "progress=false",
                   *extra]
    if seeds:
        search_args.append(f"seed_presets=[{','.join(seeds)}]")
    if args.quick:
        search_args += ["data=synthetic", "budget=tiny"]
    if tree is None:
        cmd = [str(BIN / "boolnas-search"), *search_args]
    else:
        cmd = command(tree, "boolnas-search", search_args)
    log(f"search {name} ({'this checkout' if tree is None else f'the code of {tree}'}): boolnas-search "
        f"{' '.join(search_args)}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"search {name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    with (results / "bench" / "trials.csv").open() as fh:
        trials = [r for r in csv.DictReader(fh) if r["state"] == "COMPLETE"]
    shutil.rmtree(results, ignore_errors=True)
    train_s = sum(float(r["train_time_s"] or 0) for r in trials)
    out[name] = {"wall_s": wall, "trials_per_hour": args.search_trials * 3600 / wall, "train_s_sum": train_s,
                 "keys": sorted(r["key"] for r in trials)}
    log(f"search {name}: {args.search_trials} trials in {wall:.0f} s ({out[name]['trials_per_hour']:.0f} per "
        f"hour; {train_s:.0f} s of training summed over the trials)")


def fixed_candidates(n: int, folder: Path) -> list[str]:
    """The seven presets, then genotypes of the default space drawn with a seeded chooser (as the
    fidelity benchmark draws them), written as arch YAMLs: ``n`` candidates in all."""
    import yaml
    from fidelity import sampled_genotypes

    from boolnas.space import PRESETS, get_preset
    from boolnas.space.sampling import SearchSpace

    space = SearchSpace.from_config(yaml.safe_load((REPO / "conf" / "space" / "boolnet.yaml").read_text()))
    names = list(PRESETS)[:n]
    for i, g in enumerate(sampled_genotypes(space, max(0, n - len(names)), 0,
                                            exclude=[get_preset(p).key() for p in PRESETS])):
        path = folder / f"candidate{i:02d}.yaml"
        path.write_text(yaml.safe_dump(g.to_dict()))
        names.append(str(path))
    return names


def log(message: str) -> None:
    print(f"[bench_concurrency] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="bireal18")
    ap.add_argument("--before-images", type=int, default=2048, help="training images of the 'before' runs")
    ap.add_argument("--stagger", type=float, default=5.0, help="seconds between the staggered starts")
    ap.add_argument("--search-trials", type=int, default=30, help="trials of each default search")
    ap.add_argument("--skip-search", action="store_true", help="part 1 only")
    ap.add_argument("--skip-trainings", action="store_true", help="part 2 only")
    ap.add_argument("--search-mode", choices=["fixed", "tpe"], default="fixed",
                    help="fixed: both searches train the same enqueued candidates; tpe: the default TPE draws")
    ap.add_argument("--before-rev", help="git revision whose own default search is 'before' (e.g. f4a0953^, the "
                    "code before the thread budgets); default: the old behaviour reproduced with this code")
    ap.add_argument("--quick", action="store_true", help="smoke run: synthetic data, tiny budget, 2 search trials")
    args = ap.parse_args(argv)
    if args.quick:
        args.search_trials, args.stagger = min(args.search_trials, 2), min(args.stagger, 1.0)
    if args.before_images < 32 or args.search_trials < 1 or args.stagger < 0:
        ap.error("--before-images >= 32, --search-trials >= 1 and --stagger >= 0 are required")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    registry = Path(tempfile.mkdtemp(prefix="bench-concurrency-registry-"))
    try:
        result: dict[str, Any] = {"bench": "concurrency", "quick": args.quick}
        if not args.skip_trainings:
            result["trainings"] = part_trainings(args, registry)
        if not args.skip_search:
            result["search"] = part_search(args, registry)
    finally:
        shutil.rmtree(registry, ignore_errors=True)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
