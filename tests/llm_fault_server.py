"""A small OpenAI-compatible chat server on 127.0.0.1 that misbehaves on request.

It answers ``POST /v1/chat/completions`` like a well-behaved model would: valid rationale,
summary or basic-reading answers built from the document (in JSON when a ``response_format`` is
sent, in the line formats otherwise). A marker in the document text selects a fault, counted per
(marker, task, document), so a test can mix faulty and healthy documents in one run:

==================  ==========================================================================
``FAULT_429``       first request: 429 with ``Retry-After: 1``; then normal
``FAULT_500``       first two requests: 500; then normal
``FAULT_500_ALWAYS`` always 500
``FAULT_TIMEOUT``   first request: answers after ``slow_s`` seconds (longer than the client's
                    timeout); then normal
``FAULT_GARBAGE``   always 200 with an HTML body instead of JSON
``FAULT_BADJSON``   first answer: broken JSON / no line format; then normal
``FAULT_LENGTH``    first answer: cut in half with ``finish_reason: length``; then normal
``FAULT_LENGTH_ALWAYS`` always cut off
``FAULT_401``       always 401 (a bad API key)
``FAULT_OBEY``      a model that obeys instructions inside the document: answers ``HACKED``
``FAULT_400_ALWAYS`` always 400 with the server's own message (a setting the server rejects)
``FAULT_HANG``      answers only after ``hang_s`` seconds (a hung server), every time
``FAULT_ECHO``      always 200 with an unusable answer that quotes the request's Authorization header
``FAULT_NOLOGPROBS`` a request for log-probs gets an answer without them
==================  ==========================================================================

With ``echo_auth=True`` every error body also quotes the request's Authorization header, like a
careless proxy that echoes what it was sent.

A request with ``logprobs: true`` (a served teacher, ``--task teacher_logprobs``) is answered with
the document's first sentence as the summary, one token per word, and ``top_logprobs`` alternatives
per token (the token itself first), with llama.cpp's token ``id`` and ``bytes`` (``with_ids``;
without, like the OpenAI API, token strings and bytes only). More than ``max_top_logprobs``
alternatives is a 400, as on vLLM/OpenAI.

``POST /v1/completions`` (a raw ``prompt``, ``logprobs: K``) generates the same summary, with a leading
space, in vLLM's legacy completions shape (``tokens``, ``token_logprobs``, ``top_logprobs`` as dicts,
``text_offset``). With ``echo: true`` it first returns the prompt's own tokens, as vLLM does: a BOS
token ``<s>`` without log-probs, then every prompt token, ``max_tokens: 0`` generating nothing (a
server built with ``min_max_tokens=1`` refuses 0 with a 400). Token ``i`` of the answer has log-prob
``-(i % 8) / 8`` (exact in fp16), a token starting with ``rare`` has -9; the alternatives are
``" alt1"``, ``" alt2"``, ... at -2, -3, ...; each dict holds the token itself first, then the top K
(K + 1 entries when the token is not among them, as vLLM's). ``usage.prompt_tokens`` counts the BOS.
``echo_mode="ignore"`` is llama-server instead: it ignores ``echo`` and answers with the generated
tokens only, in its ``content`` shape with ids and bytes; ``echo_mode="reject"`` is a llama-server build
that refuses ``echo`` with a 400. With ``scoring_model`` (a tiny HF causal LM, and ``tokenizer``) an
``echo`` request is scored for real: the tokenizer's start tokens and the prompt's tokens, each with its
log-prob under the model (the first without) and, as vLLM's, the token itself then the model's top ``logprobs``
alternatives named by their text, nothing generated, so served scores equal local ones. Tokens are words with their leading whitespace, or the
pieces of ``tokenizer`` when one is given (the alternatives are then common words of it).

``server.force_status = 500`` (set while a run goes on) answers every later request with that status.

Every request body is recorded in ``server.requests`` (with its arrival time) for assertions.
"""

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional

MARKERS = ("FAULT_401", "FAULT_500_ALWAYS", "FAULT_LENGTH_ALWAYS", "FAULT_400_ALWAYS", "FAULT_429", "FAULT_500",
           "FAULT_TIMEOUT", "FAULT_GARBAGE", "FAULT_BADJSON", "FAULT_LENGTH", "FAULT_OBEY", "FAULT_HANG", "FAULT_ECHO",
           "FAULT_NOLOGPROBS")


