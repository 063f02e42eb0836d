"""The resumable, concurrent generation loop and its two tasks (a third, the served teacher's
log-probs, lives in :mod:`lsrmwf.llm.teacher_logprobs`).

* :class:`RationaleTask` (paper steps 1-2): per document, a *dig* request (Tasks 1-3) and a
  *summarize* request (Tasks 4-5), then ROUGE-based selection (:mod:`lsrmwf.llm.selection`).
* :class:`FewShotReadingTask` (Basic Reading Distillation, the paper's form): per sentence and
  behaviour (``ner``, ``qra``), one few-shot plain-text request (:mod:`lsrmwf.llm.brd_prompts`); one row
  per request, id ``<doc_id>:<sentence index>:<behaviour>``.
* :class:`ReadingTask` (``--brd_format json``, the older form): per sentence, one JSON request for
  entities and questions+answers together.

:func:`run_task` drives either: it skips ids the output file already holds (same cache key),
keeps at most ``concurrency`` examples in flight, appends and flushes each row as it finishes,
shows a progress bar (rows/s, tokens/s, ETA) and returns a summary. A request or answer that fails
becomes a row with ``error`` set and ``keep: false``; it is retried on the next run.

A run-wide failure stops the run with :class:`RunFailure` instead of filling the file with failed
rows (:class:`FailurePolicy`): the first rows all failing with the same request error (connection
refused, HTTP 400 on every request, a hung server), or more than a set fraction of the rows failing.
"""

import asyncio
import hashlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, List, Optional

from ..data.sentences import split_lines_and_sentences as split_sentences
from ..io import InputError, iter_jsonl, write_jsonl_atomic
from ..io.store import ResultStore, cache_key, writer_lock
from . import brd_prompts, prompts
from .client import EndpointError, GenerationParams, LLMClient, RequestError, Usage, ask
from .parsing import (
    AnswerError,
    parse_ner_answer,
    parse_qra_answer,
    parse_rationales,
    parse_reading,
    parse_summaries,
    verbatim_flags,
)
from .selection import decide, select, stored_rouge, table1, word_counts

logger = logging.getLogger(__name__)


def truncate_words(text: str, max_words: Optional[int]) -> str:
    if max_words is None:
        return text
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


RAW_ANSWER_MAX_CHARS = 2000


class RunFailure(EndpointError):
    """Every request is failing (or too many rows did): the run stops; finished rows stay saved."""


@dataclass
class FailurePolicy:
    """When a run stops instead of writing failed rows.

    ``first_rows``: if the first this many finished rows all failed with the same kind of request
    error (same HTTP status, timeouts, refused connections), the endpoint is not working: stop with
    its own error text. ``max_failed_fraction``: once ``min_rows`` rows finished, stop as soon as
    more than this fraction of them failed (any failure, unusable answers included). 0 / 1.0 turn
    the checks off.
    """

    first_rows: int = 3
    max_failed_fraction: float = 0.5
    min_rows: int = 20

    def __post_init__(self):
        if self.first_rows < 0:
            raise InputError(f"--fail_fast_rows must be >= 0, got {self.first_rows}")
        if not 0.0 < self.max_failed_fraction <= 1.0:
            raise InputError(f"--max_failed_fraction must lie in (0, 1], got {self.max_failed_fraction}")

    def check(self, outcomes: List[Optional[tuple]]) -> Optional[str]:
        """``outcomes``: per finished row in order, ``None`` (finished) or ``(kind, message)``. Returns why to stop."""
        n = len(outcomes)
        if self.first_rows and n == self.first_rows and all(o is not None for o in outcomes):
            kinds = {o[0] for o in outcomes}
            if len(kinds) == 1 and next(iter(kinds)) != "answer":
                return (f"the first {n} rows all failed the same way ({outcomes[-1][0]}); the endpoint is not "
                        f"working: {outcomes[-1][1]}")
        failed_rows = sum(o is not None for o in outcomes)
        if self.max_failed_fraction < 1.0 and n >= self.min_rows and failed_rows > self.max_failed_fraction * n:
            return (f"{failed_rows} of {n} rows failed, more than --max_failed_fraction {self.max_failed_fraction:g}; "
                    "the last error: "
                    f"{outcomes[-1][1] if outcomes[-1] else next(o[1] for o in reversed(outcomes) if o)}")
        return None


