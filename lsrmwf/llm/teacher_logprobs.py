"""A served teacher's summaries with the top-K log-probabilities of every generated token.

``generate_rationales.py --task teacher_logprobs --top_logprobs K`` asks any OpenAI-compatible
endpoint, per document, for the summary that follows ``--prompt_template`` (the study's
``"Summarize:\\n{document}\\n\\nSummary:"`` by default), through

* ``--logprobs_api chat`` (default): ``/v1/chat/completions`` with ``logprobs: true, top_logprobs: K``
  (llama-server, vLLM, OpenAI);
* ``--logprobs_api completions``: ``/v1/completions`` with ``logprobs: K`` (and llama-server's
  ``n_probs``), the template as raw text: right for base (non-instruct) teachers.

Each row (:class:`~lsrmwf.io.store.ResultStore`, same guarantees as rationale digging: concurrent,
retried, resumable after kill -9, nothing asked twice) holds the summary, ``finish_reason``,
``n_tokens``, ``document_sha`` and a binary payload (:mod:`lsrmwf.io.logprobs`: int32 ids + fp16
log-probs). ``train.py --teacher_logprobs_file`` trains on it (sparse top-K KD).

A server that returns no log-probs, or fewer alternatives than K, stops the run with the option
that enables them; finished rows stay.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

import numpy as np

from ..io.logprobs import TeacherTokens, pack_teacher_tokens
from .client import EndpointError, LLMClient, RequestError, Usage

NO_LOGPROBS_HINT = ("the server must return log-probabilities: llama-server returns them for 'logprobs'/'top_logprobs' "
                    "(chat) and 'n_probs' (completion); vLLM caps them with --max-logprobs (default 20); the OpenAI API "
                    "allows top_logprobs <= 20 on chat models only")
TOKEN_ID = re.compile(r"^token_id:(\d+)$")  # vLLM --return-tokens-as-token-ids


def document_sha(document: str) -> str:
    """The same hash as :func:`lsrmwf.training.causal.document_hash` (a row is tied to its document)."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()[:16]


def _token(entry: dict) -> Tuple[int, bytes]:
    tid = entry.get("id")
    text = entry.get("token") or ""
    if tid is None:
        m = TOKEN_ID.match(text)
        tid = int(m.group(1)) if m else -1
    raw = entry.get("bytes")
    return int(tid), bytes(raw) if raw is not None else text.encode("utf-8")


def parse_logprobs(choice: dict, k: int, where: str) -> TeacherTokens:
    """The per-token log-probs of one chat or completion choice (llama.cpp/vLLM/OpenAI shapes)."""
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if content is None and isinstance(lp, dict) and lp.get("tokens") is not None:  # legacy completions shape
        content = [{"token": t, "logprob": l, "top_logprobs": [{"token": a, "logprob": b} for a, b in (tops or {}).items()]}
                   for t, l, tops in zip(lp["tokens"], lp["token_logprobs"], lp.get("top_logprobs") or [{}] * len(lp["tokens"]))]
    if content is None:
        if choice.get("completion_probabilities") is not None:  # llama.cpp native /completion
            content = [{"id": c.get("id"), "token": c.get("token"), "bytes": c.get("bytes"), "logprob": c.get("logprob"),
                        "top_logprobs": c.get("top_logprobs") or c.get("probs") or []}
                       for c in choice["completion_probabilities"]]
        else:
            raise EndpointError(f"{where}: the answer carries no log-probabilities; {NO_LOGPROBS_HINT}")
    n = len(content)
    token_ids = np.full(n, -1, np.int32)
    token_lp = np.zeros(n, np.float16)
    top_ids = np.full((n, k), -1, np.int32)
    top_lp = np.zeros((n, k), np.float16)
    token_bytes: List[bytes] = []
    top_bytes: List[List[bytes]] = []
    most = 0
    for i, entry in enumerate(content):
        token_ids[i], b = _token(entry)
        token_bytes.append(b)
        token_lp[i] = entry.get("logprob", 0.0)
        alts = (entry.get("top_logprobs") or [])[:k]
        most = max(most, len(alts))
        row = []
        for j, a in enumerate(alts):
            top_ids[i, j], ab = _token(a)
            top_lp[i, j] = max(float(a.get("logprob", -1e4)), -6e4)  # fp16 range; -inf means "never"
            row.append(ab)
        top_bytes.append(row + [b""] * (k - len(row)))
    if n and most < k:
        raise EndpointError(f"{where}: asked for --top_logprobs {k}, the server returned at most {most} alternatives per "
                            f"token; use --top_logprobs {most} or raise the server's limit ({NO_LOGPROBS_HINT})")
    with_ids = n == 0 or (bool((token_ids >= 0).all()) and bool((top_ids[:, :most] >= 0).all()))
    if not with_ids:
        token_ids[:] = -1
        top_ids[:] = -1
    return TeacherTokens(token_ids, token_lp, top_ids, top_lp, token_bytes, None if with_ids else top_bytes)


