#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it into a fresh virtual environment
# (with the deploy extra), and use the commands from a temporary directory far from the checkout:
# the energy of every preset, a user's own hardware profile (config dir and energy_file=), a
# 3-trial search on synthetic data with its report, exports (YAML and ONNX), python -m, and no
# generic top-level import names. Run by `make wheel-check` (CI runs it after the tests).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
BUILD_PIP=${BUILD_PIP:-$REPO/.venv/bin/pip}   # any pip that can build a wheel
WORK=$(mktemp -d /tmp/boolnas-wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
step() { echo "== $*"; }
fail() { echo "wheel check failed: $*" >&2; exit 1; }

step "build the wheel"
# from a copy of the checkout's files (tracked and new, not ignored): a stale build/ cannot leak in
mkdir "$WORK/source"
git -C "$REPO" ls-files -co --exclude-standard -z | (cd "$REPO" && xargs -0 -r cp --parents -t "$WORK/source" 2>/dev/null || true)
"$BUILD_PIP" wheel --quiet --no-deps -w "$WORK/dist" "$WORK/source" 2>&1 | grep -v "^WARNING: Location" || true
WHEEL=$(ls "$WORK"/dist/boolnas-*.whl) || fail "no wheel was built"
echo "$WHEEL"

step "install it into a fresh virtual environment, with the deploy extra"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$WORK/venv/bin/pip" install --quiet -c "$REPO/.ci/constraints.txt" "$WHEEL[deploy]" 2>&1 \
  | grep -v "^WARNING: Location" || true
"$WORK/venv/bin/python" -c "import boolnas.search" || fail "the wheel did not install"
export PATH="$WORK/venv/bin:$PATH"
mkdir "$WORK/run"
cd "$WORK/run"   # nothing of the checkout is reachable from here
export OMP_NUM_THREADS=1

step "no generic top-level import names"
python - <<'PY'
import importlib.util, sys
generic = [n for n in ("space", "search", "evaluators", "conf") if importlib.util.find_spec(n) is not None]
sys.exit(f"generic top-level names installed: {generic}" if generic else 0)
PY

step "boolnas-energy arch=all format=json"
boolnas-energy arch=all format=json > energy.json
python - <<'PY'
import json
rows = json.load(open("energy.json"))
assert len(rows) == 7, f"expected the 7 presets, got {len(rows)}"
print(f"{len(rows)} presets:", ", ".join(r["arch"] for r in rows))
PY

step "a user's own hardware profile: --config-dir and energy_file="
mkdir -p myconf/energy
python - <<'PY'
import importlib.resources, yaml
profile = yaml.safe_load((importlib.resources.files("boolnas.conf") / "energy" / "boolnet65nm.yaml").read_text())
profile["name"] = "mychip"
profile["dram"]["access_pj"] *= 2
yaml.safe_dump(profile, open("myconf/energy/mychip.yaml", "w"))
PY
boolnas-energy arch=bireal18 format=json > default.json
boolnas-energy --config-dir myconf energy=mychip arch=bireal18 format=json > mychip.json
boolnas-energy energy_file=myconf/energy/mychip.yaml arch=bireal18 format=json > file.json
python - <<'PY'
import json
def total(path):
    return float(json.load(open(path))["total_uJ"])  # one architecture: one object
default, mine, file = total("default.json"), total("mychip.json"), total("file.json")
assert mine == file and mine > default, (default, mine, file)
print(f"bireal18: {default:.1f} uJ with the built-in profile, {mine:.1f} uJ with the user's (twice the DRAM access energy)")
PY

step "a 3-trial search on synthetic data"
boolnas-search study=smoke results_dir=results n_trials=3 seed_presets=false progress=false zero_cost=false \
  data=synthetic data.num_train=256 data.val_size=64 data.num_test=64 budget=tiny budget.num_threads=1
test -s results/smoke/report.html || fail "no report"
test -s results/smoke/trials.csv || fail "no trials.csv"

step "boolnas-export: the study's best, then ONNX with fresh weights"
boolnas-export study=smoke results_dir=results top_k=1 > exported.txt
ARCH=$(head -n 1 exported.txt)
test -s "$ARCH" || fail "boolnas-export wrote no architecture"
boolnas-export arch="$ARCH" task=fashion_mnist format=onnx out=deploy/model.onnx 2>&1 | tail -n 3
test -s deploy/model.onnx || fail "no model.onnx"

step "python -m boolnas.search --help"
python -m boolnas.search --help | head -n 3
echo "wheel check passed"
