"""Benchmark the rationale pipeline against a real local llama-server (Gemma 3 270M on CPU).

1. Throughput: the pipeline (``run_task``: cache keys, parsing, retries of bad answers, selection,
   JSONL writes, progress) vs a bare ``AsyncOpenAI`` loop replaying exactly the requests the
   pipeline sent (recorded in a first run) with the same concurrency. Temperature 0 on one slot
   gives nearly the same answers (llama.cpp's prompt-cache state can change a few tokens), so
   tokens/s is printed next to the wall-time ratio. Runs alternate (bare,
   pipeline, bare, ...) so neither side always meets a warmer server or a quieter machine; the
   ratio of summed wall times is printed (target >= 0.95).
2. Kill and resume: ``generate_rationales.py`` is started as a subprocess, killed with SIGKILL
   once some rows are written, and rerun; the number of requests the rerun sends for rows that
   were already finished is printed (target 0). Rows that had failed are retried by design.

    python bench/bench_rationales.py --docs 6 --repeats 2 --concurrency 2

Prints one JSON object at the end. Uses the aclsum papers (offline); documents are cut to
``--max_document_words`` so a CPU run takes minutes, not hours.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


@dataclass
class BenchArguments:
    docs: int = field(default=6, metadata={"help": "Documents per run."})
    repeats: int = field(default=2, metadata={"help": "Alternating bare/pipeline run pairs (0: only the kill-and-resume run)."})
    concurrency: int = field(default=2, metadata={"help": "Documents in flight (both sides)."})
    max_tokens: int = field(default=384, metadata={"help": "max_tokens per request."})
    max_document_words: int = field(default=120, metadata={"help": "Words of each document in the prompt."})
    base_url: Optional[str] = field(default=None, metadata={"help": "Use this server instead of starting llama-server."})
    threads: Optional[int] = field(default=None, metadata={"help": "llama-server CPU threads when the bench starts it."})
    parallel: int = field(default=1, metadata={"help": "llama-server slots when the bench starts it (1: deterministic, so both sides do identical work)."})
    kill_after_rows: int = field(default=3, metadata={"help": "Kill the resumable run once this many rows are written."})
    resume_docs: int = field(default=10, metadata={"help": "Documents in the kill-and-resume run."})


def load_docs(n: int, max_words: int):
    from lsrmwf.data.loading import load_documents
    from lsrmwf.llm.pipeline import truncate_words

    ds = load_documents("aclsum", split="train", max_examples=n)
    return ds.map(lambda r: {"document": truncate_words(r["document"], max_words)})


class RecordingClient:
    """Wraps an ``LLMClient`` and records each document's requests in order (to replay them bare)."""

    def __init__(self, client, log):
        self._client, self._log = client, log

    def __getattr__(self, name):
        return getattr(self._client, name)

    async def chat(self, endpoint, messages, response_format):
        import re

        doc = re.search(r"<document>\n(.*?)\n</document>", messages[1]["content"], re.S).group(1)
        self._log.setdefault(doc, []).append({"messages": messages, "response_format": response_format})
        return await self._client.chat(endpoint, messages, response_format)


