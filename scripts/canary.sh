#!/usr/bin/env bash
# Canary: the model and trainer tests against the NEWEST releases of the main dependencies, in a
# separate virtual environment, so a breaking release is seen the day it ships instead of on a
# user's fresh install. The tested set (constraints.txt) is not touched; torch stays at the lock's
# version (a newer PyPI torch is a multi-GB CUDA build on a CPU machine).
#
#   bash scripts/canary.sh             # exit 0: newest releases pass; 1: they fail (packages named)
#
# On success the canary venv's freeze is written to $LSRMWF_CACHE/canary-freeze.txt: copy it over
# constraints.txt (keeping the header) to move the lock forward.
set -uo pipefail
cd "$(dirname "$0")/.."
CACHE="${LSRMWF_CACHE:-$HOME/.cache/lsrmwf}"
VENV="${LSRMWF_CANARY_VENV:-$CACHE/canary-venv}"
PY_BOOT="${PYTHON:-python3}"
WATCH="transformers accelerate datasets tokenizers huggingface_hub deepspeed openai safetensors"
t0=$(date +%s)
step() { echo "[canary +$(( $(date +%s) - t0 ))s] $*"; }

mkdir -p "$CACHE"
[ -x "$VENV/bin/python" ] || { step "creating $VENV"; "$PY_BOOT" -m venv "$VENV" && "$VENV/bin/python" -m pip install -q --upgrade pip; }
PY="$VENV/bin/python"
torch_pin=$(grep -E '^torch==' constraints.txt)
step "installing $torch_pin, then the newest releases of: $WATCH"
"$PY" -m pip install -q "$torch_pin" || { echo "canary: could not install $torch_pin" >&2; exit 2; }
# Editable install without the lock; --upgrade-strategy eager moves every dependency to its newest release.
"$PY" -m pip install -q --upgrade --upgrade-strategy eager "$torch_pin" -e ".[dev]" $WATCH \
  || { echo "canary: pip could not install the newest releases (see above)" >&2; exit 2; }

newer=()
for pkg in $WATCH; do
  locked=$(grep -i -E "^${pkg//_/[-_]}==" constraints.txt | cut -d= -f3)
  now=$("$PY" -c "import importlib.metadata as m; print(m.version('$pkg'))" 2>/dev/null || echo "?")
  if [ "$locked" != "$now" ]; then newer+=("$pkg $now (lock: ${locked:-none})"); fi
done
if [ ${#newer[@]} -eq 0 ]; then step "no release newer than constraints.txt"; else
  step "newer than constraints.txt: $(IFS=', '; echo "${newer[*]}")"; fi

step "model and trainer tests on the newest releases"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
if "$VENV/bin/pytest" -q -p no:cacheprovider -m "not slow and not multiprocess and not llm_server" \
     tests/test_modeling.py tests/test_trainer.py; then
  "$PY" -m pip freeze | grep -v -i -E '^(-e|lsrmwf)' | sed 's/+cpu$//' > "$CACHE/canary-freeze.txt"
  step "PASSED on the newest releases; their freeze: $CACHE/canary-freeze.txt"
  exit 0
fi
echo "CANARY FAILED: the model/trainer tests fail with the newest releases: ${newer[*]:-(none newer than the lock: a test or environment problem)}" >&2
echo "  constraints.txt keeps installs on the tested set; fix the code for the new release, then move the lock." >&2
exit 1
