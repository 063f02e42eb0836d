#!/usr/bin/env bash
# The test command: installs what the tests need (scripts/install.sh), then runs the whole suite
# on CPU, after the linter (ruff, see ruff.toml) and each demo's --check (a demo that cannot start
# turns it red): unit tests, the real llama.cpp server tests, 2-process gloo and DeepSpeed ZeRO-2 runs.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not llm_server"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VENV="${LSRMWF_VENV:-$PWD/.venv}"
export LLAMA_SERVER_BIN="$(PYTHON="$VENV/bin/python" bash scripts/build_llama_server.sh)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$VENV/bin/ruff" check . || { echo "test.sh: ruff found problems (ruff check . --fix repairs most)" >&2; exit 1; }
# every demo can start on this clone (the BRD demo's check fetches BIG-bench's task files once)
for demo in lsrmwf.demo lsrmwf.demo.causal lsrmwf.demo.brd; do
  "$VENV/bin/python" -m "$demo" --check || { echo "test.sh: python -m $demo cannot start (see above)" >&2; exit 1; }
done
exec "$VENV/bin/pytest" -ra "$@"