async def bare_replay(base_url: str, model: str, requests_by_doc: dict, concurrency: int, max_tokens: int) -> dict:
    """The pipeline's exact requests, each document's in order, documents ``concurrency`` at a time,
    with a plain ``AsyncOpenAI`` client: no parsing, no selection, no JSONL, no progress bar."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="not-needed")
    sem = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(chain):
        nonlocal tokens
        async with sem:
            for req in chain:
                kwargs = {"response_format": req["response_format"]} if req["response_format"] else {}
                resp = await client.chat.completions.create(model=model, messages=req["messages"], temperature=0.0,
                                                            max_tokens=max_tokens, **kwargs)
                tokens += resp.usage.total_tokens

    start = time.perf_counter()
    await asyncio.gather(*(one(chain) for chain in requests_by_doc.values()))
    elapsed = time.perf_counter() - start
    await client.close()
    return {"elapsed_s": elapsed, "tokens": tokens}


def pipeline_run(base_url: str, model: str, ds, task, concurrency: int, max_tokens: int, output: str,
                 record: Optional[dict] = None) -> dict:
    from lsrmwf.llm.client import GenerationParams, LLMClient
    from lsrmwf.llm.pipeline import run_task

    client = LLMClient([base_url], None, GenerationParams(model=model, max_tokens=max_tokens))
    if record is not None:
        client = RecordingClient(client, record)
    start = time.perf_counter()
    summary = run_task(task, ds, client, output, concurrency=concurrency, progress=False)
    return {"elapsed_s": time.perf_counter() - start, "tokens": summary["this_run"]["total_tokens"],
            "requests": summary["this_run"]["requests"], "failed": summary["this_run"]["failed"], "kept": summary["file"]["kept"]}


def kill_and_resume(base_url: str, model: str, args: BenchArguments, workdir: str) -> dict:
    from lsrmwf.data.loading import load_documents
    from lsrmwf.llm.client import GenerationParams, LLMClient
    from lsrmwf.llm.pipeline import RationaleTask, RunStats, Selection, run_task

    data = os.path.join(workdir, "docs.jsonl")
    ds = load_docs(args.resume_docs, args.max_document_words)
    ds.to_json(data)
    out = os.path.join(workdir, "resume.jsonl")
    cmd = [sys.executable, os.path.join(REPO, "generate_rationales.py"), "--data_file", data, "--id_column", "id",
           "--base_url", base_url, "--model", model, "--preset", "cnndm", "--max_tokens", str(args.max_tokens),
           "--concurrency", str(args.concurrency), "--output", out, "--no_progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and (not os.path.exists(out) or open(out).read().count("\n") < args.kill_after_rows):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(out, "rb") as f:
        raw = f.read()
    before = [json.loads(line) for line in raw.split(b"\n") if line.strip().endswith(b"}")]
    done = {r["id"] for r in before if r["error"] is None}  # failed rows are retried by design
    stats = RunStats()
    client = LLMClient([base_url], None, GenerationParams(model=model, max_tokens=args.max_tokens))
    run_task(RationaleTask(Selection("score1", 0.85)), load_documents(data_file=data, id_column="id"), client, out,
             concurrency=args.concurrency, progress=False, stats=stats)
    with open(out) as f:
        ids = [json.loads(line)["id"] for line in f if line.strip()]
    return {
        "docs": args.resume_docs, "finished_rows_before_kill": len(done), "failed_rows_before_kill": len(before) - len(done),
        "rerun_requested_docs": len(stats.requested_ids),
        "resent_for_finished_rows": len(set(stats.requested_ids) & done),
        "final_rows": len(ids), "duplicate_ids": len(ids) - len(set(ids)),
    }


def main():
    from transformers import HfArgumentParser

    from lsrmwf.llm.pipeline import RationaleTask, Selection
    from lsrmwf.llm.server import LlamaServer

    (args,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on kill, too
    model = "gemma-3-270m"
    server = None
    if args.base_url is None:
        server = LlamaServer(parallel=args.parallel, threads=args.threads).start()
    base_url = args.base_url or server.base_url
    try:
        ds = load_docs(args.docs, args.max_document_words)
        task = RationaleTask(Selection("score1", 0.85))
        with tempfile.TemporaryDirectory() as tmp:
            if args.repeats == 0:  # kill-and-resume only
                print(json.dumps({"kill_and_resume": kill_and_resume(base_url, model, args, tmp)}, indent=2))
                return
            # recording run (also the warm-up): the exact requests the pipeline sends per document
            requests_by_doc = {}
            first = pipeline_run(base_url, model, ds, task, args.concurrency, args.max_tokens, os.path.join(tmp, "rec.jsonl"), requests_by_doc)
            print(f"recording run: {first}", file=sys.stderr, flush=True)
            bare, pipe = [], []
            for k in range(args.repeats):
                bare.append(asyncio.run(bare_replay(base_url, model, requests_by_doc, args.concurrency, args.max_tokens)))
                pipe.append(pipeline_run(base_url, model, ds, task, args.concurrency, args.max_tokens, os.path.join(tmp, f"p{k}.jsonl")))
                print(f"pair {k}: bare {bare[-1]['elapsed_s']:.1f}s ({bare[-1]['tokens']} tokens), "
                      f"pipeline {pipe[-1]['elapsed_s']:.1f}s ({pipe[-1]['tokens']} tokens)", file=sys.stderr, flush=True)
            t_bare = sum(r["elapsed_s"] for r in bare)
            t_pipe = sum(r["elapsed_s"] for r in pipe)
            resume = kill_and_resume(base_url, model, args, tmp)
    finally:
        if server is not None:
            server.stop()
    result = {
        "device": f"CPU ({os.cpu_count()} cores), llama-server (Gemma 3 270M Q4_K_M), -np {args.parallel}, threads {args.threads or 'default'}",
        "docs": args.docs, "repeats": args.repeats, "concurrency": args.concurrency, "max_tokens": args.max_tokens,
        "bare_docs_per_s": round(args.docs * args.repeats / t_bare, 4),
        "pipeline_docs_per_s": round(args.docs * args.repeats / t_pipe, 4),
        "throughput_ratio_pipeline_over_bare": round(t_bare / t_pipe, 3),
        # outputs can differ slightly between runs (llama.cpp's prompt-cache state), so also per token:
        "tokens_per_s_bare": round(sum(r["tokens"] for r in bare) / t_bare, 2),
        "tokens_per_s_pipeline": round(sum(r["tokens"] for r in pipe) / t_pipe, 2),
        "tokens_per_s_ratio_pipeline_over_bare": round((sum(r["tokens"] for r in pipe) / t_pipe) / (sum(r["tokens"] for r in bare) / t_bare), 3),
        "requests_per_run": first["requests"],
        "tokens_per_run_bare_vs_pipeline": [[b["tokens"], p["tokens"]] for b, p in zip(bare, pipe)],
        "pipeline_failed_rows": pipe[-1]["failed"], "pipeline_kept_rows": pipe[-1]["kept"],
        "kill_and_resume": resume,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
