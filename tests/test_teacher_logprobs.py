"""Served teacher collection (generate_rationales.py --task teacher_logprobs) against the fault server."""

import json
import os
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest

from lsrmwf.commands.generate_rationales import main as cli_main
from lsrmwf.io.logprobs import read_teacher_logprobs
from lsrmwf.llm.client import EndpointError, GenerationParams, LLMClient
from lsrmwf.llm.pipeline import RunStats, run_task
from lsrmwf.llm.teacher_logprobs import TeacherLogprobsTask, document_sha
from lsrmwf.training.causal import document_hash

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [f"Paper {i} proposes a parser. It works well on topic {i}. More text follows." for i in range(6)]


def make_ds(docs):
    return datasets.Dataset.from_dict({"id": [f"d{i}" for i in range(len(docs))], "document": docs, "summary": [""] * len(docs)})


def client(url):
    return LLMClient([url], None, GenerationParams(model="teacher", max_tokens=64), timeout=5.0, max_retries=2)


def rows(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def test_collects_top_k_with_ids_and_resumes_without_asking_again(tmp_path):
    out = str(tmp_path / "t.jsonl")
    docs = DOCS + ["FAULT_500 " + DOCS[0]]
    with FaultServer() as srv:
        summary = run_task(TeacherLogprobsTask(top_logprobs=4), make_ds(docs), client(srv.base_url), out, concurrency=3, progress=False)
        assert all(r["body"]["logprobs"] is True and r["body"]["top_logprobs"] == 4 for r in srv.requests)
        stats = RunStats()
        run_task(TeacherLogprobsTask(top_logprobs=4), make_ds(docs), client(srv.base_url), out, progress=False, stats=stats)
    assert stats.requested_ids == []  # nothing asked twice
    assert summary["this_run"]["failed"] == 0  # the 500s were retried by the client
    f = summary["file"]
    assert f["rows_done"] == 7 and f["tokens"] > 0 and 0 < f["bytes_per_token"] < 80
    records = read_teacher_logprobs(out)
    row, tokens = records["d1"]
    assert row["summary"] == "Paper 1 proposes a parser." and row["document_sha"] == document_sha(DOCS[1]) == document_hash(DOCS[1])
    assert b"".join(tokens.token_bytes).decode() == row["summary"]
    assert tokens.has_ids and tokens.top_bytes is None and tokens.top_ids.shape == (len(tokens), 4)
    assert (tokens.top_ids[:, 0] == tokens.token_ids).all()
    np.testing.assert_allclose(tokens.top_logprobs[0].astype(float), [-0.25, -3, -4, -5], atol=1e-2)


def test_servers_without_ids_store_token_bytes(tmp_path):
    out = str(tmp_path / "t.jsonl")
    with FaultServer(with_ids=False) as srv:
        run_task(TeacherLogprobsTask(top_logprobs=3), make_ds(DOCS[:2]), client(srv.base_url), out, progress=False)
    _, tokens = read_teacher_logprobs(out)["d0"]
    assert not tokens.has_ids and tokens.top_bytes[0][1] == b" alt1"


def test_no_logprobs_and_too_large_k_stop_the_run_with_the_option_named(tmp_path):
    with FaultServer() as srv:
        with pytest.raises(EndpointError, match="no log-probabilities.*llama-server"):
            run_task(TeacherLogprobsTask(top_logprobs=2), make_ds(["FAULT_NOLOGPROBS " + DOCS[0]]), client(srv.base_url),
                     str(tmp_path / "a.jsonl"), progress=False)
    with FaultServer(max_top_logprobs=5) as srv:
        with pytest.raises(EndpointError, match="--top_logprobs 8 is more than the server allows"):
            run_task(TeacherLogprobsTask(top_logprobs=8), make_ds(DOCS[:1]), client(srv.base_url), str(tmp_path / "b.jsonl"), progress=False)


def test_cli_prints_bytes_per_token_and_kill_9_resumes_without_duplicates(tmp_path, capsys):
    data = tmp_path / "docs.jsonl"
    docs = [f"Document {i} starts here. It talks about topic {i}. It ends." for i in range(12)]
    data.write_text("".join(json.dumps({"id": f"d{i}", "document": d}) + "\n" for i, d in enumerate(docs)))
    out = tmp_path / "t.jsonl"
    args = ["--data_file", str(data), "--id_column", "id", "--model", "m", "--output", str(out), "--task", "teacher_logprobs",
            "--top_logprobs", "5", "--concurrency", "2", "--no_progress"]
    with FaultServer(delay_s=0.3) as srv:
        proc = subprocess.Popen([sys.executable, os.path.join(REPO, "generate_rationales.py"), "--base_url", srv.base_url, *args],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 240
        while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = {r["id"] for r in rows(out)}
        assert 3 <= len(before) < 12
        n_requests = len(srv.requests)
        code = cli_main(["--base_url", srv.base_url, *args])
        resent = {r["body"]["messages"][0]["content"] for r in srv.requests[n_requests:]}
    assert code == 0
    assert not any(docs[int(i[1:])] in text for i in before for text in resent)
    ids = [r["id"] for r in rows(out)]
    assert len(ids) == len(set(ids)) == 12
    assert len(read_teacher_logprobs(str(out))) == 12
    err = capsys.readouterr().err
    assert "bytes per token" in err