def failed(row: dict, message: str, exc: Exception) -> dict:
    """Mark ``row`` failed; keep the model's last rejected answer (cut) for diagnosis."""
    row["error"] = message
    row["error_kind"] = getattr(exc, "kind", "answer")
    raw = getattr(exc, "raw_answer", None)
    if raw is not None:
        row["raw_answer"] = raw[:RAW_ANSWER_MAX_CHARS]
    return row


@dataclass
class Selection:
    score: str
    score_threshold: float
    score_on: str = "total"
    rouge_measure: str = "fmeasure"
    score2_terms: str = "rougeL"  # Score2's third term: rougeL or rouge3 (Eq. 8 as printed)

    def as_dict(self) -> dict:
        return {"score": self.score, "threshold": self.score_threshold, "score_on": self.score_on,
                "rouge_measure": self.rouge_measure, "score2_terms": self.score2_terms}


# ------------------------------------------------------------------------------------------------
# Tasks
# ------------------------------------------------------------------------------------------------


@dataclass
class RationaleTask:
    """Rationale digging and selection for documents with gold summaries."""

    selection: Selection
    rationales: str = "per_sentence"  # per_sentence | one
    max_rationales: int = 8
    max_document_words: Optional[int] = None
    name: str = "rationales"

    def settings(self) -> dict:
        return {"rationales": self.rationales, "max_rationales": self.max_rationales,
                "max_document_words": self.max_document_words, "schemas": prompts.schema_fingerprint()}

    def summary_units(self, summary: str) -> List[str]:
        """What one rationale is asked for: each gold summary sentence, or the whole summary."""
        if self.rationales == "one":
            return [" ".join(summary.split())]
        if self.rationales != "per_sentence":
            raise ValueError(f"rationales must be 'per_sentence' or 'one', not {self.rationales!r}")
        units = split_sentences(summary) or [" ".join(summary.split())]
        if len(units) > self.max_rationales:  # keep every word: the tail joins the last unit
            units = units[: self.max_rationales - 1] + [" ".join(units[self.max_rationales - 1:])]
        return units

    def items(self, ds) -> Iterable[dict]:
        for i, doc, summ in zip(ds["id"], ds["document"], ds["summary"]):
            yield {"id": i, "document": doc, "summary": summ}

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        params = client.params
        document = truncate_words(item["document"], self.max_document_words)
        units = self.summary_units(item["summary"])
        n = len(units)
        row = {"id": item["id"], "rationales": [], "sub_summaries": [], "summary": "", "rouge": None,
               "score": None, "keep": False}
        stage = "dig (tasks 1-3)"
        try:
            rationales = await ask(
                client, endpoint, prompts.dig_messages(document, units, params.json_mode),
                prompts.response_format(params.response_format, "rationales", prompts.dig_schema(n)),
                lambda text: parse_rationales(text, n), usage)
            stage = "summarize (tasks 4-5)"
            subs, total = await ask(
                client, endpoint, prompts.summarize_messages(document, rationales, params.json_mode),
                prompts.response_format(params.response_format, "summaries", prompts.summarize_schema(n)),
                lambda text: parse_summaries(text, n), usage)
        except (RequestError, AnswerError) as e:
            return failed(row, f"{stage}: {e}", e)
        flags = verbatim_flags(rationales, document)
        row.update(rationales=rationales, sub_summaries=subs, summary=total, as_verbatim=sum(flags), error=None)
        row.update(self.select(row, item["summary"]), **word_counts(item["document"], item["summary"]))
        return row

    def select(self, row: dict, reference: str) -> dict:
        s = self.selection
        out = select(row["sub_summaries"], row["summary"], reference, s.score, s.score_threshold, s.score_on,
                     s.rouge_measure, s.score2_terms)
        out["selection"] = s.as_dict()
        return out

    def reselect(self, store: ResultStore, ds) -> int:
        """Re-score finished rows whose selection settings differ from this run's (no LLM calls)."""
        current = self.selection.as_dict()
        stale = [r for r in store.done.values() if r.get("selection") != current]
        if not stale:
            return 0
        refs = dict(zip(ds["id"], zip(ds["document"], ds["summary"])))
        changed = 0
        rows = []
        for r in store.done.values():
            if r.get("selection") != current and r["id"] in refs:
                document, reference = refs[r["id"]]
                r = dict(r, **self.select(r, reference), **word_counts(document, reference))
                changed += 1
            rows.append(r)
        missing = len(stale) - changed
        if missing:
            logger.warning("%d finished rows are not in this dataset split and keep their old selection settings",
                           missing)
        store.rewrite_done(rows)
        return changed

    def file_summary(self, store: ResultStore) -> dict:
        rows = list(store.done.values())
        kept = sum(1 for r in rows if r.get("keep"))
        n_rationales = sum(len(r.get("rationales") or []) for r in rows)
        verbatim = sum(r.get("as_verbatim") or 0 for r in rows)
        return {
            "rows_done": len(rows), "kept": kept, "kept_fraction": round(kept / len(rows), 4) if rows else None,
            "rationales": n_rationales, "as_verbatim": verbatim,
            "as_verbatim_fraction": round(verbatim / n_rationales, 4) if n_rationales else None,
            "table1": table1(rows),
        }


