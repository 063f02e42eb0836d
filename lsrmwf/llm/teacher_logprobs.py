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

``--logprobs_target reference`` scores the dataset's reference summary instead (the teacher's
top-K at each of the reference's tokens, for KD on the reference rather than on the teacher's own
summary): the prompt followed by the reference (:func:`lsrmwf.data.causal.summary_text`, as the
student sees it after a plain template) goes to ``/v1/completions`` with ``echo=true``,
``logprobs=K`` and ``max_tokens=0``, and only the tokens from the reference's start on are kept
(:func:`reference_logprobs`). The rows carry ``target: "reference"`` and ``reference_sha``, and
the run's settings (its cache key) hold the target, so a reference file never resumes a
teacher-summary run or the other way round. A server that does not score given text (llama-server
ignores ``echo``) is detected on its first answer and stops the run before any row is written.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

import numpy as np

from ..data.causal import summary_text
from ..io.logprobs import TARGETS, TeacherTokens, pack_teacher_tokens
from .client import EndpointError, LLMClient, RequestError, Usage
from .scoring import TOKEN_ID, ScoringError, locate_continuation  # noqa: F401  (ScoringError: re-exported)

logger = logging.getLogger("lsrmwf.llm")

NO_LOGPROBS_HINT = ("the server must return log-probabilities: llama-server returns them for "
                    "'logprobs'/'top_logprobs' (chat) and 'n_probs' (completion); vLLM caps them with "
                    "--max-logprobs (default 20); the OpenAI API allows top_logprobs <= 20 on chat models only")
NO_ECHO_HINT = ("scoring the reference (--logprobs_target reference) needs a server that returns the log-probs of the "
                "prompt's own tokens for echo=true on /v1/completions, such as vLLM; llama-server ignores echo and "
                "scores only the tokens it generates, so it cannot "
                "be used for this (collect the teacher's own summaries there: --logprobs_target teacher_summary)")

ON_POLICY_NO_ECHO_HINT = ("on-policy samples scored by a served teacher need a server that returns the log-probs "
                          "of the prompt's own tokens for echo=true on /v1/completions, such as vLLM; llama-server "
                          "ignores echo and scores only the tokens it generates (serve the teacher with vLLM, or "
                          "train without --kd_on_policy_lambda)")


