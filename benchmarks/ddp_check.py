"""DDP check (benchmarks/gpu_check.sh): data-parallel training of each preset's binary network
and its fp32 twin on every process torchrun starts, and the images/s of both.

    python -m torch.distributed.run --standalone --nproc_per_node=<GPUs> benchmarks/ddp_check.py --device cuda
    python -m torch.distributed.run --standalone --nproc_per_node=2 benchmarks/ddp_check.py --device cpu \\
        --batch-size 16 --steps 2 --presets basenet18_k1                       # the CPU path (gloo)

Each process joins the process group (NCCL on CUDA, gloo on CPU) and trains with the library's
own loop (evaluators/training.py): streamed synthetic images through DataLoader workers (pinned
memory on CUDA), ``--batch-size`` as the global batch shared among the processes, DDP gradients,
bf16 autocast and channels_last on request. After each training the processes compare their
weights (they must be equal: DDP keeps the replicas in sync). Rank 0 prints one line per network
and, last, one JSON object. images/s are global (all processes) over the whole training call,
the short evaluation at its end included; benchmarks/bench_train.py measures the step alone.

Imports torch, space/ and evaluators/ only (no hydra, optuna, ...): it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _checkout  # noqa: E402, F401  (boolnas from this checkout where it is not installed)

from boolnas.evaluators import distributed  # noqa: E402
from boolnas.evaluators.accuracy import train_genotype  # noqa: E402
from boolnas.evaluators.data import DataConfig, open_streams  # noqa: E402
from boolnas.evaluators.distributed import DistContext  # noqa: E402
from boolnas.evaluators.training import Budget, resolve_device  # noqa: E402
from boolnas.space import get_preset  # noqa: E402

NETWORKS = ("binary", "fp32_twin")


def checksum(model: torch.nn.Module) -> float:
    """Sum of every parameter and buffer (float64): equal replicas give equal sums."""
    with torch.no_grad():
        return float(sum(t.double().sum().cpu() for t in (*model.parameters(), *model.buffers())
                         if t.is_floating_point()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--presets", nargs="+", default=["basenet18_k1", "boolnet18_k4", "reactnet18"])
    ap.add_argument("--batch-size", type=int, default=1024, help="global batch (shared among the processes)")
    ap.add_argument("--steps", type=int, default=30, help="training steps per network")
    ap.add_argument("--size", type=int, default=32, help="image size (synthetic RGB images)")
    ap.add_argument("--width", type=float, default=1.0, help="width multiplier of the networks")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers per process")
    ap.add_argument("--bf16", choices=["on", "off"], default="on", help="bf16 autocast (CUDA)")
    ap.add_argument("--channels-last", choices=["on", "off"], default="on", help="channels_last memory (CUDA)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (CPU)")
    args = ap.parse_args(argv)
    ctx = DistContext.from_environment(os.environ)
    device = resolve_device(args.device, ctx)
    distributed.start(ctx, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    try:
        images = DataConfig.from_conf("synthetic", num_train=args.batch_size * args.steps, val_size=args.batch_size,
                                      num_test=0, input_size=args.size, channels=3, num_classes=10)
        data = open_streams(images, augment=True)
        rows: list[dict[str, Any]] = []
        for preset in args.presets:
            for network in NETWORKS:
                budget = Budget.from_conf("tiny", name="ddp_check", epochs=1, batch_size=args.batch_size, lr=0.002,
                                          optimizer="radam", train_subset=args.batch_size * args.steps,
                                          val_subset=args.batch_size, width_mult=args.width, progressive=False,
                                          stream=True, data_workers=args.workers, bn_recalibration=1,
                                          device=args.device, num_threads=args.threads,
                                          bf16=cuda and args.bf16 == "on",
                                          channels_last=cuda and args.channels_last == "on")
                model, result = train_genotype(get_preset(preset), data, budget, network=network, dist_ctx=ctx)
                spread = distributed.spread(ctx, checksum(model), device)
                rows.append({"preset": preset, "network": network, "images_per_s": round(result.images_per_s, 1),
                             "steps": result.steps, "diverged": result.diverged, "replicas_in_sync": spread == 0.0})
                if ctx.is_main:
                    print(f"{preset:<14} {network:<10} {result.images_per_s:>10.1f} images/s  "
                          f"replicas in sync: {'yes' if spread == 0.0 else f'NO (spread {spread:.3g})'}", flush=True)
        if ctx.is_main:
            ratios = {}
            for preset in args.presets:
                b, f = (next(r["images_per_s"] for r in rows if r["preset"] == preset and r["network"] == n)
                        for n in NETWORKS)
                ratios[preset] = round(b / f, 3) if f else None
            where = torch.cuda.get_device_name(device) if cuda else "cpu"
            print(json.dumps({"processes": ctx.world_size, "device": where, "backend": distributed.backend_for(device),
                              "global_batch": args.batch_size, "binary_over_fp32": ratios, "runs": rows}))
        ok = all(r["replicas_in_sync"] and not r["diverged"] for r in rows)
    finally:
        distributed.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
