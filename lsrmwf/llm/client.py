"""Async chat requests to one or more OpenAI-compatible endpoints (vLLM, llama.cpp, cloud APIs).

Retries and timeouts are the ``openai`` client's own (``max_retries``, ``timeout``): 429 waits for
``Retry-After`` (up to two minutes), 408/409/5xx and connection errors/timeouts back off
exponentially. Nothing here retries a failed request again on top of that. The only retry this
module adds is *semantic* (:func:`ask`): an answer that was cut off or does not parse is sent back
once with the problem stated.
"""

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ..io import InputError
from . import prompts
from .parsing import AnswerError


class RequestError(RuntimeError):
    """The endpoint did not produce an answer for this request (after the client's own retries)."""


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
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


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
                 timeout: float = 600.0, max_retries: int = 5):
        from openai import AsyncOpenAI

        if not base_urls:
            raise ValueError("at least one --base_url is needed")
        self.base_urls = list(base_urls)
        self.params = params
        # Local servers ignore the key, but the client refuses to start without one.
        key = api_key or "not-needed"
        self._clients = [AsyncOpenAI(base_url=u, api_key=key, timeout=timeout, max_retries=max_retries) for u in self.base_urls]
        self._in_flight = [0] * len(self._clients)

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

    async def chat(self, endpoint: int, messages: List[Dict[str, str]], response_format: Optional[dict]) -> Answer:
        kwargs = dict(self._request_kwargs(), messages=messages)
        if response_format is not None:
            kwargs["response_format"] = response_format
        resp = await self._create(endpoint, "chat", kwargs)
        url = self.base_urls[endpoint]
        choices = getattr(resp, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise RequestError(f"{url}: response is not a chat completion: {_short(repr(resp))}")
        u = getattr(resp, "usage", None)
        usage = Usage(1, getattr(u, "prompt_tokens", 0) or 0, getattr(u, "completion_tokens", 0) or 0)
        return Answer(choices[0].message.content or "", choices[0].finish_reason, usage)

    async def with_logprobs(self, endpoint: int, api: str, prompt, top_logprobs: int) -> dict:
        """One generation with the top ``top_logprobs`` log-probs of every token, as a plain dict.

        ``api="chat"``: ``prompt`` is a message list (``logprobs``/``top_logprobs``); ``"completions"``:
        a string (``logprobs=K``; llama-server also gets its native ``n_probs``).
        """
        kwargs = self._request_kwargs()
        if api == "chat":
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
        self._in_flight[endpoint] += 1
        try:
            return await create(**kwargs)
        except openai.APIStatusError as e:
            if e.status_code in FATAL_STATUS:
                raise EndpointError(f"{url}: HTTP {e.status_code}: {_short(e.message)}; {FATAL_STATUS[e.status_code]}") from None
            retried = " after the client's retries" if e.status_code in (408, 409, 429) or e.status_code >= 500 else ""
            raise RequestError(f"{url}: HTTP {e.status_code}{retried}: {_short(e.message)}") from None
        except openai.APITimeoutError:
            raise RequestError(f"{url}: request timed out after the client's retries") from None
        except openai.APIConnectionError as e:
            raise RequestError(f"{url}: connection failed after the client's retries: {_short(str(e.__cause__ or e))}") from None
        except openai.APIError as e:  # malformed bodies and the like
            raise RequestError(f"{url}: unusable response: {_short(str(e))}") from None
        finally:
            self._in_flight[endpoint] -= 1

    async def close(self) -> None:
        for c in self._clients:
            await c.close()


def _short(text: str, limit: int = 300) -> str:
    text = re.sub(r"^Error code: \d+ - ", "", " ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit] + "..."


async def ask(client: LLMClient, endpoint: int, messages: List[Dict[str, str]], response_format: Optional[dict],
              parse: Callable[[str], object], usage: Usage) -> object:
    """Send ``messages``; parse the answer; on a cut-off or unparsable answer retry once with the problem.

    Returns the parsed answer. Raises :class:`RequestError` (endpoint failed) or
    :class:`AnswerError` (both answers unusable; the message names both problems).
    """
    problems = []
    answer = None
    for attempt in (1, 2):
        answer = await client.chat(endpoint, messages, response_format)
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
        if attempt == 1:
            messages = prompts.retry_messages(messages, answer.text, problem, truncated)
    raise AnswerError(f"unusable answer twice: first {problems[0]}; then {problems[1]}", raw_answer=answer.text)
