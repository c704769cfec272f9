"""Two-step vs one-step full training at equal total epochs, on Fashion-MNIST (issue 17, item 3).

For each preset and seed, six recipes train the same network for the same number of epochs:

- ``one_step``: conf/budget/full.yaml (progressive weight binarization from the first step);
- ``one_step_kd``: the same, distilling from a real-valued teacher;
- ``one_step_hard`` / ``one_step_hard_kd``: full.yaml with hard-sign weights from the first step
  (``progressive: false``, as step 2 of the two-step recipe and the search's proxy), without and
  with the teacher: the one-step recipe that differs from two-step training only by its step 1;
- ``two_step_kd``: conf/budget/full_two_step.yaml: E/2 epochs of binary activations with real
  weights, then E/2 epochs of binary weights initialised from step 1, both distilling from the
  teacher (ReActNet's distributional loss);
- ``two_step``: the two steps without the teacher (what the recipe does on its own).

The teacher is the fp32 twin of ``--teacher`` (evaluators/fp32_twin.py: the plain ResNet-18 of
the same plan; all ResNet-18 presets share it) trained by boolnas with the one-step recipe for
the same epochs and saved as a model.pt, as a user would with ``boolnas-train network=fp32_twin``.

Scale (the machine is a shared 2-core CPU): the proxy's network shape (14x14, width x0.25),
``--train-subset`` fresh training images per epoch, batch 64, in-memory data without
augmentation (2-pixel shifts are large at 14x14 and a few epochs do not over-fit), one torch
thread. Test accuracy on the official 10,000 test images; the whole validation split is scored
too. Everything else is the budget files' recipe (RAdam, lr 0.002, cosine, clip 2.5).

    nice -n 19 .venv/bin/python benchmarks/two_step.py           # writes benchmarks/results/two_step.{csv,json}
    nice -n 19 .venv/bin/python benchmarks/two_step.py --seeds 1 --variants one_step_hard_kd two_step_kd

(the committed results: both calls; the second adds a seed to the two closest recipes, and the
table reports both seeds' mean.) About 30 and 10 minutes of one core on an idle machine; runs
of 55-410 s each on the shared one.

Finished runs are cached (``--cache``, one JSON line each), so an interrupted measurement resumes;
the table holds every cached run of the presets and variants asked for (mean over their seeds).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)

from boolnas.evaluators.accuracy import proxy_task, save_model, train_genotype  # noqa: E402
from boolnas.evaluators.data import DataConfig, load_dataset  # noqa: E402
from boolnas.evaluators.training import Budget  # noqa: E402
from boolnas.space import get_preset  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402

log = logging.getLogger("two_step")
CONF = REPO / "conf" / "budget"
VARIANTS = ("one_step", "one_step_kd", "one_step_hard", "one_step_hard_kd", "two_step_kd", "two_step")
PRESETS = ("basenet18_k1", "bireal18", "reactnet18")


def load_budget(name: str) -> Budget:
    return Budget.from_dict(yaml.safe_load((CONF / f"{name}.yaml").read_text()))


def scaled(budget: Budget, args: argparse.Namespace) -> Budget:
    """``budget`` at the measurement's scale (see the module docstring); the recipe stays."""
    return replace(budget, epochs=args.epochs, batch_size=args.batch_size, train_subset=args.train_subset,
                   val_subset=None, resolution=args.resolution, width_mult=args.width, augment=False,
                   stream=False, data_workers=0, checkpoint=False, eval_test=True, num_threads=args.threads)


def variant_budget(variant: str, teacher: Path, args: argparse.Namespace) -> Budget:
    base = scaled(load_budget("full_two_step" if variant.startswith("two_step") else "full"), args)
    if "_hard" in variant:
        base = replace(base, progressive=False)
    return replace(base, kd_teacher=str(teacher) if variant.endswith("_kd") else None)


def read_cache(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["preset"], row["variant"], row["seed"])] = row
    return rows


