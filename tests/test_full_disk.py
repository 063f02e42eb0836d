"""A full disk stops a command with one line naming the file and what was being written; the earlier rows and
the last complete checkpoint stay readable, and the rerun (with space again) completes (issue 28).

The disk is "full" through ``RLIMIT_FSIZE`` in the child process: Python ignores SIGXFSZ, so a write past the
limit fails with EFBIG (torch and safetensors raise their own errors for it)."""

import json
import os
import subprocess
import sys

import pytest
from test_distributed import ROOT, TINY
from test_llm_failures import HEALTHY, rows, write_docs

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer  # noqa: E402

LIMITED = "import resource, runpy, sys; n = int(sys.argv.pop(1)); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); " \
          "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def run(script, argv, limit=None, tmp_path=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=ROOT)
    cmd = [sys.executable, "-c", LIMITED, str(limit or 2**40), os.path.join(ROOT, script), *argv]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=570)


def one_error_line(proc, script):
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith(f"{script}: error:")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def test_a_full_disk_during_the_store_write_is_one_line_and_the_rerun_completes(tmp_path):
    data = write_docs(tmp_path / "docs.jsonl", [f"{HEALTHY} {i}" for i in range(8)])
    out = tmp_path / "r.jsonl"
    argv = ["--data_file", data, "--id_column", "id", "--model", "m", "--preset", "cnndm", "--output", str(out),
            "--concurrency", "1", "--no_progress"]
    with FaultServer() as srv:
        proc = run("generate_rationales.py", [*argv, "--base_url", srv.base_url], limit=12000)
        line = one_error_line(proc, "generate_rationales.py")
        assert f"{out}: disk full while writing row " in line and "File too large" in line
        kept = rows(out) if out.read_text().endswith("\n") else None  # a torn tail is cut on reopen
        proc = run("generate_rationales.py", [*argv, "--base_url", srv.base_url])
        assert proc.returncode == 0, proc.stderr[-3000:]
    final = rows(out)
    assert sorted(r["id"] for r in final) == [f"d{i}" for i in range(8)] and all(r["error"] is None for r in final)
    assert kept is None or len(kept) < 8


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_the_rerun_completes(tmp_path):
    out = tmp_path / "run"
    argv = [*TINY, "--output_dir", str(out), "--max_steps", "3", "--save_steps", "2", "--use_cpu", "--baseline",
            "--do_predict", "false"]
    proc = run("train.py", argv, limit=300_000)
    line = one_error_line(proc, "train.py")
    assert f"{out / 'checkpoint-2'}: disk full while writing the checkpoint of step 2" in line, line
    assert not (out / "checkpoint-2" / "checkpoint_complete.json").exists()
    proc = run("train.py", argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoint-3" / "checkpoint_complete.json").is_file() and (out / "model.safetensors").is_file()
    assert json.loads((out / "run_summary.json").read_text())["metrics"]["train_samples"] == 8