def _fewshot(messages) -> Optional[str]:
    """A BRD few-shot request (one user message, no system message): its input sentence, else None."""
    if not messages or messages[0].get("role") != "user" or "<document>" in (messages[0].get("content") or ""):
        return None
    first = messages[0]["content"].rsplit("\n\n", 1)[-1].splitlines()[0]
    if not first.startswith(("Enter a sentence:", "The sentence:")):  # e.g. a teacher log-probs request
        return None
    return first.split(":", 1)[-1].strip()


def _document(messages) -> str:
    sentence = _fewshot(messages)
    if sentence is not None:
        return sentence
    text = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "user")
    m = re.search(r"<document>\n(.*?)\n</document>", text, re.S)
    return m.group(1) if m else text


def _as_messages(body) -> list:
    """A completion request's raw prompt seen as one user turn (how a base model gets a few-shot prompt)."""
    return body["messages"] if "messages" in body else [{"role": "user", "content": body["prompt"]}]


def _text(body) -> str:
    """The document of a chat request (or of a few-shot completion), or a completion request's whole prompt."""
    if "prompt" in body and _fewshot(_as_messages(body)) is None:
        return body["prompt"]
    return _document(_as_messages(body))


def _task(body) -> str:
    if "prompt" in body and _fewshot(_as_messages(body)) is None:
        return "completion"
    if "prompt" in body:
        return "brd_qra" if "question" in body["prompt"].split("\n\n", 1)[0].lower() else "brd_ner"
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return rf["json_schema"]["name"]
    if _fewshot(body["messages"]) is not None:
        return "brd_qra" if "question" in body["messages"][0]["content"].split("\n\n", 1)[0].lower() else "brd_ner"
    prompt = body["messages"][1]["content"] if len(body["messages"]) > 1 else ""
    if "sub-summar" in prompt:
        return "summaries"
    if "ENTITY" in prompt or "named entities" in prompt:
        return "basic_reading"
    return "rationales"


def _count(body, default: int = 1) -> int:
    """How many rationales / sub-summaries the request asks for."""
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        props = rf["json_schema"]["schema"]["properties"]
        for key in ("rationales", "sub_summaries"):
            if key in props:
                return props[key]["minItems"]
    m = re.search(r"exactly (\d+)|Here are (\d+)", body["messages"][1]["content"])
    return int(m.group(1) or m.group(2)) if m else default