@dataclass
class ReadingTask:
    """Basic reading (BRD): for each sentence, named entities and questions with answers."""

    context: str = "sentence"  # sentence | passage: what the prompt shows around the sentence
    max_document_words: Optional[int] = None
    name: str = "basic_reading"

    def settings(self) -> dict:
        return {"context": self.context, "max_document_words": self.max_document_words,
                "schemas": prompts.schema_fingerprint()}

    def items(self, ds) -> Iterable[dict]:
        if self.context not in ("sentence", "passage"):
            raise ValueError(f"context must be 'sentence' or 'passage', not {self.context!r}")
        for doc_id, doc in zip(ds["id"], ds["document"]):
            for k, sentence in enumerate(split_sentences(doc)):
                yield {"id": f"{doc_id}:{k}", "doc_id": doc_id, "sentence": sentence, "passage": doc}

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        params = client.params
        context = (item["sentence"] if self.context == "sentence"
                   else truncate_words(item["passage"], self.max_document_words))
        row = {"id": item["id"], "doc_id": item["doc_id"], "sentence": item["sentence"], "entities": [], "qa": []}
        try:
            entities, qa = await ask(
                client, endpoint, prompts.read_messages(context, item["sentence"], params.json_mode),
                prompts.response_format(params.response_format, "basic_reading", prompts.read_schema()),
                parse_reading, usage)
        except (RequestError, AnswerError) as e:
            return failed(row, f"basic reading: {e}", e)
        row.update(entities=entities, qa=qa, error=None)
        return row

    def reselect(self, store, ds) -> int:
        return 0

    def file_summary(self, store: ResultStore) -> dict:
        rows = list(store.done.values())
        return {"rows_done": len(rows), "entities": sum(len(r.get("entities") or []) for r in rows),
                "qa": sum(len(r.get("qa") or []) for r in rows)}


@dataclass
class FewShotReadingTask:
    """Basic reading as in the BRD paper: per sentence, NER and QRA as separate few-shot requests.

    Rows: ``{id: "<doc_id>:<k>:<behaviour>", doc_id, sentence_index: k, n_sentences, sentence,
    behaviour, answer (the cleaned plain text the composed passages use), entities | qa (parsed),
    brd_prompt_version}``. The cache key covers every behaviour the few-shot file defines, not
    only the chosen ones, so adding ``qra`` to a finished ``ner`` run resumes it.
    """

    fewshot: dict  # behaviour -> brd_prompts.FewShotPrompt
    behaviours: tuple = ("ner", "qra")
    name: str = "basic_reading"
    # "chat": the few-shot prompt as one user turn (the paper's Vicuna; a chat model's answer may span
    # paragraphs, and a run-on next example is cut by the parser); "completions": the prompt as raw
    # text for a base model to continue, stopped at the layout's blank line that ends every example.
    api: str = "chat"

    @property
    def prompt_version(self) -> str:
        blob = ",".join(f"{b}={p.version}" for b, p in sorted(self.fewshot.items()))
        return "brd-fewshot-" + hashlib.sha256(blob.encode()).hexdigest()[:10]

    def settings(self) -> dict:
        out = {"brd_format": "fewshot", "fewshot_versions": {b: p.version for b, p in sorted(self.fewshot.items())}}
        if self.api != "chat":  # older chat runs keep their cache key
            out["brd_api"] = self.api
        return out

    def items(self, ds) -> Iterable[dict]:
        for doc_id, doc in zip(ds["id"], ds["document"]):
            sentences = split_sentences(doc)
            for k, sentence in enumerate(sentences):
                for b in self.behaviours:
                    yield {"id": f"{doc_id}:{k}:{b}", "doc_id": doc_id, "sentence_index": k,
                           "n_sentences": len(sentences), "sentence": sentence, "behaviour": b}

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        b = item["behaviour"]
        prompt = self.fewshot[b]
        parse = parse_ner_answer if b == "ner" else parse_qra_answer
        row = {k: item[k] for k in ("id", "doc_id", "sentence_index", "n_sentences", "sentence", "behaviour")}
        row.update(answer=None, brd_prompt_version=prompt.version)
        try:
            parsed = await ask(client, endpoint, prompt.messages(item["sentence"]), None,
                               lambda text: parse(text, prompt.input_label, prompt.output_label), usage,
                               stop=[brd_prompts.PART_SEPARATOR] if self.api == "completions" else None,
                               completion_prompt=prompt.prompt(item["sentence"]) if self.api == "completions"
                               else None)
        except (RequestError, AnswerError) as e:
            return failed(row, f"basic reading ({b}): {e}", e)
        row.update(parsed, error=None)
        return row

    def reselect(self, store, ds) -> int:
        return 0

    def file_summary(self, store: ResultStore) -> dict:
        rows = list(store.done.values())
        count = {b: sum(1 for r in rows if r.get("behaviour") == b) for b in brd_prompts.BEHAVIOURS}
        return {"rows_done": len(rows), "ner_answers": count["ner"], "qra_answers": count["qra"],
                "entities": sum(len(r.get("entities") or []) for r in rows),
                "qa": sum(len(r.get("qa") or []) for r in rows)}


