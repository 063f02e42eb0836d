#!/usr/bin/env bash
# The paper's analyses at demo scale (CPU): Table 3 (views), Table 4 (gate init), Figure 5 (gamma);
# llm scores a test-split rationale file's S^tol as a system (Table 2's LLM rows).
#   bash scripts/analysis.sh views|gate_init|gamma|llm RATIONALE_FILE [OUTPUT_DIR] [-- full-scale train.py arguments]
# Each writes OUTPUT_DIR/results.md (and gamma.png); see python -m lsrmwf.analysis --help.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?views, gate_init, gamma or llm}; rationales=${2:?a rationale file for the training split}
out=${3:-analysis_output/$kind}
shift $(( $# < 3 ? $# : 3 ))
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m lsrmwf.analysis "$kind" --rationale_file "$rationales" --output_dir "$out" "$@"