def _sentences(document: str) -> List[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", document) if p.strip()]
    return parts or [document.strip()]


def healthy_answer(body) -> str:
    """A correct answer for the request, in JSON if a response_format was sent, else line format."""
    task, doc = _task(body), _document(_as_messages(body))
    json_mode = body.get("response_format") is not None
    sents = _sentences(doc)
    if task == "rationales":
        n = _count(body)
        rats = []
        for i in range(n):
            s = sents[i % len(sents)]
            words = s.rstrip(".").split()
            rats.append({"aspect": " ".join(words[:3]), "sentence": s,
                         "triples": [[words[0], words[1] if len(words) > 1 else "is", " ".join(words[2:]) or "it"]]})
        if json_mode:
            return json.dumps({"rationales": rats})
        return "\n".join(f"{r['aspect']} | {r['sentence']} | {' # '.join(r['triples'][0])}" for r in rats)
    if task in ("brd_ner", "brd_qra"):  # the BRD paper's plain-text answers, with a run-on next example to cut
        names = re.findall(r"\b[A-Z][a-z]+\b", doc)[:2]
        if task == "brd_ner":
            ents = ", and ".join(f'"{n}" is a name entity' for n in names) or "there is no named entity"
            return f"In this sentence, {ents}.\n\nEnter a sentence: A run-on example."
        return f"Question: What does the sentence say?\nAnswer: {doc}\n\nThe sentence: A run-on example."
    if task == "summaries":
        n = _count(body)
        subs = [sents[i % len(sents)] for i in range(n)]
        if json_mode:
            return json.dumps({"sub_summaries": subs, "summary": sents[0]})
        return "\n".join([f"SUB: {s}" for s in subs] + [f"SUMMARY: {sents[0]}"])
    sentence = re.search(r"Sentence: (.*)", body["messages"][1]["content"]).group(1)
    names = re.findall(r"\b[A-Z][a-z]+\b", sentence)[:2] or ["Nothing"]
    ents = [{"name": n, "type": "name", "detail": f"mentioned in: {sentence[:40]}"} for n in names]
    qa = [{"question": "What does the sentence say?", "answer": sentence}]
    if json_mode:
        return json.dumps({"entities": ents, "qa": qa})
    return "\n".join([f"ENTITY: {e['name']} | {e['type']} | {e['detail']}" for e in ents]
                     + [f"Q: {q['question']}\nA: {q['answer']}" for q in qa])


class FaultServer:
    """``with FaultServer() as srv: srv.base_url ...``; runs in a background thread."""

    def __init__(self, slow_s: float = 3.0, delay_s: float = 0.0, hang_s: float = 30.0, echo_auth: bool = False,
                 max_top_logprobs: int = 20, with_ids: bool = True, echo_mode: str = "vllm", min_max_tokens: int = 0,
                 tokenizer=None, scoring_model=None):
        if echo_mode not in ("vllm", "ignore", "reject"):
            raise ValueError(f"echo_mode must be 'vllm', 'ignore' or 'reject', not {echo_mode!r}")
        self.scoring_model = scoring_model
        self.max_top_logprobs = max_top_logprobs
        self.with_ids = with_ids
        self.echo_mode = echo_mode
        self.min_max_tokens = min_max_tokens
        self.tokenizer = tokenizer
        self.vocab = {}
        self.slow_s = slow_s
        self.hang_s = hang_s
        self.echo_auth = echo_auth
        self.delay_s = delay_s  # every answer waits this long (to catch a run mid-way)
        self.force_status: Optional[int] = None  # set mid-run: every request from then on fails with this status
        self.requests: List[dict] = []
        self.counts = {}
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def requests_for(self, marker: str) -> List[dict]:
        return [r for r in self.requests if marker in _text(r["body"])]

    def __enter__(self) -> "FaultServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, payload, headers=None, content_type="application/json"):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})
                else:
                    self._send(200, {"status": "ok"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server._handle(self, body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, h, body):
        doc = _text(body)
        marker = next((m for m in MARKERS if m in doc), None)
        key = (marker, _task(body), hashlib.md5(doc.encode()).hexdigest())
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            k = self.counts[key]
            self.requests.append({"time": time.monotonic(), "body": body, "marker": marker, "nth": k,
                                  "auth": h.headers.get("Authorization")})
        if self.force_status is not None:
            return h._send(self.force_status, {"error": {"message": f"forced {self.force_status}", "type": "server_error"}})
        logprobs = bool(body.get("logprobs"))
        if logprobs and int(body.get("top_logprobs") or 0) > self.max_top_logprobs:
            return h._send(400, {"error": {"message": f"top_logprobs must be <= {self.max_top_logprobs}", "type": "invalid_request"}})
        if "prompt" in body and int(body.get("logprobs") or 0) > self.max_top_logprobs:
            return h._send(400, {"error": {"message": f"logprobs must be <= {self.max_top_logprobs}", "type": "invalid_request"}})
        if "prompt" in body and body.get("max_tokens") is not None and body["max_tokens"] < self.min_max_tokens:
            return h._send(400, {"error": {"message": f"max_tokens must be at least {self.min_max_tokens}, got "
                                                      f"{body['max_tokens']}", "type": "invalid_request"}})
        if logprobs:
            text = doc.split("Summarize:\n", 1)[-1]
            content, finish = _sentences(text)[0], "stop"
        elif _task(body) == "completion":  # a raw completion without log-probs (answered by _completion below)
            content, finish = "", "stop"
        else:
            content, finish = healthy_answer(body), "stop"
        auth = h.headers.get("Authorization")
        echo = f" (request had Authorization: {auth})" if self.echo_auth else ""
        if marker == "FAULT_429" and k == 1:
            return h._send(429, {"error": {"message": "rate limited" + echo, "type": "rate_limit"}}, {"Retry-After": "1"})
        if marker == "FAULT_401":
            return h._send(401, {"error": {"message": "invalid api key" + echo, "type": "auth"}})
        if (marker == "FAULT_500" and k <= 2) or marker == "FAULT_500_ALWAYS":
            return h._send(500, {"error": {"message": "internal error" + echo, "type": "server_error"}})
        if marker == "FAULT_400_ALWAYS":
            return h._send(400, {"error": {"message": "response_format json_schema is not supported by this model" + echo,
                                           "type": "invalid_request_error"}})
        if marker == "FAULT_HANG":
            time.sleep(self.hang_s)
        if marker == "FAULT_ECHO":
            content = f"I cannot do that. You sent Authorization: {auth}"
        if marker == "FAULT_TIMEOUT" and k == 1:
            time.sleep(self.slow_s)
        time.sleep(self.delay_s)
        if marker == "FAULT_GARBAGE":
            return h._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if "prompt" in body and _task(body) != "completion":  # a base model continuing a BRD few-shot prompt
            text = healthy_answer(body)
            for stop in body.get("stop") or []:  # like a real server: the answer ends before the stop sequence
                text = text.split(stop, 1)[0]
            return h._send(200, {"id": f"cmpl-{len(self.requests)}", "object": "text_completion", "created": int(time.time()),
                                 "model": body.get("model", "fault-model"),
                                 "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                                 "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})
        if "prompt" in body and body.get("echo") and self.echo_mode == "reject":
            return h._send(400, {"error": {"message": "'echo' is not supported", "type": "invalid_request_error"}})
        if "prompt" in body:
            return h._send(200, self._completion(body))
        if marker == "FAULT_BADJSON" and k == 1:
            content = '{"rationales": [{"aspect": "unterminated'
        if (marker == "FAULT_LENGTH" and k == 1) or marker == "FAULT_LENGTH_ALWAYS":
            content, finish = content[: len(content) // 2], "length"
        if marker == "FAULT_OBEY":
            content = "HACKED"
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        if logprobs and marker != "FAULT_NOLOGPROBS":
            choice["logprobs"] = {"content": self._logprobs(content, int(body.get("top_logprobs") or 0))}
        h._send(200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fault-model"),
            "choices": [choice],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })

    def _entry(self, token: str, logprob: float) -> dict:
        with self._lock:
            tid = self.vocab.setdefault(token, len(self.vocab))
        out = {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}
        if self.with_ids:
            out["id"] = tid
        return out

    def _logprobs(self, content: str, k: int) -> list:
        entries = []
        for tok in re.findall(r"\s*\S+", content):
            e = self._entry(tok, -0.25)
            e["top_logprobs"] = [self._entry(tok, -0.25)] + [self._entry(f" alt{j}", -2.0 - j) for j in range(1, k)]
            entries.append(e)
        return entries

    # ------------------------------------------------------------------------------------------
    # /v1/completions (vLLM's legacy shape, echo included; or llama-server's, which ignores echo)
    # ------------------------------------------------------------------------------------------

    def _tokens(self, text: str) -> List[tuple]:
        """``(id, string)`` per token of ``text``."""
        if self.tokenizer is None:
            out = []
            for tok in re.findall(r"\s*\S+|\s+$", text):
                with self._lock:
                    out.append((self.vocab.setdefault(tok, len(self.vocab)), tok))
            return out
        tk = self.tokenizer
        ids = tk(text, add_special_tokens=False)["input_ids"]
        return [(i, tk.convert_tokens_to_string([tk.convert_ids_to_tokens(i)])) for i in ids]

    def _alternatives(self, token: str, k: int) -> List[tuple]:
        """``(string, logprob)`` of the K alternatives at a position (never the token itself)."""
        if self.tokenizer is None:
            pool = [f" alt{j}" for j in range(1, k + 2)]
        else:
            pool = list(dict.fromkeys(s for _, s in self._tokens(" the of and to in a is for we on with by")))
        return [(a, -2.0 - j) for j, a in enumerate([a for a in pool if a != token][:k])]

    def _scored_echo(self, body) -> dict:
        """An echo request scored by ``scoring_model``: the prompt's tokens with their real log-probs."""
        import torch

        from lsrmwf.evaluation.multiple_choice import start_ids_of

        tk, prompt = self.tokenizer, body["prompt"]
        start = start_ids_of(tk)
        ids = start + tk(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(self.scoring_model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
        values = [None] + [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]
        strings = tk.convert_ids_to_tokens(start) + [s for _, s in self._tokens(prompt)]
        offsets = [sum(len(x) for x in strings[:i]) for i in range(len(strings))]
        names = [tk.convert_tokens_to_string([tk.convert_ids_to_tokens(j)]) for j in range(len(tk))]
        k = int(body.get("logprobs") or 0)
        tops = []  # vLLM's: the token itself first, then the model's top K over the tokenizer's ids by their text
        for t in range(1, len(ids)):
            best = logp[t - 1, :len(tk)].topk(k)
            tops.append({strings[t]: values[t], **{names[j]: float(v) for v, j in zip(best.values.tolist(),
                                                                                  best.indices.tolist())}})
        choice = {"index": 0, "text": prompt, "finish_reason": "length",
                  "logprobs": {"tokens": strings, "token_logprobs": values, "text_offset": offsets,
                               "top_logprobs": [None] + tops}}
        return {"id": f"cmpl-{len(self.requests)}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model", "fault-model"), "choices": [choice],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": 0, "total_tokens": len(ids)}}

    def _completion(self, body) -> dict:
        if body.get("echo") and self.scoring_model is not None and self.echo_mode == "vllm":
            return self._scored_echo(body)
        prompt, k = body["prompt"], int(body.get("logprobs") or 0)
        generated = self._tokens(" " + _sentences(prompt.split("Summarize:\n", 1)[-1])[0])
        limit = body.get("max_tokens")
        finish = "stop"
        if limit is not None and self.echo_mode == "vllm" and limit < len(generated):
            generated, finish = generated[:limit], "length"
        echo = bool(body.get("echo")) and self.echo_mode == "vllm"
        bos = (self.tokenizer.bos_token_id, self.tokenizer.bos_token) if self.tokenizer is not None else (-1, "<s>")
        shown = ([bos] + self._tokens(prompt) if echo else []) + generated
        text = (prompt if echo else "") + "".join(s for _, s in generated)
        n_prompt = len(shown) - len(generated) if echo else len(self._tokens(prompt)) + 1
        choice = {"index": 0, "text": text, "finish_reason": finish}
        values = [-9.0 if s.strip().startswith("rare") else -(i % 8) / 8 for i, (_, s) in enumerate(shown)]
        if k and self.echo_mode == "ignore":  # llama-server: its own shape, ids and bytes
            entries = []
            for (tid, s), v in zip(shown, values):
                e = {"id": tid, "token": s, "bytes": list(s.encode()), "logprob": v}
                e["top_logprobs"] = [dict(self._entry(a, b)) for a, b in sorted([(s, v)] + self._alternatives(s, k), key=lambda x: -x[1])[:k]]
                entries.append(e)
            choice["logprobs"] = {"content": entries}
        elif k:
            tops, offsets, at = [], [], 0
            for i, ((_, s), v) in enumerate(zip(shown, values)):
                offsets.append(at)
                at += len(s)
                if echo and i == 0:
                    tops.append(None)  # vLLM: the first prompt token has no log-prob
                    continue
                best = sorted([(s, v)] + self._alternatives(s, k), key=lambda x: -x[1])[:k]
                tops.append({s: v, **{a: b for a, b in best if a != s}})  # the token itself first, as vLLM's
            choice["logprobs"] = {"tokens": [s for _, s in shown],
                                  "token_logprobs": [None if echo and i == 0 else v for i, v in enumerate(values)],
                                  "top_logprobs": tops, "text_offset": offsets}
        return {"id": f"cmpl-{len(self.requests)}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model", "fault-model"), "choices": [choice],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(generated),
                          "total_tokens": n_prompt + len(generated)}}


if __name__ == "__main__":  # python tests/llm_fault_server.py [delay_s]: prints its base URL, runs until killed
    import sys

    with FaultServer(delay_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as srv:
        print(srv.base_url, flush=True)
        threading.Event().wait()


def kill_after_rows(cmd: List[str], out, rows: int = 3, cwd: Optional[str] = None, timeout_s: float = 240.0) -> None:
    """Start ``cmd`` and SIGKILL it (a ``kill -9``) once ``out`` holds ``rows`` lines; a run that exits
    before that fails the calling test with the end of its stderr."""
    import os
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout_s
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < rows):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
