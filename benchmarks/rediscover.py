"""Does the search beat hand design? The default search vs random search at the same budget.

Runs ``boolnas-search`` (the real command line, default configuration: TPE, proxy budget on
Fashion-MNIST, energy on ImageNet with boolnet65nm, the seven presets enqueued first) for
``--trials`` trials, and the same with ``sampler=random``, for each seed; then reports, from the
studies' storages:

- the hypervolume over trials of each run (fixed reference: accuracy 0, 2x the costliest
  preset's energy, as in the reports),
- which presets each final front dominates (a front member other than the preset itself that is
  at least as accurate and at most as costly, better in one),
- whether the run found an architecture (other than the presets) with energy <= boolnet18_k4's
  and proxy accuracy >= bireal18's (the BoolNet paper's claim, under the proxy), and which.

Both runs start with the same seven presets (the default ``seed_presets=true``), so the budget
and the reference points are identical; only the sampler differs.

Reproduce the committed figures (2-core CPU, both runs side by side with one torch thread each,
about an hour):

    .venv/bin/python benchmarks/rediscover.py --trials 150 --seeds 0 --jobs 2

Outputs in ``--out`` (default benchmarks/results): ``rediscover_hv.csv`` (sampler, seed, trial,
hypervolume), ``rediscover_summary.json``, ``rediscover.png``; the studies themselves in
``--studies`` (default results/rediscover, not committed). A rerun resumes unfinished studies.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)
from _plots import pyplot, save_png  # noqa: E402

from boolnas.search.pareto import dominates, front, hypervolume  # noqa: E402

SAMPLERS = ("tpe", "random")


def study_name(sampler: str, seed: int) -> str:
    return f"rediscover_{sampler}_s{seed}"


def run_search(sampler: str, seed: int, trials: int, studies: Path, threads: int, extra: list[str]) -> int:
    """One search through the real CLI; returns its exit code (logs go to a file beside the study)."""
    cmd = [sys.executable, "-m", "boolnas.search", f"study={study_name(sampler, seed)}", f"sampler={sampler}",
           f"seed={seed}", f"n_trials={trials}", f"results_dir={studies}", "progress=false", *extra]
    if threads:
        cmd.append(f"budget.num_threads={threads}")
    log = studies / f"{study_name(sampler, seed)}.log"
    studies.mkdir(parents=True, exist_ok=True)
    print(f"running: {' '.join(cmd[1:])}  (log: {log})", file=sys.stderr)
    with log.open("a") as fh:
        return subprocess.run(cmd, stdout=fh, stderr=fh, cwd=REPO).returncode


def load(studies: Path, sampler: str, seed: int) -> list[optuna.trial.FrozenTrial]:
    name = study_name(sampler, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{studies / name / 'study.db'}")
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def _point(t: optuna.trial.FrozenTrial) -> tuple[float, float] | None:
    a = t.user_attrs
    if t.state != optuna.trial.TrialState.COMPLETE or not a.get("feasible", True) or "accuracy" not in a:
        return None
    return float(a["accuracy"]), float(a["energy_uJ"])


def analyse(trials: list[optuna.trial.FrozenTrial], ref: float) -> dict[str, Any]:
    """Hypervolume history, dominated presets and the BoolNet-claim check of one run."""
    history, points, owners = [], [], []
    for t in trials:
        p = _point(t)
        if p is not None:
            points.append(p)
            owners.append(t)
        history.append(hypervolume(points, ref))
    presets = {t.user_attrs["preset"]: p for t, p in zip(owners, points) if t.user_attrs.get("preset")}
    members = [(owners[i], points[i]) for i in front(points)]
    dominated = {}
    for name, pp in presets.items():
        by = [t.number for t, q in members if t.user_attrs.get("preset") != name and dominates(q, pp)]
        if by:
            dominated[name] = by
    target = None
    if "boolnet18_k4" in presets and "bireal18" in presets:
        e_max, a_min = presets["boolnet18_k4"][1], presets["bireal18"][0]
        # candidates the search proposed (the presets themselves are the reference, not a find)
        hits = [(t, p) for t, p in zip(owners, points)
                if p[1] <= e_max and p[0] >= a_min and not t.user_attrs.get("preset")]
        target = {"energy_max_uJ": e_max, "accuracy_min": a_min, "found": bool(hits),
                  "trials": [{"number": t.number, "preset": t.user_attrs.get("preset") or None, "accuracy": p[0],
                              "energy_uJ": p[1]} for t, p in hits]}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {
        "trials": len(trials), "complete": len(complete), "hv_history": history, "points": points,
        "final_hv": history[-1] if history else 0.0,
        "front": [{"number": t.number, "preset": t.user_attrs.get("preset") or None, "accuracy": p[0],
                   "energy_uJ": p[1], "genotype": t.user_attrs.get("genotype")} for t, p in members],
        "presets": {k: {"accuracy": v[0], "energy_uJ": v[1]} for k, v in presets.items()},
        "dominated_presets": dominated, "boolnet_claim": target,
    }


def _seed_style(key: str) -> str:
    """Line style of a run "sampler:s<seed>": the sampler picks the colour, the seed the dash."""
    return ("-", "--", ":", "-.")[int(key.rsplit(":s", 1)[1]) % 4]


def plot(runs: dict[str, dict[str, Any]], path: Path, trials: int) -> None:
    plt = pyplot()

    colors = {"tpe": "#d62728", "random": "#1f77b4"}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key, run in sorted(runs.items()):
        sampler = key.split(":")[0]
        ax.plot(range(1, len(run["hv_history"]) + 1), run["hv_history"], color=colors.get(sampler, "k"),
                label=f"{key}  (final {run['final_hv']:.4f})", lw=1.6, ls=_seed_style(key))
    ax.axvline(7, color="grey", ls=":", lw=1)
    ax.text(7.5, ax.get_ylim()[0], " presets end", color="grey", va="bottom", fontsize=8)
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume (fraction of the reference box)")
    ax.set_title(f"Default search (TPE) vs random search: {trials} trials\n"
                 "proxy accuracy (Fashion-MNIST) vs energy (ImageNet, boolnet65nm)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def plot_fronts(runs: dict[str, dict[str, Any]], path: Path, trials: int) -> None:
    """Every finished candidate of each run, its final front as a step line, presets labelled."""
    plt = pyplot()
    import matplotlib.ticker

    colors = {"tpe": "#d62728", "random": "#1f77b4"}
    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=120)
    for key, run in sorted(runs.items()):
        color = colors.get(key.split(":")[0], "k")
        pts = [p for p in run["points"] if p[0] > 0.2]  # leave off untrainable outliers (still in the CSV)
        ax.scatter([p[1] for p in pts], [p[0] for p in pts], s=10, color=color, alpha=0.35)
        members = sorted(run["front"], key=lambda m: m["energy_uJ"])
        ax.step([m["energy_uJ"] for m in members], [m["accuracy"] for m in members], where="post", color=color,
                lw=1.8, ls=_seed_style(key), label=f"{key} front ({len(members)} members)")
    first = next(iter(runs))
    presets = runs[first]["presets"]
    for name, p in presets.items():
        ax.scatter([p["energy_uJ"]], [p["accuracy"]], s=60, facecolors="none", edgecolors="k", zorder=3)
        ax.annotate(name, (p["energy_uJ"], p["accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("energy per ImageNet inference, boolnet65nm (uJ, log)")
    ax.set_ylabel("proxy accuracy (Fashion-MNIST)")
    ax.set_title(f"Final fronts after {trials} trials; circles: the seven presets (as measured in {first})",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    ap.add_argument("--jobs", type=int, default=2, help="searches run side by side")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per search (0: torch's default)")
    ap.add_argument("--studies", type=Path, default=REPO / "results" / "rediscover")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--analyse-only", action="store_true", help="skip the searches, analyse the stored studies")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every search (tests: data=synthetic ...)")
    args = ap.parse_args(argv)
    jobs = [(s, seed) for seed in args.seeds for s in args.samplers]
    started = time.time()
    if not args.analyse_only:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            codes = list(pool.map(lambda j: run_search(j[0], j[1], args.trials, args.studies, args.threads,
                                                       args.overrides), jobs))
        if any(codes):
            print(f"error: a search failed (exit codes {codes}); see the logs in {args.studies}", file=sys.stderr)
            return 1
    runs: dict[str, dict[str, Any]] = {}  # "hv_history" and "points" stay out of the JSON summary
    for sampler, seed in jobs:
        trials = load(args.studies, sampler, seed)
        study = optuna.load_study(study_name=study_name(sampler, seed),
                                  storage=f"sqlite:///{args.studies / study_name(sampler, seed) / 'study.db'}")
        runs[f"{sampler}:s{seed}"] = analyse(trials, float(study.user_attrs["hv_ref_energy_uJ"]))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = ["sampler,seed,trial,hypervolume"]
    for key, run in runs.items():
        sampler, seed = key.split(":")
        rows += [f"{sampler},{seed[1:]},{i},{hv:.6f}" for i, hv in enumerate(run["hv_history"])]
    (args.out / "rediscover_hv.csv").write_text("\n".join(rows) + "\n")
    summary = {"trials": args.trials, "seeds": args.seeds, "wall_s": round(time.time() - started, 1),
               "runs": {k: {kk: vv for kk, vv in v.items() if kk not in ("hv_history", "points")}
                        for k, v in runs.items()}}
    by_sampler = {s: [runs[f"{s}:s{seed}"]["final_hv"] for seed in args.seeds] for s in args.samplers}
    summary["mean_final_hv"] = {s: sum(v) / len(v) for s, v in by_sampler.items()}
    if {"tpe", "random"} <= set(by_sampler):
        summary["tpe_beats_random"] = summary["mean_final_hv"]["tpe"] > summary["mean_final_hv"]["random"]
    (args.out / "rediscover_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(runs, args.out / "rediscover.png", args.trials)
    plot_fronts(runs, args.out / "rediscover_front.png", args.trials)
    for key, run in runs.items():
        claim = run["boolnet_claim"] or {}
        print(f"{key}: final hypervolume {run['final_hv']:.4f}, dominated presets "
              f"{sorted(run['dominated_presets']) or 'none'}, found energy <= boolnet18_k4 with accuracy >= bireal18: "
              f"{claim.get('found')}", file=sys.stderr)
    print(json.dumps({"mean_final_hv": summary["mean_final_hv"], "tpe_beats_random": summary.get("tpe_beats_random")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