def append_cache(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def train_teacher(data: Any, args: argparse.Namespace, folder: Path) -> tuple[Path, dict[str, Any]]:
    """The fp32 twin of ``args.teacher``, trained once and saved as a boolnas model.pt."""
    path = folder / f"teacher-{args.teacher}-e{args.epochs}-n{args.train_subset}-r{args.resolution}.pt"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        return path, json.loads(meta_path.read_text())
    budget = scaled(load_budget("full"), args)
    genotype = get_preset(args.teacher)
    started = time.perf_counter()
    twin, result = train_genotype(genotype, data, budget, seed=0, network="fp32_twin")
    meta = {"preset": args.teacher, "network": "fp32_twin", "test_accuracy": result.test_accuracy,
            "val_accuracy": result.val_accuracy, "time_s": round(time.perf_counter() - started, 1)}
    folder.mkdir(parents=True, exist_ok=True)
    save_model(path, twin, genotype, proxy_task(data, budget), meta, network="fp32_twin")
    write_text_atomic(meta_path, json.dumps(meta, indent=2))
    log.info("teacher: fp32 twin of %s, test accuracy %.4f", args.teacher, result.test_accuracy)
    return path, meta


def summary(rows: list[dict[str, Any]], presets: list[str], variants: list[str]) -> list[dict[str, Any]]:
    """Mean test accuracy per preset and variant (over the seeds measured), and two-step-with-teacher's gain."""
    out = []
    for preset in presets:
        line: dict[str, Any] = {"preset": preset}
        for v in variants:
            accs = [r["test_accuracy"] for r in rows if r["preset"] == preset and r["variant"] == v]
            line[v] = round(statistics.mean(accs), 4) if accs else None
            line[f"{v}_seeds"] = len(accs)
        if line.get("two_step_kd") is not None:
            for base in ("one_step", "one_step_kd", "one_step_hard_kd"):
                if line.get(base) is not None:
                    line[f"gain_vs_{base}"] = round(line["two_step_kd"] - line[base], 4)
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--teacher", default="reactnet18", help="preset whose fp32 twin is the teacher")
    ap.add_argument("--epochs", type=int, default=4, help="total epochs of every recipe (two-step: half each)")
    ap.add_argument("--train-subset", type=int, default=8192, help="training images per epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=14)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="fashion_mnist", choices=["fashion_mnist", "synthetic"],
                    help="synthetic: a smoke run of the script")
    ap.add_argument("--cache", type=Path, default=REPO / "results" / "two_step" / "runs.jsonl")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. the calls that made the cache)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    cfg = (DataConfig.from_conf("fashion_mnist") if args.data == "fashion_mnist"
           else DataConfig.from_conf("synthetic", val_size=256, num_test=256))
    data = load_dataset(cfg)
    teacher, teacher_meta = train_teacher(data, args, args.cache.parent)
    cache = read_cache(args.cache)
    for seed in args.seeds:
        for preset in args.presets:
            for variant in args.variants:
                key = (preset, variant, seed)
                if key not in cache:
                    budget = variant_budget(variant, teacher, args)
                    _, result = train_genotype(get_preset(preset), data, budget, seed=seed)
                    cache[key] = {"preset": preset, "variant": variant, "seed": seed,
                                  "test_accuracy": result.test_accuracy, "val_accuracy": result.val_accuracy,
                                  "epochs": result.epochs, "steps": result.steps, "time_s": round(result.time_s, 1),
                                  "diverged": result.diverged}
                    append_cache(args.cache, cache[key])
                    log.info("%s %s seed %d: test %.4f (%.0f s)", preset, variant, seed, result.test_accuracy or
                             float("nan"), result.time_s)
    # the table reports every cached run of these presets and variants (seeds trained by earlier calls too)
    rows = sorted((r for r in cache.values() if r["preset"] in args.presets and r["variant"] in args.variants),
                  key=lambda r: (args.presets.index(r["preset"]), args.variants.index(r["variant"]), r["seed"]))
    table = summary(rows, args.presets, args.variants)
    setup = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    meta = {
        "command": "nice -n 19 .venv/bin/python benchmarks/two_step.py " + " ".join(argv if argv else sys.argv[1:]),
        "note": args.note, "setup": setup, "teacher": teacher_meta, "data": asdict(cfg),
        "budgets": {v: {k: val for k, val in asdict(variant_budget(v, Path("<teacher>"), args)).items()
                        if k in ("name", "epochs", "batch_size", "lr", "optimizer", "progressive", "recipe",
                                 "step1_epochs", "kd_teacher", "kd_weight", "kd_temperature", "train_subset")}
                    for v in args.variants},
        "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
        "summary": table, "runs": rows,
    }
    if args.data == "fashion_mnist":
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "two_step.json", json.dumps(meta, indent=2) + "\n")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["preset", "variant", "seed", "test_accuracy", "val_accuracy",
                                                 "epochs", "steps", "time_s", "diverged"])
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(args.out / "two_step.csv", buf.getvalue())
    print(f"teacher (fp32 twin of {args.teacher}): test {teacher_meta['test_accuracy']:.4f}")
    print("| preset | " + " | ".join(args.variants) + " |")
    print("|---|" + "---|" * len(args.variants))
    for line in table:
        print(f"| {line['preset']} | " + " | ".join(f"{line[v]:.4f} ({line[v + '_seeds']})" if line[v] is not None
                                                    else "-" for v in args.variants) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
