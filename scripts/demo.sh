#!/usr/bin/env bash
# The demo: installs what it needs (scripts/install.sh; first time ~15 min incl. compiling
# llama.cpp, then seconds), then runs LSR-MWF end to end offline on real ACL papers in about 20 min
# on 2 CPU cores. Arguments go to `python -m lsrmwf.demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VENV="${LSRMWF_VENV:-$PWD/.venv}"
export LLAMA_SERVER_BIN="$(PYTHON="$VENV/bin/python" bash scripts/build_llama_server.sh)"
exec "$VENV/bin/python" -m lsrmwf.demo "$@"
