"""Run-wide LLM failures stop the run (refused, 400 everywhere, hung, too many failed rows), the
summary counts what was really sent, and the API key never leaves the process, whatever the
server echoes. All against the fake OpenAI-compatible server in llm_fault_server.py."""

import json
import logging
import os
import socket
import sys
import time

from lsrmwf.commands.generate_rationales import main as cli_main
from lsrmwf.llm.arguments import EndpointArguments
from lsrmwf.llm.client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, GenerationParams, LLMClient, RedactingFilter
from lsrmwf.llm.pipeline import FailurePolicy, RationaleTask, RunStats, Selection, run_task

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer  # noqa: E402

SUMMARY = "The cat sat on the mat. The dog barked at night."
HEALTHY = "The cat sat on the mat. It was a sunny day. The dog barked at night."
KEY = "sk-live-SECRET-7f3a9c"


def write_docs(path, docs):
    path.write_text("".join(json.dumps({"id": f"d{i}", "document": d, "summary": SUMMARY}) + "\n" for i, d in enumerate(docs)))
    return str(path)


def cli(tmp_path, docs, base_url, *extra):
    data = write_docs(tmp_path / "docs.jsonl", docs)
    out = tmp_path / "r.jsonl"
    code = cli_main(["--data_file", data, "--id_column", "id", "--base_url", base_url, "--model", "m", "--preset", "cnndm",
                     "--output", str(out), "--concurrency", "1", "--no_progress", *extra])
    return code, out


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_refused_connection_stops_after_the_first_rows_with_rc_1(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    t0 = time.monotonic()
    code, out = cli(tmp_path, [HEALTHY] * 8, url, "--timeout", "2", "--max_retries", "1")
    err = capsys.readouterr().err
    assert code == 1, err
    assert time.monotonic() - t0 < 60
    assert "the first 3 rows all failed the same way (connection)" in err
    assert "Connection refused" in err or "connect" in err.lower()
    # 3 rows, one request each (the dig request), each sent twice (one retry): the summary says so
    assert "stopped after 3 rows (3 failed), 3 requests (6 HTTP requests)" in err
    assert len(rows(out)) == 3 and all(r["error"] for r in rows(out))
    assert "Traceback" not in err


def test_http_400_on_every_request_stops_with_the_servers_own_text(tmp_path, capsys):
    with FaultServer() as srv:
        code, out = cli(tmp_path, [f"FAULT_400_ALWAYS {HEALTHY} {i}" for i in range(10)], srv.base_url)
        sent = len(srv.requests)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "failed the same way (HTTP 400)" in err
    assert "response_format json_schema is not supported by this model" in err  # the server's words
    assert sent == 3 and "3 requests (3 HTTP requests)" in err  # a 400 is not retried


def test_a_hung_server_costs_the_timeout_not_an_hour(tmp_path, capsys):
    with FaultServer(hang_s=20) as srv:
        t0 = time.monotonic()
        code, _ = cli(tmp_path, [f"FAULT_HANG {HEALTHY} {i}" for i in range(6)], srv.base_url, "--timeout", "1",
                      "--max_retries", "0")
        took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 1, err
    assert "failed the same way (timeout)" in err and "timed out after 1s and 0 retries" in err
    assert took < 15


def test_default_timeout_fits_a_slow_local_model_but_not_an_hour():
    args = EndpointArguments()
    assert (args.timeout, args.max_retries) == (DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)
    assert args.timeout >= 120  # a 1024-token answer at ~5 tokens/s on CPU
    assert args.timeout * (args.max_retries + 1) <= 15 * 60


def test_too_many_failed_rows_stop_the_run(tmp_path, capsys):
    # healthy first, then two of every three rows unusable: the first-rows check does not fire,
    # the fraction does once 20 rows finished (13 failed > 0.5 x 20)
    docs = [HEALTHY if i % 3 == 0 else f"FAULT_LENGTH_ALWAYS {HEALTHY} {i}" for i in range(30)]
    with FaultServer() as srv:
        code, out = cli(tmp_path, docs, srv.base_url)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "13 of 20 rows failed, more than --max_failed_fraction 0.5" in err and "cut off at max_tokens" in err
    assert len(rows(out)) == 20
    with FaultServer() as srv:  # and it can be switched off
        code, out = cli(tmp_path, docs, srv.base_url, "--max_failed_fraction", "1.0")
    ids = [r["id"] for r in rows(out)]
    assert code == 0 and len(ids) == len(set(ids)) == 30  # the stopped run's 13 failed rows retried, 10 new


def test_unusable_answers_alone_do_not_trigger_the_first_rows_check():
    policy = FailurePolicy()
    assert policy.check([("answer", "bad")] * 3) is None
    assert policy.check([("HTTP 500", "x"), ("HTTP 500", "y"), ("timeout", "z")]) is None
    assert "HTTP 500" in policy.check([("HTTP 500", "x")] * 3)
    assert policy.check([None, ("HTTP 500", "x"), ("HTTP 500", "x")]) is None


def test_summary_counts_every_request_and_token(tmp_path):
    stats = RunStats()
    ds_docs = [HEALTHY, f"FAULT_500 {HEALTHY}", f"FAULT_400_ALWAYS {HEALTHY}"]
    import datasets

    ds = datasets.Dataset.from_dict({"id": ["a", "b", "c"], "document": ds_docs, "summary": [SUMMARY] * 3})
    with FaultServer() as srv:
        client = LLMClient([srv.base_url], None, GenerationParams(model="m", max_tokens=256), timeout=5, max_retries=2)
        summary = run_task(RationaleTask(Selection("score1", 0.85)), ds, client, str(tmp_path / "r.jsonl"),
                           concurrency=1, progress=False, stats=stats)
        sent = len(srv.requests)
    run = summary["this_run"]
    # a: dig + summarize; b: dig and summarize, each two 500s then ok (3 HTTP each); c: one 400 on dig
    assert (run["requests"], run["http_requests"]) == (5, sent) == (5, 2 + 6 + 1)
    assert run["prompt_tokens"] == 4 * 100 and run["completion_tokens"] == 4 * 20  # only answered requests have usage
    assert run["failed"] == 1


# -- secrets ---------------------------------------------------------------------------------------


def test_an_echoed_api_key_is_redacted_from_rows_stderr_and_stdout(tmp_path, capsys):
    docs = [HEALTHY, f"FAULT_500_ALWAYS {HEALTHY}", f"FAULT_ECHO {HEALTHY}", f"FAULT_400_ALWAYS {HEALTHY}"]
    with FaultServer(echo_auth=True) as srv:
        code, out = cli(tmp_path, docs, srv.base_url, "--api_key", KEY, "--max_retries", "0")
        assert all(r["auth"] == f"Bearer {KEY}" for r in srv.requests)  # the key was sent, and echoed back
    captured = capsys.readouterr()
    text = out.read_text()
    assert code == 0, captured.err
    assert KEY not in text and KEY not in captured.err and KEY not in captured.out
    errors = {r["id"]: r for r in rows(out)}
    assert "Authorization: Bearer <redacted>" in errors["d1"]["error"]  # the 500's echo
    assert "<redacted>" in errors["d2"]["raw_answer"] and "<redacted>" in errors["d3"]["error"]


def test_an_echoed_key_in_a_fatal_error_and_in_env_is_redacted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FaultServer(echo_auth=True) as srv:
        code, _ = cli(tmp_path, [f"FAULT_401 {HEALTHY}"], srv.base_url)
    err = capsys.readouterr().err
    assert code == 2 and "HTTP 401: invalid api key" in err and "Bearer <redacted>" in err and KEY not in err


def test_log_lines_are_redacted():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "server said %s", (f"Bearer {KEY}",), None)
    RedactingFilter([KEY]).filter(record)
    assert record.getMessage() == "server said Bearer <redacted>"
