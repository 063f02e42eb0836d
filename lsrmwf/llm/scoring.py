"""Scoring given text through an OpenAI-compatible ``/v1/completions`` endpoint.

The OpenAI completions API scores text it is given with ``echo=true`` and ``logprobs``: the answer
repeats the prompt with the log-probability of each of its tokens (``tokens``, ``token_logprobs``,
``text_offset``); ``max_tokens=0`` generates nothing after it (vLLM, like the OpenAI API). A
continuation's tokens are found by their characters, counted from the END of the echoed text (vLLM's
``text_offset`` counts the characters of special tokens such as a BOS that the echoed text does not
hold). :func:`locate_continuation` is that step, shared by the served teacher's reference scoring
(:mod:`lsrmwf.llm.teacher_logprobs`) and :class:`ContinuationScoringTask` (served multiple choice).

A server that does not score given text shows it on its first answer: llama-server ignores ``echo``
and returns the log-probs of the tokens it generates (the answer does not start with the prompt), some
builds reject ``echo`` with HTTP 400. Both raise :class:`~lsrmwf.llm.client.EndpointError` (the run
stops, nothing is written for that answer).
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

from .client import EndpointError, LLMClient, RequestError, Usage

logger = logging.getLogger("lsrmwf.llm")

TOKEN_ID = re.compile(r"^token_id:(\d+)$")  # vLLM --return-tokens-as-token-ids
NO_ECHO = ("scoring given text needs a server that returns the log-probs of the prompt's own tokens for echo=true on "
           "/v1/completions, such as vLLM; llama-server ignores echo and scores only the tokens it generates")


class ScoringError(ValueError):
    """This answer's tokens cannot be matched to the continuation (a row error; other rows may be fine)."""


def locate_continuation(choice: dict, text: str, continuation: str, where: str, hint: str = NO_ECHO,
                        prompt_tokens: Optional[int] = None, generated: int = 0,
                        straddle: bool = False) -> Tuple[dict, int, int]:
    """``(logprobs, start, end)``: the echoed answer's ``logprobs`` (legacy completions shape) and the token
    range ``[start, end)`` that spells ``continuation``, the end of ``text``.

    ``prompt_tokens`` (the answer's ``usage.prompt_tokens``) or else ``generated`` (how many tokens the
    server generated after the echo) says where the echoed text ends. A token holding both the text
    before the continuation and the continuation's first characters is counted towards the continuation
    with ``straddle``, else it raises :class:`ScoringError`. Raises :class:`EndpointError` when the
    answer holds no log-probs of the prompt's tokens (the server does not score given text).
    """
    lp = choice.get("logprobs")
    tokens = lp.get("tokens") if isinstance(lp, dict) else None
    if not (choice.get("text") or "").startswith(text):
        raise EndpointError(f"{where}: asked to score given text (/v1/completions with "
                            f"echo=true), the server answered with only the text it generated, not the prompt; {hint}")
    if tokens is None:
        raise EndpointError(f"{where}: the echoed answer carries no per-token log-probs in the completions shape "
                            f"(tokens, token_logprobs, top_logprobs); {hint}")
    if tokens and all(TOKEN_ID.match(t or "") for t in tokens):
        raise EndpointError(f"{where}: the server names its tokens 'token_id:N' (vLLM --return-tokens-as-token-ids); "
                            f"the scored tokens are found by their text: restart the server without that option")
    n = len(tokens) - generated
    if prompt_tokens is not None and 0 < prompt_tokens <= len(tokens):
        n = prompt_tokens
    strings = [t or "" for t in tokens[:max(n, 0)]]
    if n <= 0 or sum(len(t) for t in strings) < len(continuation):
        raise EndpointError(f"{where}: the echoed answer has log-probs for {max(n, 0)} prompt tokens, fewer than the "
                            f"scored text alone needs; {hint}")
    offsets = lp.get("text_offset")
    if not offsets or len(offsets) < n:
        offsets = [0]
        for t in strings[:-1]:
            offsets.append(offsets[-1] + len(t))
    start_at = offsets[n - 1] + len(strings[-1]) - len(continuation)
    start = next((i for i in range(n) if offsets[i] >= start_at), n)
    if straddle and start > 0 and (start == n or offsets[start] != start_at):
        start -= 1  # the token across the boundary counts towards the continuation
    elif start == n or offsets[start] != start_at:
        raise ScoringError(f"the server's token {strings[max(start - 1, 0)]!r} holds both the prompt's last "
                           f"characters and the scored text's first ones, so the scored tokens cannot be told apart")
    return lp, start, n