# ------------------------------------------------------------------------------------------------
# Runner
# ------------------------------------------------------------------------------------------------


@dataclass
class RunStats:
    pending: int = 0
    finished: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0
    interrupted: bool = False
    requested_ids: List[str] = field(default_factory=list)
    http_requests: int = 0  # every HTTP request sent, the client's retries included
    outcomes: List[Optional[tuple]] = field(default_factory=list)  # per finished row: None or (kind, error)
    stopped: Optional[str] = None  # why a run-wide failure stopped the run

    def as_dict(self) -> dict:
        el = max(self.elapsed_s, 1e-9)
        return {
            "this_run": {
                "pending": self.pending, "finished": self.finished, "failed": self.failed,
                "interrupted": self.interrupted, "stopped": self.stopped, **self.usage.as_dict(),
                "http_requests": self.http_requests, "total_tokens": self.usage.total_tokens,
                "elapsed_s": round(self.elapsed_s, 2), "rows_per_s": round(self.finished / el, 4),
                "tokens_per_s": round(self.usage.total_tokens / el, 2),
            }
        }


def run_settings(task, params: GenerationParams) -> dict:
    """What every row records and its cache key hashes (endpoint and concurrency excluded)."""
    version = getattr(task, "prompt_version", None) or prompts.PROMPT_VERSION
    return {"task": task.name, "model": params.model, "prompt_version": version,
            "params": {**params.as_dict(), **task.settings()}}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # both stop the same way; the command exits 130
DRAIN_S = 30.0  # after a signal, the longest wait for the rows in flight


async def _await_workers(workers) -> None:
    """Wait for every worker; a run-wide failure stops the others (their rows are retried next run)."""
    done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for t in done:
        if not t.cancelled():  # cancelled: a row still in flight when the drain ended (retried next run)
            t.result()


