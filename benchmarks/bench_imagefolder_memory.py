"""Peak memory of image-folder training as the folder grows (issue 17): streamed stays flat.

For each size N in ``--sizes`` (default 10,000 and 60,000) the first N Fashion-MNIST training
images (the IDX files in /usr/share/datasets/fashion-mnist) are written as PNG files, one folder
per class, into a temporary folder (deleted afterwards; never commit images). Then
``boolnas-train data=imagefolder budget=full`` trains one epoch over every training image of the
folder (the proxy's network shape: basenet18_k1, 14x14, width x0.25, batch 64, 2 DataLoader
workers, one torch thread), once streamed (``budget.stream=true``, the full budget's default)
and once decoded into memory (``budget.stream=false``) for contrast. While it runs, the trainer
and its worker processes are sampled every 0.1 s from /proc:

- ``peak_rss_main_mib``: the trainer's own peak resident memory (VmHWM);
- ``peak_pss_tree_mib``: the largest proportional set size of trainer + workers together (pages
  shared by the forked workers counted once; ``smaps_rollup``);
- ``peak_rss_tree_mib``: the same with RSS (shared pages counted per process: an upper bound).

The ratio of each figure at the largest to the smallest size is the result: about 1 means flat.

    nice -n 19 .venv/bin/python benchmarks/bench_imagefolder_memory.py
    .venv/bin/python benchmarks/bench_imagefolder_memory.py --sizes 3000 6000 --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)

from boolnas.evaluators.data import FASHION_MNIST_FILES, FASHION_MNIST_ROOT, read_idx  # noqa: E402
from boolnas.space.files import write_text_atomic  # noqa: E402

MIB = 2**20
TRAIN_ARGS = ["arch=basenet18_k1", "budget=full", "budget.epochs=1", "budget.resolution=14",
              "budget.width_mult=0.25", "budget.batch_size=64", "budget.data_workers=2", "budget.num_threads=1",
              "budget.augment=true", "budget.checkpoint=false", "data=imagefolder", "data.val_size=1000",
              "data.num_test=1000", "progress=false", "format=json"]


def write_pngs(root: Path, n: int) -> Path:
    """The first ``n`` Fashion-MNIST training images as ``root/<label>/<index>.png``."""
    from PIL import Image

    fm = Path(FASHION_MNIST_ROOT)
    images = read_idx(next(p for p in (fm / FASHION_MNIST_FILES["train_images"],
                                       fm / f"{FASHION_MNIST_FILES['train_images']}.gz") if p.is_file()))
    labels = read_idx(next(p for p in (fm / FASHION_MNIST_FILES["train_labels"],
                                       fm / f"{FASHION_MNIST_FILES['train_labels']}.gz") if p.is_file()))
    if n > len(images):
        raise SystemExit(f"--sizes: at most {len(images)} images")
    for label in range(10):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.asarray(images[i])).save(root / f"class{labels[i]}" / f"{i:05d}.png")
    return root


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _kib(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` and sample its process tree's memory until it exits."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"hwm_main": 0, "rss_tree": 0, "pss_tree": 0, "processes": 0}
    while proc.poll() is None:
        pids = _tree(proc.pid)
        peak["hwm_main"] = max(peak["hwm_main"], _kib(Path(f"/proc/{proc.pid}/status"), "VmHWM:"))
        peak["rss_tree"] = max(peak["rss_tree"], sum(_kib(Path(f"/proc/{p}/status"), "VmRSS:") for p in pids))
        peak["pss_tree"] = max(peak["pss_tree"], sum(_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss:") for p in pids))
        peak["processes"] = max(peak["processes"], len(pids))
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"peak_rss_main_mib": round(peak["hwm_main"] * 1024 / MIB, 1),
            "peak_pss_tree_mib": round(peak["pss_tree"] * 1024 / MIB, 1),
            "peak_rss_tree_mib": round(peak["rss_tree"] * 1024 / MIB, 1), "processes": peak["processes"],
            "wall_s": round(time.perf_counter() - started, 1), "test_accuracy": result["test_accuracy"],
            "images_per_s": round(result["images_per_s"], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[10000, 60000])
    ap.add_argument("--modes", nargs="+", default=["stream", "memory"], choices=["stream", "memory"])
    ap.add_argument("--tmp", type=Path, default=None, help="where the PNG folders go (default: the system's temp)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "imagefolder_memory.json")
    ap.add_argument("--no-write", action="store_true", help="print the result only")
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="boolnas-pngs-") as tmp:
        for n in sorted(args.sizes):
            root = write_pngs(Path(tmp) / f"n{n}", n)
            for mode in args.modes:
                cmd = [sys.executable, "-m", "boolnas.search.cli.train", *TRAIN_ARGS, f"data.root={root}",
                       f"budget.stream={'true' if mode == 'stream' else 'false'}"]
                row = {"images": n, "mode": mode, **measure(cmd, env)}
                print(json.dumps(row), flush=True)
                runs.append(row)
            shutil.rmtree(root)
    lo, hi = min(args.sizes), max(args.sizes)
    ratios = {}
    for mode in args.modes:
        a = next(r for r in runs if r["images"] == lo and r["mode"] == mode)
        b = next(r for r in runs if r["images"] == hi and r["mode"] == mode)
        ratios[mode] = {k: round(b[k] / a[k], 3) for k in ("peak_rss_main_mib", "peak_pss_tree_mib",
                                                           "peak_rss_tree_mib")}
    summary = {
        "command": " ".join(["nice -n 19 .venv/bin/python benchmarks/bench_imagefolder_memory.py",
                             *(argv or sys.argv[1:])]),
        "train_args": TRAIN_ARGS, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "runs": runs, f"ratio_{hi}_over_{lo}": ratios,
    }
    print(json.dumps({f"ratio_{hi}_over_{lo}": ratios}))
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
