#!/usr/bin/env bash
# GPU check, one command for anyone with a GPU machine:
#  1. training throughput of the BNN presets against their fp32 twins on CUDA, with and without
#     bf16 autocast and channels_last, at batch 1024 on synthetic data (benchmarks/bench_train.py);
#  2. data-parallel training (DDP, NCCL) on all visible GPUs with the library's own loop:
#     streamed data through DataLoader workers into pinned memory, bf16 + channels_last, images/s
#     of each binary network and its fp32 twin, and a check that the replicas stay in sync
#     (benchmarks/ddp_check.py under torchrun).
#
# For a GPU machine with torch (2.11 or newer) and numpy but without the search stack (optuna,
# hydra, omegaconf, plotly, sqlalchemy) and without network access: it needs this checkout only
# (and Pillow, which torch's own dependencies do not include, only for image folders: not used here).
#
#   bash benchmarks/gpu_check.sh
#   PYTHON=.venv/bin/python BATCH=512 ROUNDS=5 STEPS=5 NPROC=4 bash benchmarks/gpu_check.sh
#   DEVICE=cpu BATCH=16 ROUNDS=1 STEPS=1 DDP_STEPS=2 SIZE=14 WIDTH=0.25 PRESETS=basenet18_k1 \
#     bash benchmarks/gpu_check.sh          # dry run without a GPU: 2 CPU processes with gloo
#   CHECKS=ddp bash benchmarks/gpu_check.sh   # only part 2 (CHECKS: "throughput ddp" by default)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-1024}
ROUNDS=${ROUNDS:-7}
STEPS=${STEPS:-5}
PRESETS=${PRESETS:-basenet18_k1 basenet18_k4 boolnet18_k4 bireal18 reactnet18}
NPROC=${NPROC:-}          # DDP processes: all visible GPUs (cuda) or 2 (cpu)
DDP_STEPS=${DDP_STEPS:-30}  # training steps per network in the DDP check
SIZE=${SIZE:-32}          # DDP check: image size (synthetic RGB)
WIDTH=${WIDTH:-1.0}       # DDP check: width multiplier
WORKERS=${WORKERS:-4}     # DDP check: DataLoader workers per process
CHECKS=${CHECKS:-throughput ddp}

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

# The training stack must import without the search packages; fail early and say which import broke.
"$PYTHON" - "$DEVICE" <<'PY'
import sys
import torch
sys.path.insert(0, "benchmarks")
import _checkout  # noqa: F401  (boolnas from this checkout where it is not installed)
import boolnas.space, boolnas.evaluators.training, boolnas.evaluators.accuracy  # noqa: F401
import boolnas.evaluators.data, boolnas.evaluators.distributed  # noqa: F401
device = sys.argv[1]
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, "
      f"{torch.cuda.device_count()} GPU(s), imports ok")
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch; run with DEVICE=cpu for a dry run")
PY

if [[ " $CHECKS " == *" throughput "* ]]; then
  echo "== 1. training throughput, binary vs fp32 twin (one process)"
  # shellcheck disable=SC2086  # PRESETS is a word list
  "$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --batch-size "$BATCH" --rounds "$ROUNDS" \
    --steps "$STEPS" --bf16 both --channels-last both --presets $PRESETS
fi
[[ " $CHECKS " == *" ddp "* ]] || exit 0

if [ -z "$NPROC" ]; then
  if [ "$DEVICE" = cuda ]; then
    NPROC=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')
  else
    NPROC=2
  fi
fi
echo "== 2. data-parallel training on $NPROC process(es) ($DEVICE), global batch $BATCH"
# shellcheck disable=SC2086
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" \
  benchmarks/ddp_check.py --device "$DEVICE" --batch-size "$BATCH" --steps "$DDP_STEPS" --size "$SIZE" \
  --width "$WIDTH" --workers "$WORKERS" --presets $PRESETS
