"""Async chat requests to one or more OpenAI-compatible endpoints (vLLM, llama.cpp, cloud APIs).

Retries and timeouts are the ``openai`` client's own (``max_retries``, ``timeout``): 429 waits for
``Retry-After`` (up to two minutes), 408/409/5xx and connection errors/timeouts back off
exponentially. Nothing here retries a failed request again on top of that. The only retry this
module adds is *semantic* (:func:`ask`): an answer that was cut off or does not parse is sent back
once with the problem stated.

The defaults (:data:`DEFAULT_TIMEOUT` s per attempt, :data:`DEFAULT_MAX_RETRIES` retries) give a slow
local model on CPU five minutes per answer, and a hung server costs at most 15 minutes per request,
not an hour. Every HTTP request the client sends (retries included) is counted in
``LLMClient.http_requests``. The API key is redacted (:meth:`LLMClient.redact`) from every message
this module builds, whatever the server echoes back.
"""

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ..io import InputError
from . import prompts
from .parsing import AnswerError

DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_RETRIES = 2
REDACTED = "<redacted>"


class RequestError(RuntimeError):
    """The endpoint did not produce an answer for this request (after the client's own retries).

    ``kind`` says how it failed in a way that is the same for every request failing for the same
    reason (``HTTP 400``, ``timeout``, ``connection``, ``bad response``), for the run-wide checks.
    """

    def __init__(self, message: str, kind: str = "request"):
        super().__init__(message)
        self.kind = kind


class EndpointError(InputError):
    """The endpoint refuses every request (bad key, wrong URL or model): stop the run, keep finished rows."""


FATAL_STATUS = {401: "check --api_key / OPENAI_API_KEY", 403: "check --api_key / OPENAI_API_KEY and its permissions",
                404: "check --base_url (it usually ends in /v1) and --model"}


@dataclass
class Usage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> Dict[str, int]:
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens}


@dataclass
class GenerationParams:
    """What decides the answers (all of it goes into the cache key)."""

    model: str
    temperature: float = 0.0
    max_tokens: int = 1024
    top_p: Optional[float] = None
    seed: Optional[int] = None
    response_format: str = "json_schema"  # json_schema | json_object | text
    extra_body: Dict = field(default_factory=dict)

    @property
    def json_mode(self) -> bool:
        return self.response_format != "text"

    def as_dict(self) -> Dict:
        out = {"temperature": self.temperature, "max_tokens": self.max_tokens, "response_format": self.response_format}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.seed is not None:
            out["seed"] = self.seed
        if self.extra_body:
            out["extra_body"] = self.extra_body
        return out


@dataclass
class Answer:
    text: str
    finish_reason: Optional[str]
    usage: Usage


