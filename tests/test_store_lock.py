"""No second writer: each command line that appends to an output refuses to start while another
run holds the file's writer lock, naming the file and the holder's pid, before any work.
The lock is ``fcntl.flock`` on ``<output>.lock`` taken by ``lsrmwf.io.store.ResultStore.open()``.
"""

import fcntl
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tiny
from llm_fault_server import FaultServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = "The cat sat on the mat. The dog barked at night."


class HeldLock:
    """Another run writing ``path``: this process holds ``<path>.lock`` exclusively."""

    def __init__(self, path):
        self.path = f"{path}.lock"

    def __enter__(self):
        self.f = open(self.path, "a+")
        fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.f.seek(0)
        self.f.truncate()
        self.f.write(f"{os.getpid()}\n")
        self.f.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def run(cmd):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, *cmd], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO))
    return proc, time.monotonic() - t0


def assert_refused(proc, path, before):
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert str(path) in last and f"another run (pid {os.getpid()})" in last, last
    assert "Traceback" not in proc.stderr
    assert open(path).read() == before  # nothing appended, nothing rewritten


def _docs(tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "document": f"Doc {i} is here. It ends.", "summary": SUMMARY}) + "\n"
                            for i in range(3)))
    return data


@pytest.mark.parametrize("task", ["rationales", "basic_reading"])
def test_second_generate_rationales_run_exits_at_once(tmp_path, task):
    data = _docs(tmp_path)
    out = tmp_path / "out.jsonl"
    out.write_text("")
    with FaultServer() as srv, HeldLock(out):
        proc, took = run(["generate_rationales.py", "--task", task, "--data_file", str(data), "--id_column", "id",
                          "--preset", "cnndm", "--base_url", srv.base_url, "--model", "m", "--output", str(out),
                          "--no_progress"])
        assert srv.requests == []  # refused before the first request
    assert_refused(proc, out, "")


def test_second_evaluate_generation_exits_at_once(tmp_path):
    from transformers import BartConfig, BartForConditionalGeneration

    from lsrmwf.data.tokenization import train_bpe_tokenizer

    data = _docs(tmp_path)
    tok = train_bpe_tokenizer([f"Doc {i} is here. It ends." for i in range(3)] + [SUMMARY], vocab_size=300)
    model = BartForConditionalGeneration(BartConfig(**tiny.bart(
        vocab_size=len(tok), d_model=16, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16,
        max_position_embeddings=64)))
    ckpt = tmp_path / "m"
    model.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    out_dir = tmp_path / "eval"
    out_dir.mkdir()
    partial = out_dir / "generations.jsonl"
    partial.write_text("")
    with HeldLock(partial):
        proc, _ = run(["evaluate.py", "--model_name_or_path", str(ckpt), "--data_file", str(data), "--id_column", "id",
                       "--output_dir", str(out_dir), "--no_bertscore", "--num_beams", "1", "--max_length", "8",
                       "--min_length", "1", "--no_progress"])
    assert_refused(proc, partial, "")
