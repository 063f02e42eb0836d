"""``generate_rationales.py``'s shared arguments (the documents, the endpoint) and what they build:
the client, the failure policy, the checked output path."""

import json
import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..data.arguments import DatasetSplitArguments
from ..io import InputError


@dataclass
class RationaleDataArguments(DatasetSplitArguments):
    """The documents an LLM task reads (a hub dataset split or a local file)."""

    _argument_group_name = "documents"


@dataclass
class EndpointArguments:
    """The OpenAI-compatible endpoint, the request settings and when a run stops."""

    _argument_group_name = "endpoint and requests"

    base_url: List[str] = field(
        default_factory=list,
        metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1. Give it several times to "
                          "spread load over replicas.",
                  "action": "extend"})
    model: Optional[str] = field(default=None, metadata={"help": "Model name sent with each request (required)."})
    api_key: Optional[str] = field(
        default=None,
        metadata={"help": "API key (default: $OPENAI_API_KEY; local servers need none). Never written to any file "
                          "or log."})
    concurrency: int = field(default=8, metadata={"help": "Documents (basic_reading: sentences) in flight at once."})
    timeout: float = field(
        default=300.0,
        metadata={"help": "Seconds per request attempt before the client gives up on it (then retries). The "
                          "default lets a slow local model write a long answer; a hung server costs at most "
                          "timeout x (max_retries + 1) per request."})
    max_retries: int = field(
        default=2,
        metadata={"help": "The openai client's retries per request (429 honours Retry-After; 5xx/timeouts back "
                          "off)."})
    fail_fast_rows: int = field(
        default=3,
        metadata={"help": "Stop (rc 1, with the server's error) when the first N rows all fail with the same "
                          "request error (refused connection, one HTTP status, timeouts). 0: never."})
    max_failed_fraction: float = field(
        default=0.5,
        metadata={"help": "Stop (rc 1) when more than this fraction of the rows failed, checked from the 20th row "
                          "on. 1.0: never."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (the paper uses 0)."})
    max_tokens: int = field(default=1024, metadata={"help": "Answer length limit per request."})
    top_p: Optional[float] = field(default=None, metadata={"help": "Nucleus sampling (default: the server's)."})
    seed: Optional[int] = field(default=None, metadata={"help": "Sampling seed, where the server supports it."})
    extra_body: Optional[str] = field(
        default=None,
        metadata={"help": "Extra request fields as JSON, e.g. '{\"repeat_penalty\": 1.1}' for llama.cpp (part of "
                          "the cache key)."})
    response_format: str = field(
        default="json_schema",
        metadata={"help": "json_schema (structured output), json_object, or text (line format, for servers without "
                          "response_format).",
                  "choices": ["json_schema", "json_object", "text"]})


def check_endpoint(endpoint: EndpointArguments) -> None:
    if not endpoint.base_url:
        raise InputError("--base_url is required (e.g. http://127.0.0.1:8080/v1; start a local server with "
                         "python -m lsrmwf.llm.server)")
    if not endpoint.model:
        raise InputError("--model is required (the name the endpoint serves; llama-server accepts any)")


def check_writable_file(path: str, flag: str) -> None:
    """Fail before any request if ``path`` cannot be created or appended to."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot be written ({e.strerror or e})") from None


def build_client(endpoint: EndpointArguments):
    """The :class:`lsrmwf.llm.client.LLMClient` of the endpoint arguments (``--extra_body`` checked)."""
    from .client import GenerationParams, LLMClient

    extra_body = {}
    if endpoint.extra_body:
        try:
            extra_body = json.loads(endpoint.extra_body)
        except json.JSONDecodeError as e:
            raise InputError(f"--extra_body is not valid JSON ({e.msg} at column {e.colno}): "
                             f"{endpoint.extra_body!r}") from None
        if not isinstance(extra_body, dict):
            raise InputError(f"--extra_body must be a JSON object, got {endpoint.extra_body!r}")
    params = GenerationParams(model=endpoint.model, temperature=endpoint.temperature, max_tokens=endpoint.max_tokens,
                              top_p=endpoint.top_p, seed=endpoint.seed, response_format=endpoint.response_format,
                              extra_body=extra_body)
    api_key = endpoint.api_key or os.environ.get("OPENAI_API_KEY")
    return LLMClient(endpoint.base_url, api_key, params, timeout=endpoint.timeout, max_retries=endpoint.max_retries)


def failure_policy(endpoint: EndpointArguments):
    from .pipeline import FailurePolicy

    return FailurePolicy(first_rows=endpoint.fail_fast_rows, max_failed_fraction=endpoint.max_failed_fraction)