def document_sha(document: str) -> str:
    """The package's one document hash: ties a stored row to its document (train.py's sparse KD checks it)."""
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
        # a dict per token, most probable first: vLLM puts the token itself first and then the top K, K+1
        # entries when the token is not among them
        content = [{"token": t, "logprob": l,
                    "top_logprobs": [{"token": a, "logprob": b} for a, b in _by_logprob(tops)]}
                   for t, l, tops in zip(lp["tokens"], lp["token_logprobs"], lp.get("top_logprobs")
                                         or [{}] * len(lp["tokens"]))]
    if content is None:
        if choice.get("completion_probabilities") is not None:  # llama.cpp native /completion
            content = [{"id": c.get("id"), "token": c.get("token"), "bytes": c.get("bytes"),
                        "logprob": c.get("logprob"),
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
        raise EndpointError(f"{where}: asked for --top_logprobs {k}, the server returned at most {most} alternatives "
                            f"per token; use --top_logprobs {most} or raise the server's limit ({NO_LOGPROBS_HINT})")
    with_ids = n == 0 or (bool((token_ids >= 0).all()) and bool((top_ids[:, :most] >= 0).all()))
    if not with_ids:
        token_ids[:] = -1
        top_ids[:] = -1
    return TeacherTokens(token_ids, token_lp, top_ids, top_lp, token_bytes, None if with_ids else top_bytes)


def _by_logprob(tops: Optional[dict]) -> List[Tuple[str, float]]:
    items = list((tops or {}).items())
    return sorted(items, key=lambda kv: -(kv[1] if kv[1] is not None else float("-inf")))  # stable: ties keep order


def reference_logprobs(choice: dict, text: str, reference: str, k: int, where: str,
                       prompt_tokens: Optional[int] = None, generated: int = 0,
                       hint: str = NO_ECHO_HINT) -> TeacherTokens:
    """The teacher's tokens of ``reference`` with their top-K log-probs, from an ``echo=true`` completion of
    ``text`` (the prompt followed by ``reference``) in the legacy shape (``tokens``, ``token_logprobs``,
    ``top_logprobs``, ``text_offset``).

    ``prompt_tokens`` (the answer's ``usage.prompt_tokens``) or else ``generated`` (how many tokens the
    server generated after the echo: ``max_tokens``) says where the echoed text ends. Raises
    :class:`EndpointError` when the answer holds no log-probs of the prompt's tokens (the server does not
    score given text), :class:`ScoringError` when the tokens do not spell the reference.
    """
    lp, start, n = locate_continuation(choice, text, reference, where, hint, prompt_tokens, generated)
    tokens = lp["tokens"]
    piece = "".join(t or "" for t in tokens[start:n])
    if piece != reference:
        at = next((i for i, (a, b) in enumerate(zip(piece, reference)) if a != b), min(len(piece), len(reference)))
        raise ScoringError(f"the teacher's tokens from the reference's start spell "
                           f"{piece[max(0, at - 20): at + 20]!r} where the reference has "
                           f"{reference[max(0, at - 20): at + 20]!r} (character {at}); "
                           f"a token the server reports as part of a character (byte fallback) cannot be matched")
    values = (lp.get("token_logprobs") or [None] * len(tokens))[start:n]
    if any(v is None for v in values):
        raise ScoringError(f"the server gave no log-prob for reference token {values.index(None)}")
    tops = (lp.get("top_logprobs") or [None] * len(tokens))[start:n]
    return parse_logprobs({"logprobs": {"tokens": tokens[start:n], "token_logprobs": values, "top_logprobs": tops}},
                          k, where)



def _first_choice(resp, where: str):
    """The response's first choice, or the error text (a string) of a failed request or an empty answer."""
    if isinstance(resp, str):
        return resp
    choices = resp.get("choices") or []
    return choices[0] if choices else f"{where}: the response has no choices"

@dataclass
class TeacherLogprobsTask:
    """Per document: the teacher's summary with its top-K log-probs, or (``target="reference"``) the teacher's
    top-K log-probs at each token of the reference summary (run by :func:`lsrmwf.llm.pipeline.run_task`)."""

    top_logprobs: int = 10
    prompt_template: str = "Summarize:\n{document}\n\nSummary:"
    api: str = "chat"  # chat | completions (reference: completions)
    max_document_words: Optional[int] = None
    target: str = "teacher_summary"  # teacher_summary | reference
    name: str = "teacher_logprobs"
    payload: bool = True  # rows carry a binary payload (ResultStore(payload=True))
    # Reference scoring asks for max_tokens=0 (vLLM, like the OpenAI API, then echoes the prompt and generates
    # nothing); a server that refuses 0 with HTTP 400 is asked with 1 from then on, the generated token dropped.
    echo_max_tokens: int = field(default=0, repr=False)

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {self.target!r}")
        if self.target == "reference" and self.api != "completions":
            raise ValueError("scoring the reference needs api='completions' (echo exists there only)")

    def settings(self) -> dict:
        out = {"top_logprobs": self.top_logprobs, "prompt_template": self.prompt_template, "api": self.api,
               "max_document_words": self.max_document_words}
        if self.target != "teacher_summary":  # files written before targets existed keep their cache key
            out["target"] = self.target
        return out

    def items(self, ds) -> Iterable[dict]:
        if self.target == "reference":
            for i, doc, summ in zip(ds["id"], ds["document"], ds["summary"]):
                yield {"id": i, "document": doc, "summary": summ}
        else:
            for i, doc in zip(ds["id"], ds["document"]):
                yield {"id": i, "document": doc}

    def prompt(self, document: str):
        words = document.split()
        if self.max_document_words is not None and len(words) > self.max_document_words:
            document = " ".join(words[: self.max_document_words])
        text = self.prompt_template.format(document=document)
        return [{"role": "user", "content": text}] if self.api == "chat" else text

    async def _ask(self, item: dict, client: LLMClient, endpoint: int, usage: Usage, text=None):
        """``(answer, echo_max_tokens)``: the answer as a dict, or a failed request's error message (a str), and
        the ``max_tokens`` it was asked with when scoring ``text`` (echo)."""
        while True:
            echo = self.echo_max_tokens if text is not None else None
            usage.requests += 1  # counted when sent, so failed requests count too
            try:
                resp = await client.with_logprobs(endpoint, self.api, text if text is not None
                                                  else self.prompt(item["document"]),
                                                  self.top_logprobs, echo_max_tokens=echo)
                break
            except RequestError as e:
                if echo == 0 and e.kind == "HTTP 400":
                    if self.echo_max_tokens == 0:
                        logger.info("%s refused max_tokens=0 with echo (%s); asking with max_tokens=1 from now on and "
                                    "dropping the generated token", client.base_urls[endpoint], e)
                    self.echo_max_tokens = 1
                    continue
                if "HTTP 400" in str(e) and "logprob" in str(e).lower():
                    raise EndpointError(f"{e}; --top_logprobs {self.top_logprobs} is more than the server allows "
                                        f"({NO_LOGPROBS_HINT})") from None
                return str(e), echo
        u = resp.get("usage") or {}
        usage.add(Usage(0, u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0))
        return resp, echo

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        if self.target == "reference":
            return await self._score_reference(item, client, endpoint, usage)
        row = {"id": item["id"], "document_sha": document_sha(item["document"]), "summary": "", "n_tokens": 0}
        where = client.base_urls[endpoint]
        resp, _ = await self._ask(item, client, endpoint, usage)
        choice = _first_choice(resp, where)
        if isinstance(choice, str):
            row["error"] = f"teacher summary: {choice}"
            return row
        text = (choice.get("message") or {}).get("content") if self.api == "chat" else choice.get("text")
        tokens = parse_logprobs(choice, self.top_logprobs, where)
        row.update(summary=(text or "").strip(), finish_reason=choice.get("finish_reason"), n_tokens=len(tokens),
                   has_ids=tokens.top_bytes is None, error=None, _payload=pack_teacher_tokens(tokens))
        return row

    async def _score_reference(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        reference = summary_text(item["summary"], use_chat_template=False)  # " " + reference, as the student sees it
        row = {"id": item["id"], "document_sha": document_sha(item["document"]), "target": "reference",
               "reference": reference.strip(), "reference_sha": document_sha(item["summary"].strip()), "n_tokens": 0}
        where = client.base_urls[endpoint]
        try:
            tokens, max_tokens = await self.score_text(item["document"], reference, client, endpoint, usage)
        except RequestError as e:
            row["error"] = f"reference scoring: {e}"
            return row
        except ScoringError as e:
            row["error"] = f"reference scoring: {where}: {e}"
            return row
        row.update(n_tokens=len(tokens), has_ids=tokens.top_bytes is None, echo_max_tokens=max_tokens, error=None,
                   _payload=pack_teacher_tokens(tokens))
        return row

    async def score_text(self, document: str, continuation: str, client: LLMClient, endpoint: int, usage: Usage,
                         hint: str = NO_ECHO_HINT) -> Tuple[TeacherTokens, int]:
        """``(tokens, max_tokens)``: the teacher's tokens of ``continuation`` after this task's prompt of
        ``document``, with their top-K log-probs, and the ``max_tokens`` the echo request was sent with (``hint``:
        what an error about a server that does not score given text says to do).

        Raises :class:`RequestError` (the request failed after the client's retries), :class:`EndpointError`
        (the server does not score given text) or :class:`ScoringError` (its tokens do not spell ``continuation``).
        """
        # echo + logprobs (the OpenAI completions API's way of scoring given text, which vLLM implements) rather
        # than vLLM's own `prompt_logprobs` extra field: it is not tied to one server, its answer has the shape
        # parse_logprobs already reads, and it returns the echoed text, so the tokens can be checked to spell
        # the continuation and a server that ignores echo (llama-server) shows it in its first answer.
        # (prompt_logprobs would name tokens by id; here, as with the OpenAI API, they are matched by text.)
        where = client.base_urls[endpoint]
        text = self.prompt(document) + continuation
        resp, max_tokens = await self._ask({}, client, endpoint, usage, text=text)
        choice = _first_choice(resp, where)
        if isinstance(choice, str):
            raise RequestError(choice, "bad response" if not isinstance(resp, str) else "request")
        tokens = reference_logprobs(choice, text, continuation, self.top_logprobs, where,
                                    prompt_tokens=(resp.get("usage") or {}).get("prompt_tokens"),
                                    generated=max_tokens, hint=hint)
        return tokens, max_tokens

    def reselect(self, store, ds) -> int:
        return 0

    def file_summary(self, store) -> dict:
        rows = list(store.done.values())
        tokens = sum(r.get("n_tokens") or 0 for r in rows)
        payload = sum((r.get("payload") or {}).get("length", 0) for r in rows)
        return {"target": self.target, "rows_done": len(rows), "tokens": tokens, "payload_bytes": payload,
                "bytes_per_token": round(payload / tokens, 2) if tokens else None}


def file_settings(path: str) -> dict:
    """The settings a teacher-logprobs file was written with (its first row's: ``model`` and ``params`` with
    ``top_logprobs``, ``prompt_template``, ``api``, ``max_document_words``)."""
    from ..io import InputError, iter_jsonl

    for line, row in iter_jsonl(path, tolerate_torn_tail=True):
        params = row.get("params") or {}
        if row.get("task") != "teacher_logprobs" or "top_logprobs" not in params:
            raise InputError(f"{path}:{line}: not a teacher-logprobs row (task {row.get('task')!r}); write it with "
                             f"generate_rationales.py --task teacher_logprobs")
        return {"model": row.get("model"), **params}
    raise InputError(f"{path}: no teacher-logprobs rows")


class ServedTeacher:
    """Scores the continuations of prompts with a served teacher's top-K log-probs, for training: the prompt is
    the teacher file's (``task.prompt``: its template and ``max_document_words``), the continuation is scored
    with ``echo=true`` (:meth:`TeacherLogprobsTask.score_text`), the requests of one call concurrently.

    Synchronous (its own event loop), so a training step can call it. :meth:`probe` is the start-up check;
    :meth:`score` gives per continuation its :class:`TeacherTokens`, or the reason (a str) why the server's tokens
    could not be matched to it; a request that fails after the client's retries raises :class:`EndpointError`.
    It scores text only: the answer holds a row per token of the continuation and none after its last token, so the
    eos that ends a student's sample gets no teacher row (the trainer counts those, ``eos_without_kd``).
    """

    def __init__(self, client: LLMClient, task: TeacherLogprobsTask, concurrency: int = 8):
        import asyncio

        if task.api != "completions":
            raise ValueError("scoring given text needs api='completions'")
        self.client, self.task, self.concurrency = client, task, max(1, concurrency)
        self.usage = Usage()
        self._loop = asyncio.new_event_loop()

    @property
    def where(self) -> str:
        return ", ".join(self.client.base_urls)

    def probe(self, document: str, continuation: str) -> TeacherTokens:
        """One request: the endpoint must score given text (an :class:`EndpointError` in one line otherwise)."""
        out = self.score([(document, continuation)])[0]
        if isinstance(out, str):
            raise EndpointError(f"{self.where}: the probe request's tokens do not spell the text it sent: {out}")
        return out

    def score(self, pairs: List[Tuple[str, str]]) -> list:
        import asyncio

        async def one(document, continuation, gate):
            async with gate:
                endpoint = self.client.pick_endpoint()
                try:
                    return (await self.task.score_text(document, continuation, self.client, endpoint, self.usage,
                                                       ON_POLICY_NO_ECHO_HINT))[0]
                except ScoringError as e:
                    return str(e)
                except RequestError as e:
                    raise EndpointError(str(e)) from None

        async def run():
            gate = asyncio.Semaphore(self.concurrency)
            return await asyncio.gather(*(one(d, c, gate) for d, c in pairs))

        return self._loop.run_until_complete(run())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.client.close())
            self._loop.close()
