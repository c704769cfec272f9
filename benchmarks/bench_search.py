"""Overhead of the search machinery as a ratio to one proxy trial, measured in one run.

Machinery = what a worker adds around the evaluation: asking the sampler (TPE by default),
sampling the genotype, SQLite storage round-trips, user attrs, bookkeeping (front,
hypervolume, reuse cache). It is measured by running ``--n`` trials of the default config with
training replaced by a zero-cost stub and zero-cost proxies off, and subtracting the energy
model's own time (recorded per trial). The denominator is the real proxy training of one
preset (boolnet18_k4, conf/budget/proxy.yaml) on the configured data, timed in the same run.

    .venv/bin/python benchmarks/bench_search.py [--n 40] [--data fashion_mnist|synthetic]

The last line of stdout is one JSON object (for CI). Target: overhead < 5 % of a proxy trial.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from boolnas.evaluators.accuracy import train_genotype  # noqa: E402
from boolnas.evaluators.data import load_dataset  # noqa: E402
from boolnas.evaluators.training import TrainResult  # noqa: E402
from boolnas.search.conf_dir import CONF_DIR  # noqa: E402
from boolnas.search.config import SearchConfig  # noqa: E402
from boolnas.search.loop import run_search  # noqa: E402
from boolnas.space import get_preset  # noqa: E402

TARGET = 0.05


def stub_train(genotype, data, budget, seed=0, plan=None):  # noqa: ANN001, ANN201
    """No training: a fixed accuracy, so only the machinery is timed."""
    acc = 0.5 + 0.01 * genotype.slices[0]
    return None, TrainResult(acc, acc, None, 1, 1, 0.0, 0.0, False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="stubbed trials")
    parser.add_argument("--data", default="fashion_mnist", help="data of the proxy trial (conf/data/)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        raw = compose("search", overrides=[f"data={args.data}", f"results_dir={tmp}", "study=bench",
                                           f"n_trials={args.n}", "zero_cost=false", "progress=false"])
        cfg = SearchConfig.from_cfg(OmegaConf.to_container(raw, resolve=True))
        data = load_dataset(cfg.data)

        started = time.perf_counter()
        study = run_search(cfg, data=data, train_fn=stub_train, write=False)
        wall = time.perf_counter() - started
        trials = study.get_trials(deepcopy=False)
        energy = sum(t.user_attrs.get("energy_time_s", 0.0) for t in trials if "reused_from" not in t.user_attrs)
        overhead = (wall - energy) / len(trials)

        _, result = train_genotype(get_preset("boolnet18_k4"), data, cfg.budget, seed=0)
        proxy = result.time_s
    ratio = overhead / proxy
    print(f"search machinery: {overhead * 1e3:.1f} ms per trial over {len(trials)} trials "
          f"(sampler {cfg.sampler.name}, storage {cfg.storage.kind}; energy model excluded: {energy:.3f} s total)")
    print(f"proxy trial (boolnet18_k4, budget {cfg.budget.name}, {args.data}): {proxy:.2f} s")
    print(f"overhead / proxy trial: {ratio:.2%} (target < {TARGET:.0%}) {'OK' if ratio < TARGET else 'OVER TARGET'}")
    print(json.dumps({"overhead_ms_per_trial": overhead * 1e3, "proxy_trial_s": proxy, "ratio": ratio,
                      "n_trials": len(trials), "sampler": cfg.sampler.name, "storage": cfg.storage.kind,
                      "target": TARGET}))


if __name__ == "__main__":
    main()
