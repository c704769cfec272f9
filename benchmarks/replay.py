"""Replay search strategies against the boolnas-bench table: seconds instead of hours, many seeds.

Issue 14, item 3. Each replay is the real search loop (``search.loop.run_search``, the same
sampler, energy model, genotype reuse and study bookkeeping as ``boolnas-search``) on the bench
subspace (``space=bench``), with two things swapped: the training is a lookup of the table
(``--fidelity``: what the search sees; default the proxy's own fidelity, seed 0) and the study
lives in memory (``storage=memory``; nothing is written). No training, no disk.

Scoring, for every sampler and seed, after every evaluation:

- **hypervolume regret** = HV of the table's exact Pareto front minus HV of what the search
  reports: its front by the accuracies it saw, each member scored by its **reference** accuracy
  (the top fidelity of the table, 4x the proxy's images) and its energy (boolnet65nm). HV as
  the search computes it (search/pareto.py): accuracy in [0, 1] x energy in [0, ref], ref =
  1.1 x the table's largest energy, as a fraction of that box.
- **training compute**: the steps of every new training (a genotype seen before is reused,
  free, as in the real search); regret is also reported at compute budgets.

Summary: per sampler, median and interquartile range of the regret at the evaluation and compute
budgets, and a one-sided Wilcoxon rank-sum test (Mann-Whitney U) of each sampler's final regret
against random search's. Outputs in ``--out`` (default benchmarks/results/bench/): ``replay.json``
(summary), ``replay.csv`` (median / IQR curves) and ``replay.png`` (regret vs evaluations and vs
training steps).

    .venv/bin/python benchmarks/replay.py                                  # tpe nsga2 nsga3 random x 20 seeds
    .venv/bin/python benchmarks/replay.py --samplers gp --evals 60        # gp is slow by itself
    .venv/bin/python benchmarks/replay.py --samplers random tpe --asha random tpe --tag _asha   # multi-fidelity
    .venv/bin/python benchmarks/replay.py --samplers random tpe --ehvi random tpe --asha-ehvi tpe --tag _mf
    .venv/bin/python benchmarks/replay.py --samplers random tpe --asha random tpe \
        --set "scheduler.rungs=[0.25,1]" scheduler.rank_by=loss_sum --tag _mf_r2_loss   # promote by loss sum

With ``--asha``, those samplers are replayed with ``scheduler=asha`` too (the real promotion of
search/rungs.py; its rungs read the table's f0.25 / f1 / f4, so each costs that fidelity's steps).
Evaluations are then trials (a promotion is one) and compare across strategies only through
compute: ``compute_to_random_final`` gives the training steps each strategy needs to reach random
search's final regret, against random's own compute (the multi-fidelity issue's target: half).

It reads only ``table.csv`` (a small table made by the tests works too: ``--table``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)
from _plots import pyplot, save_png, shown_path  # noqa: E402

from boolnas.evaluators.training import TrainResult  # noqa: E402
from boolnas.search.pareto import front, hypervolume  # noqa: E402
from boolnas.space import Genotype  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402
from boolnas.space.sampling import enumerate_space  # noqa: E402

DEFAULT_TABLE = REPO / "benchmarks" / "results" / "bench" / "table.csv"
SPACE = REPO / "conf" / "space" / "bench.yaml"  # the space the replays search (space=bench)
DEFAULT_SAMPLERS = ("tpe", "nsga2", "nsga3", "random")
EVAL_MARKS = (10, 20, 30, 50, 75, 100, 150)
TOP = "f4"  # the reference fidelity (benchmarks/bench_table.py)


# --------------------------------------------------------------------------- the table
FIDELITIES = ("f0.25", "f1", "f4")  # training images x the proxy's (benchmarks/bench_table.py)
RUNG_FIDELITY = {0.25: "f0.25", 1.0: "f1", 4.0: "f4"}  # scheduler=asha's default rungs -> table columns
PROXY_IMAGES = 8192  # conf/budget/proxy.yaml train_subset: the table's f1


@dataclass(frozen=True)
class Entry:
    key: str
    observed: float  # what the search sees
    truth: float  # the reference (top fidelity)
    energy: float
    steps: int  # training steps of one evaluation at the observed fidelity
    ladder: tuple[tuple[str, float, int], ...] = ()  # (fidelity, accuracy, steps) of every measured fidelity
    losses: tuple[tuple[str, float], ...] = ()  # (fidelity, training-loss sum) where the table has one

    def at(self, fidelity: str) -> tuple[float, int]:
        """(accuracy, training steps) at ``fidelity``."""
        for fid, acc, steps in self.ladder:
            if fid == fidelity:
                return acc, steps
        raise KeyError(f"genotype {self.key} has no {fidelity} measurement in the table")

    def loss_sum(self, fidelity: str) -> float | None:
        return dict(self.losses).get(fidelity)


def load_table(path: Path, fidelity: str) -> dict[str, Entry]:
    """Rows of the subspace (presets left out) with every value the replay needs, by genotype key."""
    if not path.is_file():
        raise FileNotFoundError(f"no table at {path}: run benchmarks/bench_table.py first (or give --table)")
    out: dict[str, Entry] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            if row["is_preset"] == "True":
                continue
            try:
                observed = float(row[f"acc_{fidelity}_s0"])
                truth, energy = float(row[f"acc_{TOP}_s0"]), float(row["energy_uJ"])
                steps = int(float(row[f"steps_{fidelity}_s0"]))
            except KeyError as exc:
                raise ValueError(f"{path}: no column {exc} (fidelities: f0.25, f1, f4)") from None
            except ValueError:
                continue  # not measured (yet): left out, and reported
            key = Genotype.from_dict(json.loads(row["genotype"])).key()
            ladder = tuple((f, float(row[f"acc_{f}_s0"]), int(float(row[f"steps_{f}_s0"]))) for f in FIDELITIES
                           if row.get(f"acc_{f}_s0") not in (None, "") and row.get(f"steps_{f}_s0") not in (None, ""))
            losses = tuple((f, float(row[f"loss_sum_{f}_s0"])) for f in FIDELITIES
                           if row.get(f"loss_sum_{f}_s0") not in (None, ""))
            out[key] = Entry(key, observed, truth, energy, steps, ladder, losses)
    if len(out) < 3:
        raise ValueError(f"{path}: fewer than 3 fully measured genotypes at {fidelity} and {TOP}")
    return out


class TableLookup:
    """Stands in for ``train_genotype``: the table's accuracy of the genotype, no training. With
    ``by_budget`` (scheduler=asha) the fidelity follows the budget's training images (a rung's
    2,048 / 8,192 / 32,768 are the table's f0.25 / f1 / f4); else it is the one the table was loaded at."""

    def __init__(self, table: dict[str, Entry], fidelity: str, by_budget: bool = False) -> None:
        self.table = table
        self.fidelity = fidelity
        self.by_budget = by_budget

    def __call__(self, genotype: Genotype, data: Any, budget: Any, seed: int = 0,
                 plan: Any = None) -> tuple[None, TrainResult]:
        entry = self.table.get(genotype.key())
        if entry is None:
            raise KeyError(f"genotype {genotype.key()} is not in the table (is the table complete?)")
        acc, steps, fidelity = entry.observed, entry.steps, None
        if self.by_budget:
            fidelity = fidelity_of(budget.train_subset)
            acc, steps = entry.at(fidelity)
        loss = entry.loss_sum(fidelity or self.fidelity)
        # one epoch's record, as the training loop keeps it: its mean loss and its last step
        history = [{"epoch": 1, "step": steps, "loss": loss / steps}] if loss is not None else []
        return None, TrainResult(accuracy=acc, val_accuracy=acc, test_accuracy=None, epochs=1, steps=steps,
                                 time_s=0.0, images_per_s=0.0, diverged=False, history=history)