@dataclass
class TeacherLogprobsTask:
    """Per document: the teacher's summary with its top-K log-probs (run by :func:`lsrmwf.llm.pipeline.run_task`)."""

    top_logprobs: int = 10
    prompt_template: str = "Summarize:\n{document}\n\nSummary:"
    api: str = "chat"  # chat | completions
    max_document_words: Optional[int] = None
    name: str = "teacher_logprobs"
    payload: bool = True  # rows carry a binary payload (ResultStore(payload=True))

    def settings(self) -> dict:
        return {"top_logprobs": self.top_logprobs, "prompt_template": self.prompt_template, "api": self.api,
                "max_document_words": self.max_document_words}

    def items(self, ds) -> Iterable[dict]:
        for i, doc in zip(ds["id"], ds["document"]):
            yield {"id": i, "document": doc}

    def prompt(self, document: str):
        words = document.split()
        if self.max_document_words is not None and len(words) > self.max_document_words:
            document = " ".join(words[: self.max_document_words])
        text = self.prompt_template.format(document=document)
        return [{"role": "user", "content": text}] if self.api == "chat" else text

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        row = {"id": item["id"], "document_sha": document_sha(item["document"]), "summary": "", "n_tokens": 0}
        where = client.base_urls[endpoint]
        usage.requests += 1  # counted when sent, so failed requests count too
        try:
            resp = await client.with_logprobs(endpoint, self.api, self.prompt(item["document"]), self.top_logprobs)
        except RequestError as e:
            if "HTTP 400" in str(e) and "logprob" in str(e).lower():
                raise EndpointError(f"{e}; --top_logprobs {self.top_logprobs} is more than the server allows "
                                    f"({NO_LOGPROBS_HINT})") from None
            row["error"] = f"teacher summary: {e}"
            return row
        u = resp.get("usage") or {}
        usage.add(Usage(0, u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0))
        choices = resp.get("choices") or []
        if not choices:
            row["error"] = f"teacher summary: {where}: the response has no choices"
            return row
        choice = choices[0]
        text = (choice.get("message") or {}).get("content") if self.api == "chat" else choice.get("text")
        tokens = parse_logprobs(choice, self.top_logprobs, where)
        row.update(summary=(text or "").strip(), finish_reason=choice.get("finish_reason"), n_tokens=len(tokens),
                   has_ids=tokens.top_bytes is None, error=None, _payload=pack_teacher_tokens(tokens))
        return row

    def reselect(self, store, ds) -> int:
        return 0

    def file_summary(self, store) -> dict:
        rows = list(store.done.values())
        tokens = sum(r.get("n_tokens") or 0 for r in rows)
        payload = sum((r.get("payload") or {}).get("length", 0) for r in rows)
        return {"rows_done": len(rows), "tokens": tokens, "payload_bytes": payload,
                "bytes_per_token": round(payload / tokens, 2) if tokens else None}
