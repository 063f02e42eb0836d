"""Served teacher collection (generate_rationales.py --task teacher_logprobs) against the fault server."""

import json
import os
import sys

import datasets
import numpy as np
import pytest

from lsrmwf.commands.generate_rationales import main as cli_main
from lsrmwf.io import InputError
from lsrmwf.io.logprobs import read_teacher_logprobs
from lsrmwf.llm.client import EndpointError, GenerationParams, LLMClient
from lsrmwf.llm.pipeline import RunStats, run_task
from lsrmwf.llm.teacher_logprobs import TeacherLogprobsTask, document_sha

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer, kill_after_rows  # noqa: E402

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
    assert row["summary"] == "Paper 1 proposes a parser." and row["document_sha"] == document_sha(DOCS[1])
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
        kill_after_rows([sys.executable, os.path.join(REPO, "generate_rationales.py"), "--base_url", srv.base_url, *args],
                        out, cwd=REPO)
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


# ----------------------------------------------------------------------------------------------
# --logprobs_target reference: the teacher's log-probs of the reference summary (echo on /v1/completions)
# ----------------------------------------------------------------------------------------------


def ref_ds(docs, refs):
    return datasets.Dataset.from_dict({"id": [f"d{i}" for i in range(len(docs))], "document": docs, "summary": refs})


def reference_task(k=3):
    return TeacherLogprobsTask(top_logprobs=k, api="completions", target="reference")


def test_reference_rows_carry_exactly_the_reference_tokens(tmp_path):
    """Prompt "Summarize:\\nA b.\\n\\nSummary:" + " It works rarely." echoed as vLLM does: <s> (no log-prob),
    'Summarize:', '\\nA', ' b.', '\\n\\nSummary:', ' It', ' works', ' rarely.'; token i has log-prob -(i % 8)/8,
    a 'rare' token -9 (then its K alternatives, not itself, are the top K)."""
    out = str(tmp_path / "ref.jsonl")
    ds = ref_ds(["A b."], ["It works rarely."])
    with FaultServer() as srv:
        summary = run_task(reference_task(), ds, client(srv.base_url), out, progress=False)
        (req,) = [r["body"] for r in srv.requests]
    assert req["prompt"] == "Summarize:\nA b.\n\nSummary: It works rarely."
    assert req["echo"] is True and req["max_tokens"] == 0 and req["logprobs"] == 3
    assert summary["file"]["target"] == "reference" and summary["file"]["tokens"] == 3
    row, tokens = read_teacher_logprobs(out)["d0"]
    assert row["target"] == "reference" and row["reference"] == "It works rarely." and row["params"]["target"] == "reference"
    assert row["reference_sha"] == document_sha("It works rarely.") and row["document_sha"] == document_sha("A b.")
    assert tokens.token_bytes == [b" It", b" works", b" rarely."]
    np.testing.assert_array_equal(tokens.token_logprobs.astype(float), [-5 / 8, -6 / 8, -9])
    assert tokens.top_bytes == [[b" It", b" alt1", b" alt2"], [b" works", b" alt1", b" alt2"], [b" alt1", b" alt2", b" alt3"]]
    np.testing.assert_array_equal(tokens.top_logprobs.astype(float), [[-5 / 8, -2, -3], [-6 / 8, -2, -3], [-2, -3, -4]])
    # a server that refuses max_tokens=0 is asked with 1 from then on; its generated token is left out
    out1 = str(tmp_path / "ref1.jsonl")
    with FaultServer(min_max_tokens=1) as srv:
        run_task(reference_task(), ds, client(srv.base_url), out1, progress=False)
        assert [r["body"]["max_tokens"] for r in srv.requests] == [0, 1]
    row1, tokens1 = read_teacher_logprobs(out1)["d0"]
    assert tokens1.token_bytes == tokens.token_bytes and row1["echo_max_tokens"] == 1
    np.testing.assert_array_equal(tokens1.top_logprobs, tokens.top_logprobs)


def test_reference_run_resumes_and_is_never_mixed_with_a_teacher_summary_run(tmp_path):
    out = str(tmp_path / "ref.jsonl")
    refs = [f"Topic {i} is parsed well." for i in range(len(DOCS))]
    with FaultServer() as srv:
        run_task(reference_task(), ref_ds(DOCS[:3], refs[:3]), client(srv.base_url), out, progress=False)
        stats = RunStats()
        run_task(reference_task(), ref_ds(DOCS, refs), client(srv.base_url), out, progress=False, stats=stats)
        assert sorted(stats.requested_ids) == ["d3", "d4", "d5"]  # the finished rows are not asked again
        with pytest.raises(InputError, match=r"different settings \(params target: file has \"reference\""):
            run_task(TeacherLogprobsTask(top_logprobs=3, api="completions"), make_ds(DOCS), client(srv.base_url), out,
                     progress=False)
    records = read_teacher_logprobs(out)
    assert sorted(records) == [f"d{i}" for i in range(6)] and len(rows(out)) == 6
    for i in range(6):
        row, tokens = records[f"d{i}"]
        assert b"".join(tokens.token_bytes).decode() == " " + refs[i] and row["target"] == "reference"


def test_a_server_that_ignores_echo_stops_the_run_before_any_row(tmp_path, capsys):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "document": d, "summary": f"Summary {i}."}) + "\n"
                            for i, d in enumerate(DOCS)))
    out = tmp_path / "ref.jsonl"
    args = ["--data_file", str(data), "--id_column", "id", "--model", "m", "--output", str(out), "--task", "teacher_logprobs",
            "--logprobs_target", "reference", "--top_logprobs", "3", "--concurrency", "2", "--no_progress"]
    with FaultServer(echo_mode="ignore") as srv:  # llama-server: generated tokens only, whatever echo says
        code = cli_main(["--base_url", srv.base_url, *args])
        err = capsys.readouterr().err
        assert code == 2
        assert srv.base_url in err and "vLLM" in err and "llama-server ignores echo" in err
    assert rows(out) == []  # no row, not even a failed one
    assert not os.path.exists(str(out) + ".bin") or os.path.getsize(str(out) + ".bin") == 0
    # reference scoring exists on /v1/completions only
    assert cli_main(["--base_url", "http://127.0.0.1:9/v1", *args, "--logprobs_api", "chat"]) == 2
    assert "--logprobs_api chat cannot" in capsys.readouterr().err
