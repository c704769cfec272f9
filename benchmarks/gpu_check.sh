#!/usr/bin/env bash
# GPU check: training throughput of the BNN presets against their fp32 twins on CUDA, with and
# without bf16 autocast and channels_last, at batch 1024 on synthetic data (benchmarks/bench_train.py).
#
# For a GPU machine with torch (2.11 or newer) and numpy but without the search stack (optuna,
# hydra, omegaconf, plotly, sqlalchemy) and without network access: it needs this checkout only.
#
#   bash benchmarks/gpu_check.sh
#   PYTHON=.venv/bin/python BATCH=512 ROUNDS=5 STEPS=5 bash benchmarks/gpu_check.sh
#   DEVICE=cpu BATCH=16 ROUNDS=1 STEPS=1 bash benchmarks/gpu_check.sh     # dry run without a GPU
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-1024}
ROUNDS=${ROUNDS:-7}
STEPS=${STEPS:-5}
PRESETS=${PRESETS:-basenet18_k1 basenet18_k4 boolnet18_k4 bireal18 reactnet18}

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

# The training stack must import without the search packages; fail early and say which import broke.
"$PYTHON" - "$DEVICE" <<'EOF'
import sys
import torch
import space, evaluators.training, evaluators.accuracy, evaluators.data  # noqa: F401
device = sys.argv[1]
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, imports ok")
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch; run with DEVICE=cpu for a dry run")
EOF

# shellcheck disable=SC2086  # PRESETS is a word list
"$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --batch-size "$BATCH" --rounds "$ROUNDS" \
  --steps "$STEPS" --bf16 both --channels-last both --presets $PRESETS