async def _drive(task, items: List[dict], client: LLMClient, store: ResultStore, concurrency: int,
                 stats: RunStats, progress: bool, policy: FailurePolicy, drain_s: float = DRAIN_S) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), unit="row", desc=task.name, disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    queue = iter(items)
    http_before = client.http_requests
    write_lock = asyncio.Lock()

    async def worker():
        for item in queue:  # a shared iterator: each item goes to exactly one worker
            if stop.is_set():
                return
            endpoint = client.pick_endpoint()
            usage = Usage()
            stats.requested_ids.append(item["id"])
            t0 = time.perf_counter()
            try:
                row = await task.process(item, client, endpoint, usage)
            finally:
                stats.usage.add(usage)  # sent requests count even when the run stops mid-row
                stats.http_requests = client.http_requests - http_before
            row.update(endpoint=client.base_urls[endpoint], usage=usage.as_dict(),
                       latency_s=round(time.perf_counter() - t0, 3))
            # fsync off the event loop (other requests keep flowing), one append at a time;
            # binary results (teacher log-probs) go to <output>.bin
            payload = row.pop("_payload", None)
            async with write_lock:
                await asyncio.to_thread(store.append, client.redact(row), payload)
            stats.finished += 1
            stats.failed += row["error"] is not None
            stats.outcomes.append(None if row["error"] is None else (row.get("error_kind", "answer"), row["error"]))
            el = time.perf_counter() - start
            bar.set_postfix(tok_s=f"{stats.usage.total_tokens / el:.0f}", failed=stats.failed, refresh=False)
            bar.update(1)
            reason = policy.check(stats.outcomes)
            if reason is not None:
                stats.stopped = client.redact(reason)
                raise RunFailure(stats.stopped)

    stop = asyncio.Event()

    async def cancel_after_drain():
        await stop.wait()
        await asyncio.sleep(drain_s)
        for t in workers:
            t.cancel()

    def on_signal(sig):
        if stop.is_set():  # a second signal: stop waiting for the requests in flight
            for t in workers:
                t.cancel()
            return
        stats.interrupted = True
        stop.set()
        logger.warning("%s: saving the rows in flight (waiting at most %g s; signal again to stop now), then stopping",
                       sig.name, drain_s)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(concurrency, len(items))))]
    loop, handled = asyncio.get_running_loop(), []
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
            handled.append(sig)
    drainer = asyncio.ensure_future(cancel_after_drain())
    try:
        await _await_workers(workers)
    finally:
        drainer.cancel()
        for sig in handled:
            loop.remove_signal_handler(sig)
        stats.elapsed_s = time.perf_counter() - start
        stats.http_requests = client.http_requests - http_before
        bar.close()


def rescore_file(path: str, selection: Selection, references: Optional[dict] = None) -> List[dict]:
    """Apply ``selection`` to every finished row of ``path`` from its stored ROUGE; no LLM.

    New rows store precision, recall and F1 of ROUGE-1/2/3/L of both LLM summaries, so any score,
    threshold, ``score_on``, measure or Score2 term needs nothing else. Older rows hold one measure of
    ROUGE-1/2/L: for another measure or ROUGE-3 give ``references`` (id -> (document, gold summary), from
    the dataset), from which every row's P/R/F (and Table 1's word counts) are recomputed. Returns all rows,
    rewritten atomically.
    """
    with writer_lock(path):  # no generating run may append while the file is rewritten
        return _rescore_locked(path, selection, references)


def _rescore_locked(path: str, selection: Selection, references: Optional[dict]) -> List[dict]:
    rows = [row for _, row in iter_jsonl(path, tolerate_torn_tail=True)]
    current = selection.as_dict()
    s = selection
    for k, r in enumerate(rows):
        if r.get("error") is not None:
            continue
        if not r.get("rouge_by_summary") and not r.get("rouge_prf_by_summary"):
            raise InputError(f"{path}: row {k + 1} (id {r.get('id')!r}) has no "
                             "rouge_by_summary; is this a rationale file?")
        if references is not None and r.get("id") in references:
            document, reference = references[r["id"]]
            r.update(select(r.get("sub_summaries") or [], r.get("summary") or "", reference, s.score,
                            s.score_threshold, s.score_on, s.rouge_measure, s.score2_terms),
                     **word_counts(document, reference))
        else:
            by = stored_rouge(r, s.rouge_measure, s.score2_terms)
            if by is None:
                measure = (r.get("selection") or {}).get("rouge_measure", "fmeasure")
                raise InputError(
                    f"{path}: row {k + 1} (id {r.get('id')!r}) stores only the {measure} of ROUGE-1/2/L (written "
                    f"before P/R/F of ROUGE-1/2/3/L were stored); for --rouge_measure {s.rouge_measure} "
                    f"--score2_terms {s.score2_terms} give --rescore the dataset "
                    f"(--dataset_name or --data_file, --split) to recompute from the references, without LLM calls")
            r.update(decide(by, s.score, s.score_threshold, s.score_on, s.score2_terms), rouge_by_summary=by)
        r["selection"] = current
    write_jsonl_atomic(path, rows)
    return rows


