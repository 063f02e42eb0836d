#!/usr/bin/env bash
# The package checked and measured on one CUDA GPU, in under 8 minutes (each step has its own time limit):
#   bash scripts/gpu_check.sh OUTDIR [--wheels DIR] [--dry-run]
# Runs with the machine's own python3 (or $PYTHON) and its preinstalled torch/transformers/accelerate; never
# runs scripts/install.sh and needs no network: what is missing is installed from the wheels in --wheels DIR
# (pip --no-index --no-deps) into OUTDIR/site. Steps: versions, wheels, cuda-tests (pytest -m cuda),
# bench-model (bench/bench_model.py at bart-large width, bf16), bench-mc (the multiple-choice benchmark, if
# this checkout has it). Writes each step's log, gpu_check.json (what ran, passed, failed, timed out or was
# skipped) and the benchmark's JSON into OUTDIR.
# --dry-run (any machine, no GPU needed): lists the steps and the commands that fetch the wheels for the GPU
# machine's Python (GPU_PYTHON_VERSION, default 3.12; GPU_PRESENT=FILE, that machine's
# `pip list --format=freeze`, leaves out what it has), writes gpu_check.json, exits 0.
set -uo pipefail
die() { echo "gpu_check.sh: error: $*" >&2; exit 2; }
OUT="" WHEELS="" DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) [ $# -ge 2 ] || die "--wheels needs a folder"; WHEELS="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (usage: bash scripts/gpu_check.sh OUTDIR [--wheels DIR] [--dry-run])" ;;
    *) [ -z "$OUT" ] || die "one OUTDIR only, got $OUT and $1"; OUT="$1"; shift ;;
  esac
done
[ -n "$OUT" ] || die "OUTDIR missing (usage: bash scripts/gpu_check.sh OUTDIR [--wheels DIR] [--dry-run])"
[ -z "$WHEELS" ] || [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "no $PY here (set PYTHON to the interpreter that has torch)"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT/steps.jsonl" "$OUT/gpu_check.json"
SITE="$OUT/site"
export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false \
  HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
HELP="$REPO/scripts/gpu_check.py"
BUDGET=470  # seconds for all steps together; a step gets its own limit or what is left of this, the smaller
T0=$(date +%s)
cd "$REPO"

# step NAME LIMIT_S CMD...: runs CMD under `timeout`, its output in OUT/NAME.log (and on screen), and records it.
step() {
  local name="$1" limit="$2" left rc status t
  shift 2
  if [ "$DRY" = 1 ]; then
    printf '  %-12s limit %3ss  %s\n' "$name" "$limit" "$*"
    "$PY" "$HELP" record "$OUT" "$name" planned "" "" "$limit" -- "$@"
    return 0
  fi
  left=$(( BUDGET - ($(date +%s) - T0) ))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 5 ]; then
    echo "== $name: skipped, the ${BUDGET} s budget is spent"
    "$PY" "$HELP" record "$OUT" "$name" skipped "" "" 0 -- "$@"
    return 1
  fi
  echo "== $name (limit ${limit} s): $*"
  t=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  case "$rc" in 0) status=passed ;; 124|137) status=timeout ;; *) status=failed ;; esac
  echo "== $name: $status (rc $rc, $(( $(date +%s) - t )) s)"
  "$PY" "$HELP" record "$OUT" "$name" "$status" "$rc" "$(( $(date +%s) - t ))" "$limit" -- "$@"
  return "$rc"
}
skip() {  # skip NAME REASON
  echo "== $1: skipped: $2"
  "$PY" "$HELP" record "$OUT" "$1" skipped "" "" 0 -- "$2"
}

[ "$DRY" = 1 ] && echo "gpu_check (dry run): the steps it would run on a GPU machine, with their time limits:"
step versions 30 "$PY" "$HELP" versions "$OUT/versions.json"
rc=$?
if [ "$DRY" = 0 ] && [ "$rc" != 0 ]; then
  "$PY" "$HELP" summary "$OUT" >/dev/null
  [ "$rc" = 3 ] && die "no CUDA GPU here (torch.cuda.is_available() is False); on a CPU machine use --dry-run"
  die "could not read the versions (see $OUT/versions.log)"
fi
if [ -n "$WHEELS" ] || [ "$DRY" = 1 ]; then
  step wheels 60 "$PY" "$HELP" install "${WHEELS:-WHEELS_DIR}" "$SITE"
elif ! step wheels 60 "$PY" "$HELP" missing; then
  "$PY" "$HELP" summary "$OUT" >/dev/null
  die "missing packages $(grep -v '^#' "$OUT/wheels.log" | paste -sd, -): bring their wheels with --wheels DIR" \
    "(bash scripts/gpu_check.sh OUT --dry-run prints the commands that fetch them)"
fi
step cuda-tests 180 "$PY" -m pytest -m cuda -q -rs -p no:cacheprovider --timeout 150 \
  --junitxml "$OUT/cuda_tests.xml" tests/test_cuda.py tests/test_modeling.py tests/test_mixed_precision.py
step bench-model 150 "$PY" bench/bench_model.py --device cuda --bf16 --d_model 1024 --layers 12 --heads 16 \
  --vocab_size 50265 --batch_size 8 --source_length 1024 --target_length 128 --rationale_length 128 \
  --steps 3 --repeats 4 --gen_repeats 2 --output "$OUT/bench_model.json"
if [ -f bench/bench_multiple_choice.py ]; then
  step bench-mc 50 "$PY" bench/bench_multiple_choice.py --device cuda
else
  skip bench-mc "bench/bench_multiple_choice.py is not in this checkout (the multiple-choice benchmark has not landed)"
fi

if [ "$DRY" = 1 ]; then
  echo
  "$PY" "$HELP" wheels --python-version "${GPU_PYTHON_VERSION:-3.12}" ${GPU_PRESENT:+--present "$GPU_PRESENT"} \
    --json "$OUT/wheels.json" || die "could not list the wheels (see above)"
  echo "on the GPU machine: bash scripts/gpu_check.sh OUTDIR --wheels wheels"
  "$PY" "$HELP" summary "$OUT" dry
  exit 0
fi
"$PY" "$HELP" summary "$OUT"