def continuation_logprob(choice: dict, text: str, continuation: str, where: str, prompt_tokens: Optional[int] = None,
                         generated: int = 0) -> Tuple[float, int]:
    """The sum of the log-probs of ``continuation``'s tokens (the end of ``text``) and their count."""
    lp, start, end = locate_continuation(choice, text, continuation, where, NO_ECHO, prompt_tokens, generated,
                                         straddle=True)
    values = (lp.get("token_logprobs") or [None] * end)[start:end]
    if any(v is None for v in values):
        raise ScoringError(f"the server gave no log-prob for token {start + values.index(None)} of the scored text")
    return float(sum(values)), end - start


def items_sha(context: str, continuations: List[str]) -> str:
    return hashlib.sha256(json.dumps([context, continuations], ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass
class ContinuationScoringTask:
    """Per item ``{"id", "context", "continuations"}``: the log-prob sum and token count of each continuation
    after the context, one echo request per continuation (run by :func:`lsrmwf.llm.pipeline.run_task`).

    Rows: ``{"id", "sha", "logprob_sums", "tokens"}``; ``sha`` hashes the item's texts."""

    name: str = "continuation_scoring"
    payload: bool = False
    # max_tokens=0 first; a server that refuses 0 with HTTP 400 is asked with 1, the generated token dropped
    echo_max_tokens: int = field(default=0, repr=False)

    def settings(self) -> dict:
        return {"api": "completions", "echo": True, "logprobs": 1}

    def items(self, ds) -> Iterable[dict]:
        return iter(ds)

    async def _echo(self, text: str, client: LLMClient, endpoint: int, usage: Usage) -> Tuple[dict, int]:
        where = client.base_urls[endpoint]
        while True:
            usage.requests += 1
            asked = self.echo_max_tokens
            try:
                resp = await client.with_logprobs(endpoint, "completions", text, 1, echo_max_tokens=asked)
                break
            except RequestError as e:
                if e.kind != "HTTP 400":
                    raise
                if asked == 0:
                    self.echo_max_tokens = 1
                    continue
                raise EndpointError(f"{where}: refuses to score given text (echo=true, max_tokens=0 and 1): {e}; "
                                    f"{NO_ECHO}") from None
        u = resp.get("usage") or {}
        usage.add(Usage(0, u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0))
        return resp, asked

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        row = {"id": item["id"], "sha": items_sha(item["context"], item["continuations"]), "logprob_sums": [],
               "tokens": []}
        where = client.base_urls[endpoint]
        for continuation in item["continuations"]:
            text = item["context"] + continuation
            try:
                resp, asked = await self._echo(text, client, endpoint, usage)
            except RequestError as e:
                row.update(error=str(e), error_kind=e.kind)
                return row
            choices = resp.get("choices") or []
            if not choices:
                row["error"] = f"{where}: the response has no choices"
                return row
            try:
                s, n = continuation_logprob(choices[0], text, continuation, where,
                                            (resp.get("usage") or {}).get("prompt_tokens"), asked)
            except ScoringError as e:
                row["error"] = f"{where}: {e}"
                return row
            row["logprob_sums"].append(s)
            row["tokens"].append(n)
        row["error"] = None
        return row

    def reselect(self, store, ds) -> int:
        return 0

    def file_summary(self, store) -> dict:
        return {"rows_done": len(store.done)}