def run_task(task, ds, client: LLMClient, output: str, concurrency: int = 8, progress: bool = True,
             stats: Optional[RunStats] = None, policy: Optional[FailurePolicy] = None,
             drain_s: float = DRAIN_S) -> dict:
    """Generate ``task`` rows for every example of ``ds`` not yet in ``output``; return the summary.

    Ctrl-C or SIGTERM stops sending, waits up to ``drain_s`` for the rows in flight, saves what finished (the
    summary says ``interrupted``; a second signal stops at once); rerun to resume.
    A run-wide failure (``policy``) raises :class:`RunFailure` after saving what finished.
    Pass ``stats`` to inspect the run afterwards (e.g. ``stats.requested_ids``).
    """
    policy = policy if policy is not None else FailurePolicy()
    settings = run_settings(task, client.params)
    store = ResultStore(output, cache_key(settings), settings, payload=getattr(task, "payload", False))
    stats = stats if stats is not None else RunStats()
    with store:
        if store.cut_torn_tail:
            logger.warning("%s: cut off a torn last line left by an interrupted run", output)
        if store.dropped_failed:
            logger.info("%s: %d failed rows from an earlier run will be retried", output, store.dropped_failed)
        reselected = task.reselect(store, ds)
        if reselected:
            logger.info("%s: re-scored %d finished rows with this run's selection settings", output, reselected)
        items = [it for it in task.items(ds) if it["id"] not in store.done]
        stats.pending = len(items)
        logger.info("%s: %d rows already done, %d to generate", output, len(store.done), len(items))
        try:
            asyncio.run(_run_and_close(task, items, client, store, concurrency, stats, progress, policy, drain_s))
        except KeyboardInterrupt:
            stats.interrupted = True
        summary = stats.as_dict()
        summary["file"] = {"output": output, **task.file_summary(store)}
    return summary


async def _run_and_close(task, items, client, store, concurrency, stats, progress, policy, drain_s):
    try:
        await _drive(task, items, client, store, concurrency, stats, progress, policy, drain_s)
    finally:
        await client.close()


def format_run_summary(summary: dict) -> str:
    """The run summary of :func:`run_task` as the lines generate_rationales.py prints."""
    run, f = summary["this_run"], summary["file"]
    lines = [
        f"this run: {run['finished']}/{run['pending']} rows ({run['failed']} failed) in {run['elapsed_s']:.1f}s, "
        f"{run['rows_per_s']:.3f} rows/s, {run['total_tokens']} tokens ({run['tokens_per_s']:.0f} tokens/s), "
        f"{run['requests']} requests "
        f"({run['http_requests']} HTTP requests with the client's retries)"
        + (" [interrupted: rerun the same command to resume]" if run["interrupted"] else ""),
        f"{f['output']}: {f['rows_done']} finished rows",
    ]
    if "kept" in f:
        frac = "n/a" if f["kept_fraction"] is None else f"{100 * f['kept_fraction']:.1f}%"
        verb = "n/a" if f["as_verbatim_fraction"] is None else f"{100 * f['as_verbatim_fraction']:.1f}%"
        lines.append(f"kept {f['kept']} ({frac}; the paper kept 71% of CNN/DM, 62% of XSum); "
                     f"associated sentences verbatim in the document: {f['as_verbatim']}/{f['rationales']} ({verb})")
    elif "bytes_per_token" in f:
        bpt = "n/a" if f["bytes_per_token"] is None else f"{f['bytes_per_token']:.1f}"
        whose = "reference tokens scored by the teacher" if f.get("target") == "reference" else "teacher tokens"
        lines.append(f"{f['tokens']} {whose} with top-K log-probs in {f['output']}.bin: {f['payload_bytes']} bytes, "
                     f"{bpt} bytes per token")
    elif "unmappable" in f:
        lines.append(f"{f['mapped']} answers mapped to a choice ({f['mapping']}), {f['unmappable']} unmappable; "
                     f"teacher accuracy on the gold labels: {f['teacher_accuracy']}")
    elif "ner_answers" in f:
        lines.append(f"{f['ner_answers']} NER answers ({f['entities']} quoted entities), "
                     f"{f['qra_answers']} QRA answers "
                     f"({f['qa']} question-answer pairs); compose passages with compose_brd.py")
    else:
        lines.append(f"{f['entities']} entities, {f['qa']} question-answer pairs")
    if run["failed"]:
        lines.append(f"{run['failed']} rows failed (their 'error' field says why); "
                     "rerun the same command to retry them")
    return "\n".join(lines)