class LLMClient:
    """One ``AsyncOpenAI`` per base URL; each call goes to the endpoint with the fewest requests in flight."""

    def __init__(self, base_urls: List[str], api_key: Optional[str], params: GenerationParams,
                 timeout: float = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES):
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        if not base_urls:
            raise ValueError("at least one --base_url is needed")
        if timeout <= 0:
            raise InputError(f"--timeout must be a positive number of seconds, got {timeout}")
        if max_retries < 0:
            raise InputError(f"--max_retries must be >= 0, got {max_retries}")
        self.base_urls = list(base_urls)
        self.params = params
        self.timeout = timeout
        self.max_retries = max_retries
        self.http_requests = 0
        self._secrets = [api_key] if api_key else []
        # Local servers ignore the key, but the client refuses to start without one.
        key = api_key or "not-needed"

        async def count(request):
            self.http_requests += 1

        self._clients = [AsyncOpenAI(base_url=u, api_key=key, timeout=timeout, max_retries=max_retries,
                                     http_client=DefaultAsyncHttpxClient(event_hooks={"request": [count]}))
                         for u in self.base_urls]
        self._in_flight = [0] * len(self._clients)

    def redact(self, text):
        """``text`` with the API key replaced (strings; dicts and lists are redacted recursively)."""
        return redact(text, self._secrets)

    def pick_endpoint(self) -> int:
        return min(range(len(self._clients)), key=lambda i: self._in_flight[i])

    def _request_kwargs(self) -> Dict:
        p = self.params
        kwargs = dict(model=p.model, temperature=p.temperature, max_tokens=p.max_tokens)
        if p.top_p is not None:
            kwargs["top_p"] = p.top_p
        if p.seed is not None:
            kwargs["seed"] = p.seed
        if p.extra_body:
            kwargs["extra_body"] = dict(p.extra_body)
        return kwargs

    async def complete(self, endpoint: int, prompt: str, stop: Optional[List[str]] = None) -> Answer:
        """One plain-text completion of ``prompt`` (``/v1/completions``: no chat template), cut at ``stop``."""
        kwargs = dict(self._request_kwargs(), prompt=prompt)
        if stop:
            kwargs["stop"] = list(stop)
        resp = await self._create(endpoint, "completions", kwargs)
        choices = getattr(resp, "choices", None)
        if not choices or getattr(choices[0], "text", None) is None:
            raise RequestError(f"{self.base_urls[endpoint]}: response is not a completion: "
                               f"{self.redact(_short(repr(resp)))}",
                               "bad response")
        u = getattr(resp, "usage", None)
        usage = Usage(0, getattr(u, "prompt_tokens", 0) or 0, getattr(u, "completion_tokens", 0) or 0)
        return Answer(choices[0].text or "", choices[0].finish_reason, usage)

    async def chat(self, endpoint: int, messages: List[Dict[str, str]], response_format: Optional[dict],
                   stop: Optional[List[str]] = None) -> Answer:
        kwargs = dict(self._request_kwargs(), messages=messages)
        if response_format is not None:
            kwargs["response_format"] = response_format
        if stop:
            kwargs["stop"] = list(stop)
        resp = await self._create(endpoint, "chat", kwargs)
        url = self.base_urls[endpoint]
        choices = getattr(resp, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise RequestError(f"{url}: response is not a chat completion: {self.redact(_short(repr(resp)))}",
                               "bad response")
        u = getattr(resp, "usage", None)
        usage = Usage(0, getattr(u, "prompt_tokens", 0) or 0, getattr(u, "completion_tokens", 0) or 0)
        return Answer(choices[0].message.content or "", choices[0].finish_reason, usage)

    async def with_logprobs(self, endpoint: int, api: str, prompt, top_logprobs: int,
                            echo_max_tokens: Optional[int] = None) -> dict:
        """One generation with the top ``top_logprobs`` log-probs of every token, as a plain dict.

        ``api="chat"``: ``prompt`` is a message list (``logprobs``/``top_logprobs``); ``"completions"``:
        a string (``logprobs=K``; llama-server also gets its native ``n_probs``).
        ``echo_max_tokens`` (completions only): score the given text instead, ``echo=true`` with
        ``max_tokens`` set to it (0 on vLLM: the prompt's log-probs and nothing generated).
        """
        kwargs = self._request_kwargs()
        if echo_max_tokens is not None:
            if api != "completions":
                raise ValueError("echo (scoring given text) exists on /v1/completions only")
            kwargs.update(prompt=prompt, logprobs=top_logprobs, echo=True, max_tokens=echo_max_tokens)
        elif api == "chat":
            kwargs.update(messages=prompt, logprobs=True, top_logprobs=top_logprobs)
        elif api == "completions":
            kwargs.update(prompt=prompt, logprobs=top_logprobs)
            kwargs["extra_body"] = dict(kwargs.get("extra_body") or {}, n_probs=top_logprobs)
        else:
            raise ValueError(f"api must be 'chat' or 'completions', not {api!r}")
        resp = await self._create(endpoint, api, kwargs)
        return resp.model_dump() if hasattr(resp, "model_dump") else dict(resp)

    async def _create(self, endpoint: int, api: str, kwargs: Dict):
        """Send one request; map the openai client's failures to :class:`EndpointError`/:class:`RequestError`."""
        import openai

        url = self.base_urls[endpoint]
        client = self._clients[endpoint]
        create = client.chat.completions.create if api == "chat" else client.completions.create
        r = self.redact
        self._in_flight[endpoint] += 1
        try:
            return await create(**kwargs)
        except openai.APIStatusError as e:
            text = r(_short(_server_text(e)))
            if e.status_code in FATAL_STATUS:
                raise EndpointError(f"{url}: HTTP {e.status_code}: {text}; {FATAL_STATUS[e.status_code]}") from None
            retried = " after the client's retries" if e.status_code in (408, 409, 429) or e.status_code >= 500 else ""
            raise RequestError(f"{url}: HTTP {e.status_code}{retried}: {text}", f"HTTP {e.status_code}") from None
        except openai.APITimeoutError:
            raise RequestError(f"{url}: request timed out after {self.timeout:g}s and {self.max_retries} retries "
                               f"(--timeout, --max_retries)", "timeout") from None
        except openai.APIConnectionError as e:
            raise RequestError(f"{url}: connection failed after the client's retries: "
                               f"{r(_short(str(e.__cause__ or e)))}",
                               "connection") from None
        except openai.APIError as e:  # malformed bodies and the like
            raise RequestError(f"{url}: unusable response: {r(_short(str(e)))}", "bad response") from None
        finally:
            self._in_flight[endpoint] -= 1

    async def close(self) -> None:
        for c in self._clients:
            await c.close()


def redact(obj, secrets):
    """``obj`` (a string, or dicts/lists of them) with every secret in ``secrets`` replaced by ``<redacted>``."""
    secrets = [x for x in secrets if x]
    if not secrets:
        return obj
    if isinstance(obj, str):
        for secret in secrets:
            obj = obj.replace(secret, REDACTED)
        return obj
    if isinstance(obj, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v, secrets) for v in obj)
    return obj