def fidelity_of(train_images: int) -> str:
    ratio = train_images / PROXY_IMAGES
    if ratio not in RUNG_FIDELITY:
        raise KeyError(f"{train_images} training images is no fidelity of the table ({sorted(RUNG_FIDELITY)} x "
                       f"{PROXY_IMAGES})")
    return RUNG_FIDELITY[ratio]


def hv_of(points: Sequence[tuple[float, float]], ref: float) -> float:
    return hypervolume(list(points), ref)


# --------------------------------------------------------------------------- one replay
def replay_one(table_path: str, fidelity: str, sampler: str, seed: int, evals: int,
               scheduler: str = "none", proposer: str = "none", extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One search of ``evals`` evaluations (trials: with scheduler=asha a promotion is one); its
    regret and compute after every evaluation. With asha the search reports each candidate at its
    highest rung so far, as boolnas-search's results do. ``extra``: more Hydra overrides of the
    search config (``--set``), applied where they concern the strategy (scheduler.* with asha,
    proposer.* with ehvi, sampler.* always)."""
    logging.disable(logging.WARNING)  # the loop logs every trial; a replay wants none of it
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from boolnas.search.conf_dir import CONF_DIR
    from boolnas.search.config import SearchConfig
    from boolnas.search.loop import run_search

    which = (table_path, fidelity)
    table = _TABLES.get(which) or _TABLES.setdefault(which, load_table(Path(table_path), fidelity))
    asha = scheduler == "asha"
    extra = tuple(o for o in extra if (not o.startswith("scheduler.") or asha)
                  and (not o.startswith("proposer.") or proposer != "none"))
    strategy = (sampler, scheduler, proposer, extra)
    if strategy not in _CONFIGS:  # composing costs ~1 s: once per strategy and process
        overrides = ["space=bench", f"sampler={sampler}", f"scheduler={scheduler}", f"proposer={proposer}",
                     "storage=memory", "zero_cost=false", "seed_presets=false", "progress=false", "data=synthetic",
                     "study=replay", *extra]
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            _CONFIGS[strategy] = SearchConfig.from_cfg(
                OmegaConf.to_container(compose("search", overrides=overrides), resolve=True))
    cfg = replace(_CONFIGS[strategy], seed=seed, n_trials=evals)
    started = time.perf_counter()
    study = run_search(cfg, data=_NO_DATA, train_fn=TableLookup(table, fidelity, by_budget=asha), write=False)
    seconds = time.perf_counter() - started
    ref = reference_energy(table)
    best = exact_hv(table, ref)
    current: dict[str, tuple[int, float]] = {}  # candidate -> (rung, accuracy the search saw)
    regret, steps, total = [], [], 0
    trials = study.get_trials(deepcopy=False)
    for t in sorted(trials, key=lambda t: t.number):
        if t.state.name != "COMPLETE":
            continue
        key = t.user_attrs.get("candidate") or t.user_attrs["key"]
        entry, rung = table[key], int(t.user_attrs.get("rung", 0))
        observed, cost = entry.at(RUNG_FIDELITY[cfg.scheduler.rungs[rung]]) if asha else (entry.observed, entry.steps)
        if "reused_from" not in t.user_attrs:
            total += cost
        if key not in current or rung >= current[key][0]:
            current[key] = (rung, observed)
        keys = list(current)
        seen = [(current[k][1], table[k].energy) for k in keys]
        reported = [(table[keys[i]].truth, seen[i][1]) for i in front(seen)]
        regret.append(best - hv_of(reported, ref))
        steps.append(total)
    rank_by = cfg.scheduler.rank_by if asha else "accuracy"
    name = sampler + ("+asha" if asha else "") + ("(loss)" if rank_by == "loss_sum" else "") + (
        "+ehvi" if proposer != "none" else "")
    return {"sampler": name, "seed": seed, "regret": regret, "steps": steps, "seconds": seconds,
            "distinct": len(current)}


_TABLES: dict[tuple[str, str], dict[str, Entry]] = {}
_CONFIGS: dict[tuple[str, str, str, tuple[str, ...]], Any] = {}


class _NoData:
    """The replay trains nothing: a placeholder where the loop expects a dataset. It has the shape
    of the data the table was measured on (Fashion-MNIST, bench_table.py), which the search's
    objective plans each candidate's proxy task from (the table lookup ignores the plan)."""

    input_size, channels, num_classes = 28, 1, 10

    def describe(self) -> str:
        return "none (table lookup)"


_NO_DATA: Any = _NoData()


def reference_energy(table: dict[str, Entry]) -> float:
    return 1.1 * max(e.energy for e in table.values())


def exact_hv(table: dict[str, Entry], ref: float) -> float:
    return hv_of([(e.truth, e.energy) for e in table.values()], ref)


# --------------------------------------------------------------------------- statistics
def at_budget(run: dict[str, Any], evals: int | None = None, steps: int | None = None) -> float:
    """Regret after ``evals`` evaluations, or once the training compute reached ``steps``
    (the last evaluation within that compute; the initial regret before the first)."""
    if evals is not None:
        return run["regret"][min(evals, len(run["regret"])) - 1]
    within = [r for r, s in zip(run["regret"], run["steps"], strict=True) if s <= steps]
    return within[-1] if within else run["regret"][0]


def summarize(runs: Sequence[dict[str, Any]], evals: int, step_marks: Sequence[int]) -> dict[str, Any]:
    from scipy.stats import mannwhitneyu

    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["sampler"], []).append(r)
    marks = [m for m in EVAL_MARKS if m <= evals] + ([evals] if evals not in EVAL_MARKS else [])
    out: dict[str, Any] = {}
    for name, rs in by.items():
        def stats(values: list[float]) -> dict[str, float]:
            q1, med, q3 = np.percentile(values, [25, 50, 75])
            return {"median": float(med), "q1": float(q1), "q3": float(q3)}

        final = [r["regret"][-1] for r in rs]
        entry: dict[str, Any] = {
            "seeds": len(rs), "seconds_total": sum(r["seconds"] for r in rs),
            "distinct_median": float(np.median([r["distinct"] for r in rs])),
            "evals": len(rs[0]["regret"]),  # scheduler=asha replays run longer (--asha-evals)
            "regret_final": stats(final),
            "regret_at_evals": {str(m): stats([at_budget(r, evals=m) for r in rs]) for m in marks},
            "regret_at_steps": {str(s): stats([at_budget(r, steps=s) for r in rs]) for s in step_marks},
        }
        if "random" in by and name != "random":
            entry["compute_to_random_final"] = compute_to_target(rs, by["random"])
        if name != "random" and "random" in by:
            rand = [r["regret"][-1] for r in by["random"]]
            entry["wilcoxon_vs_random_final"] = float(mannwhitneyu(final, rand, alternative="less").pvalue)
            mid = str(marks[len(marks) // 2])
            entry[f"wilcoxon_vs_random_at_{mid}"] = float(mannwhitneyu(
                [at_budget(r, evals=int(mid)) for r in rs], [at_budget(r, evals=int(mid)) for r in by["random"]],
                alternative="less").pvalue)
        out[name] = entry
    return out


def compute_to_target(runs: Sequence[dict[str, Any]], random_runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Training steps a strategy needs to reach the regret random search ends with (the median of
    random's final regrets): per seed the compute of its first evaluation at or below that
    regret (None: never), against random's own compute at its end. A seed that never reaches it
    counts as infinite compute; the median is given when more than half of the seeds reach it.
    The issue's target: at most half of random's compute (median over seeds), one-sided
    Mann-Whitney p < 0.05."""
    from scipy.stats import mannwhitneyu

    target = float(np.median([r["regret"][-1] for r in random_runs]))
    reach = [next((s for g, s in zip(r["regret"], r["steps"], strict=True) if g <= target), None) for r in runs]
    random_compute = [r["steps"][-1] for r in random_runs]
    reached = [x for x in reach if x is not None]
    out: dict[str, Any] = {"target_regret": target, "random_compute_median": float(np.median(random_compute)),
                           "reached": f"{len(reached)}/{len(runs)}"}
    if 2 * len(reached) > len(runs):  # a seed that never reaches it counts as infinite compute
        needed = [math.inf if x is None else float(x) for x in reach]
        out["compute_median"] = float(np.median(needed))
        out["ratio_to_random"] = out["compute_median"] / out["random_compute_median"]
        out["mannwhitney_p_half"] = float(mannwhitneyu([2 * x for x in needed], random_compute,
                                                      alternative="less").pvalue)
    return out


def curves_csv(runs: Sequence[dict[str, Any]], evals: int) -> str:
    lines = ["sampler,evaluations,median_regret,q1,q3,median_steps"]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["sampler"], []).append(r)
    for name, rs in by.items():
        for k in range(1, evals + 1):
            vals = [r["regret"][min(k, len(r["regret"])) - 1] for r in rs]
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            st = np.median([r["steps"][min(k, len(r["steps"])) - 1] for r in rs])
            lines.append(f"{name},{k},{med:.6g},{q1:.6g},{q3:.6g},{st:.6g}")
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[dict[str, Any]], evals: int, path: Path, subtitle: str) -> None:
    plt = pyplot()
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["sampler"], []).append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    max_steps = max(r["steps"][-1] for r in runs)
    grid = np.linspace(0, max_steps, 200)
    for i, (name, rs) in enumerate(sorted(by.items())):
        color = f"C{i}"
        mat = np.array([[r["regret"][min(k, len(r["regret"])) - 1] for k in range(1, evals + 1)] for r in rs])
        q1, med, q3 = np.percentile(mat, [25, 50, 75], axis=0)
        x = np.arange(1, evals + 1)
        ax1.plot(x, med, color=color, label=f"{name} ({len(rs)} seeds)")
        ax1.fill_between(x, q1, q3, color=color, alpha=0.15)
        smat = np.array([[at_budget(r, steps=int(s)) for s in grid] for r in rs])
        q1, med, q3 = np.percentile(smat, [25, 50, 75], axis=0)
        ax2.plot(grid, med, color=color, label=name)
        ax2.fill_between(grid, q1, q3, color=color, alpha=0.15)
    for ax, xlabel in ((ax1, "evaluations"), (ax2, "training steps (new trainings only)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("hypervolume regret (median, IQR band)")
        ax.grid(alpha=0.3, which="both")
    ax1.legend(fontsize=8)
    fig.suptitle(f"Replay on the boolnas-bench table\n{subtitle}", fontsize=9.5)
    fig.tight_layout()
    save_png(fig, path, dpi=140)


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--samplers", nargs="+", default=list(DEFAULT_SAMPLERS),
                    choices=["tpe", "nsga2", "nsga3", "gp", "random"])
    ap.add_argument("--asha", nargs="*", default=[], choices=["tpe", "nsga2", "nsga3", "gp", "random"],
                    help="samplers to replay also with scheduler=asha (rungs f0.25 / f1 / f4 of the table)")
    ap.add_argument("--ehvi", nargs="*", default=[], choices=["tpe", "nsga2", "nsga3", "gp", "random"],
                    help="samplers to replay also with proposer=ehvi (energy-aware proposals)")
    ap.add_argument("--asha-ehvi", nargs="*", default=[], choices=["tpe", "nsga2", "nsga3", "gp", "random"],
                    help="samplers to replay with scheduler=asha and proposer=ehvi together")
    ap.add_argument("--asha-evals", type=int, default=None,
                    help="trials of an asha replay (promotions count; default 2 x --evals: about the compute of "
                         "--evals full evaluations)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="Hydra overrides of the search config, e.g. scheduler.rungs=[0.25,1] scheduler.eta=2 "
                         "(scheduler.* apply to the asha strategies, proposer.* to the ehvi ones)")
    ap.add_argument("--seeds", type=int, default=20, help="seeds per sampler (0..N-1)")
    ap.add_argument("--evals", type=int, default=150, help="evaluations per replay")
    ap.add_argument("--fidelity", default="f1", choices=["f0.25", "f1", "f4"], help="what the search sees")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="replays in parallel")
    ap.add_argument("--out", type=Path, default=None, help="default: the table's folder")
    ap.add_argument("--tag", default="", help="suffix of the output files (replay<tag>.json ...)")
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.evals < 2 or args.jobs < 1:
        ap.error("--seeds >= 1, --evals >= 2 and --jobs >= 1 are required")
    args.out = args.out or args.table.parent
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        table = load_table(args.table, args.fidelity)
        missing = [g.key() for g in enumerate_space(yaml.safe_load(SPACE.read_text())) if g.key() not in table]
        if args.asha or args.asha_ehvi:  # the rungs read every fidelity
            missing += [k for k, e in table.items() if {f for f, _, _ in e.ladder} != set(FIDELITIES)]
        if missing:
            raise ValueError(f"{args.table} lacks {len(missing)} genotype(s) of {SPACE.name} at {args.fidelity} / "
                             f"{TOP}{' / f0.25 (asha)' if args.asha or args.asha_ehvi else ''} (e.g. {missing[0]}): "
                             "finish the campaign (benchmarks/bench_table.py resumes)")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    extra = tuple(args.set)
    jobs = [(str(args.table), args.fidelity, s, seed, args.evals, "none", "none", extra) for s in args.samplers
            for seed in range(args.seeds)]
    asha_evals = args.asha_evals or 2 * args.evals
    for samplers, scheduler, proposer, evals in ((args.asha, "asha", "none", asha_evals),
                                                 (args.ehvi, "none", "ehvi", args.evals),
                                                 (args.asha_ehvi, "asha", "ehvi", asha_evals)):
        jobs += [(str(args.table), args.fidelity, s, seed, evals, scheduler, proposer, extra) for s in samplers
                 for seed in range(args.seeds)]
    started = time.perf_counter()
    if args.jobs == 1:
        runs = [replay_one(*j) for j in jobs]
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            runs = list(pool.map(replay_one, *zip(*jobs, strict=True)))
    wall = time.perf_counter() - started
    ref = reference_energy(table)
    one_eval = int(np.median([e.steps for e in table.values()]))
    step_marks = [one_eval * m for m in (10, 20, 50, 100)]
    summary = {
        "benchmark": "replay", "table": shown_path(args.table), "genotypes": len(table), "fidelity_seen": args.fidelity,
        "reference_fidelity": TOP, "evals": args.evals, "seeds": args.seeds, "ref_energy_uJ": ref,
        "exact_hv": exact_hv(table, ref), "wall_s": wall, "jobs": args.jobs,
        "step_marks": step_marks, "samplers": summarize(runs, args.evals, step_marks),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / f"replay{args.tag}.json", json.dumps(summary, indent=2, default=_json) + "\n")
    write_text_atomic(args.out / f"replay{args.tag}.csv", curves_csv(runs, args.evals))
    plot(runs, args.evals, args.out / f"replay{args.tag}.png",
         f"{len(table)} genotypes; the search sees {args.fidelity}, scored on {TOP}; {args.seeds} seeds x "
         f"{args.evals} evaluations")
    for name, s in summary["samplers"].items():
        final = s["regret_final"]
        p = s.get("wilcoxon_vs_random_final")
        print(f"{name:<8} final regret median {final['median']:.4f} (IQR {final['q1']:.4f}..{final['q3']:.4f})"
              f"  {s['seconds_total']:.1f} s in all" + (f"  Wilcoxon vs random p = {p:.3g}" if p is not None else ""))
    print(f"replay: {len(runs)} replays in {wall:.1f} s wall ({args.jobs} process(es))", file=sys.stderr)
    print(json.dumps(summary, default=_json))
    return summary


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    main()
