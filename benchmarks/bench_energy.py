"""Throughput of the energy objective: architectures scored per second on one core.

Random genotypes of the default search space (conf/space/boolnet.yaml) on the 224x224 target
task; "scored" = ``make_plan`` + ``estimate`` (what a search does per candidate). Plan and
estimate are also timed alone, so their ratio tells where the time goes on any machine.

    .venv/bin/python benchmarks/bench_energy.py [--n 2000] [--repeats 5]

The last line of stdout is one JSON object (for CI): archs_per_s, plan_us, estimate_us, ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)

from boolnas.evaluators.energy import estimate, load_profile  # noqa: E402
from boolnas.space import IMAGENET, make_plan  # noqa: E402
from boolnas.space.sampling import SearchSpace, sample  # noqa: E402

TARGET = 5000.0  # architectures per second (issue acceptance)


class RandomTrial:
    """Stands in for an Optuna trial: every suggest_categorical is a uniform draw."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self.rng.choice(choices)


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "not pinned"


def best_of(repeats: int, fn: Any) -> float:
    """Best CPU time of ``repeats`` runs (CPU time: robust to other jobs on a shared machine)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="random genotypes")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (best is kept)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    pinned = pin_to_one_core()
    space_cfg = yaml.safe_load((REPO / "conf" / "space" / "boolnet.yaml").read_text())
    space = SearchSpace.from_config(space_cfg)
    rng = random.Random(args.seed)
    genotypes = [sample(RandomTrial(rng), space) for _ in range(args.n)]
    profile = load_profile("boolnet65nm")
    task = IMAGENET
    plans = [make_plan(g, task) for g in genotypes]
    layers = sum(len(p) for p in plans) / len(plans)

    def plan_only() -> None:
        for g in genotypes:
            make_plan(g, task)

    def estimate_only() -> None:
        for p in plans:
            estimate(p, profile)

    def plan_and_estimate() -> None:
        for g in genotypes:
            estimate(make_plan(g, task), profile)

    # interleaved repeats, so a burst of load on a shared machine hits all three alike
    t_plan = t_est = t_both = float("inf")
    for _ in range(args.repeats):
        t_plan = min(t_plan, best_of(1, plan_only))
        t_est = min(t_est, best_of(1, estimate_only))
        t_both = min(t_both, best_of(1, plan_and_estimate))

    n = len(genotypes)
    result = {
        "bench": "energy",
        "n": n,
        "layers_per_plan": round(layers, 1),
        "archs_per_s": round(n / t_both, 1),
        "plan_us": round(t_plan / n * 1e6, 1),
        "estimate_us": round(t_est / n * 1e6, 1),
        "estimate_over_plan": round(t_est / t_plan, 3),
        "estimates_per_s": round(n / t_est, 1),
        "target_archs_per_s": TARGET,
        "meets_target": n / t_both >= TARGET,
        "python": sys.version.split()[0],
        "pinned": pinned,
    }
    print(
        f"random genotypes of conf/space/boolnet.yaml on 224x224, {n} archs, "
        f"{layers:.1f} layers each "
        f"(best CPU time of {args.repeats}, {pinned})"
    )
    print(f"  make_plan           {result['plan_us']:8.1f} us/arch")
    print(
        f"  estimate            {result['estimate_us']:8.1f} us/arch  "
        f"({result['estimates_per_s']:,.0f}/s)"
    )
    print(
        f"  plan + estimate     {t_both / n * 1e6:8.1f} us/arch  -> "
        f"{result['archs_per_s']:,.0f} archs/s "
        f"(target {TARGET:,.0f}: {'met' if result['meets_target'] else 'NOT met'})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