def _server_text(e) -> str:
    """The server's own error message: ``error.message`` of a JSON error body, else the body or status text."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
        return json.dumps(body)
    if isinstance(body, str) and body.strip():
        return body
    return e.message


def _short(text: str, limit: int = 300) -> str:
    text = re.sub(r"^Error code: \d+ - ", "", " ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit] + "..."


async def ask(client: LLMClient, endpoint: int, messages: List[Dict[str, str]], response_format: Optional[dict],
              parse: Callable[[str], object], usage: Usage, stop: Optional[List[str]] = None,
              completion_prompt: Optional[str] = None) -> object:
    """Send ``messages``; parse the answer; on a cut-off or unparsable answer retry once with the problem.

    ``completion_prompt``: send this text to ``/v1/completions`` instead (a base model continuing a
    few-shot prompt); there is no conversation to retry in, so one unusable answer fails.
    ``stop``: stop sequences for either API.

    Returns the parsed answer. Raises :class:`RequestError` (endpoint failed) or
    :class:`AnswerError` (both answers unusable; the message names both problems).
    """
    problems = []
    answer = None
    attempts = (1,) if completion_prompt is not None else (1, 2)
    for attempt in attempts:
        usage.requests += 1  # counted when sent, so failed requests count too
        if completion_prompt is not None:
            answer = await client.complete(endpoint, completion_prompt, stop)
        else:
            answer = await client.chat(endpoint, messages, response_format, stop)
        usage.add(answer.usage)
        truncated = answer.finish_reason == "length"
        if truncated:
            problem = f"it was cut off at max_tokens={client.params.max_tokens} before it was complete"
        else:
            try:
                return parse(answer.text)
            except AnswerError as e:
                problem = str(e)
        problems.append(problem)
        if attempt == 1 and len(attempts) == 2:
            messages = prompts.retry_messages(messages, answer.text, problem, truncated)
    if len(problems) == 1:
        raise AnswerError(client.redact(f"unusable answer: {problems[0]}"), raw_answer=client.redact(answer.text))
    raise AnswerError(client.redact(f"unusable answer twice: first {problems[0]}; then {problems[1]}"),
                      raw_answer=client.redact(answer.text))


class RedactingFilter(logging.Filter):
    """Replaces the API key in every log record this process emits (the message with its arguments)."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = [x for x in secrets if x]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
                record.exc_info = None
        return True
