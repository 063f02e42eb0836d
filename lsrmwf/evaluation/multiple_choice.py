"""Multiple-choice evaluation of a causal LM by candidate log-likelihood (BRD paper, section 3.3).

Each example is a prompt and candidate answers; the model scores every candidate as a continuation
of the prompt and the highest-scoring one is its answer. Accuracy is the share of examples whose
answer is a correct one (BIG-bench: a candidate with the example's maximal target score).

Score (``normalization``)
    ``"token"`` (default, the paper's formula): the average per-token log-probability of the
    candidate's tokens given the prompt, ``(1/n) * sum_i log P(y_i | x_prompt, y_<i)`` with ``n``
    the candidate's token count. ``"word"``: the same sum divided by the candidate's word count
    (whitespace-separated words; the paper's text says "n is the total number of words in y").
    ``"sum"``: the unnormalised sum (the total log-likelihood). The cache keeps the sum, the token
    count and the word count, so every normalization can be read from one scoring pass. Ties go to
    the first candidate.

Tokenization of (prompt, candidate)
    The candidate follows the prompt after a single space unless the prompt already ends, or the
    candidate starts, with whitespace (BIG-bench prompts end with ``"\\nA: "``; Table 8's end with
    ``"Answer:"``, so the candidate is scored as ``" Yes"``). Trailing spaces of the prompt are then
    moved to the front of the candidate (``"A: " + "Yes"`` -> ``"A:" + " Yes"``), so a BPE or
    SentencePiece vocabulary sees the space together with the word, as it does in running text.
    The whole string ``prompt + candidate`` is encoded once (without special tokens); the
    candidate's tokens are those after the prompt's own token count (the log-likelihood harness
    rule: a merge across the boundary, rare once the space travels with the candidate, counts
    towards the candidate). The sequence starts with the tokens the tokenizer itself puts in front
    of a text (Llama's ``<s>``, XGLM's ``</s>``; none for GPT-2); when there are none and the
    prompt is empty, with ``bos_token_id`` (else ``eos_token_id``) so that the first candidate token
    has a context. Sequences longer than the model's ``max_position_embeddings``/``n_positions``
    lose prompt tokens from the left.

Batching and cache
    ``scoring="shared_prefix"`` (default; ``--mc_scoring``): each prompt runs once and its candidates
    are scored against its key/value cache, ``batch_size`` prompts per forward and their candidates
    in one forward after it (:mod:`lsrmwf.evaluation.shared_prefix`; same numbers as the full path).
    ``scoring="full"``: all (prompt, candidate) pairs are scored ``batch_size`` at a time
    (right-padded, attention mask, one forward each; pairs are sorted by length within a window of
    examples), for models whose cache cannot be reused. The scoring mode is part of the cache key. With
    ``cache_path`` every finished example is appended (and flushed) to a JSONL file keyed by task
    name, example index, a fingerprint of the model weights and tokenizer
    (:func:`model_fingerprint`) and a hash of the example's text; a rerun reads it and scores only
    what is missing, so a killed run resumes where it stopped. The file is append-only: a later row
    for the same key wins, a torn last line (kill -9) is dropped.

Averages (what :func:`run_multiple_choice` returns)
    ``accuracy`` per task; ``bigbench_average`` (mean over the BIG-bench tasks, the paper's
    "BIG-bench-Avg"); ``average``: the paper's "Average", the mean over the other tasks with the
    BIG-bench tasks counted once through ``bigbench_average``; ``macro_average``: the plain mean
    over all tasks. Accuracies are fractions (0-1).

Standard errors (``stderr`` next to each accuracy, as lm-evaluation-harness reports them)
    A task's: the sample standard deviation of its per-example correctness (0/1) over ``sqrt(n)``
    (:func:`mean_stderr`); a BIG-bench container task (mean of its subtasks' accuracies): ``sqrt(sum
    se_g^2) / G`` over its subtasks. ``bigbench_average_stderr`` and ``average_stderr``: the standard
    error of a mean of independent task means, ``sqrt(sum se_t^2) / T`` (:func:`average_stderr`).

Tasks
    See :mod:`lsrmwf.evaluation.mc_tasks`: BIG-bench ``task.json`` (BIG-bench 1.0.0's zero-shot
    format and defaults), the six Table 8 tasks (XNLI, RTE, CB, PAWS-X, BoolQ, SST-2) from the hub
    or a local file, and plain JSONL. The BIG-bench tasks evaluated by default are listed in
    ``bigbench_mc_tasks.txt`` (the rule: :func:`~lsrmwf.evaluation.mc_tasks.is_multiple_choice_bigbench_task`;
    the BIG-bench files come from ``scripts/fetch_bigbench.py``).

Command line
    ``evaluate.py --task multiple_choice --model_name_or_path M [--gguf_file F] --mc_tasks xnli rte cb
    paws-x boolq sst-2 bigbench [--bigbench_dir DIR] [--mc_normalization token|word|sum] [--batch_size N]
    [--max_examples N] [--mc_scoring shared_prefix|full] --output_dir OUT`` (:mod:`lsrmwf.commands.evaluate`)
    loads the causal LM, calls :func:`run_multiple_choice` with the cache ``OUT/mc_cache.jsonl`` and writes
    ``mc_results.json`` and ``mc_results.md``; with ``--base_url URL --model NAME`` instead of a local model
    the candidates are scored by the served model (:mod:`lsrmwf.evaluation.mc_served`), same files;
    and the helper ``python -m lsrmwf.evaluation.multiple_choice select-bigbench DIR`` prints the
    task list the selection rule gives on a fetched BIG-bench.
"""

import hashlib
import inspect
import json
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..io import InputError
from .mc_tasks import (  # noqa: F401  (re-exported: the public API lives here)
    BIGBENCH_DEFAULTS,
    BIGBENCH_SEED,
    GLUE_STYLE_TASKS,
    MCExample,
    MCTask,
    bigbench_prompt,
    bigbench_task_names,
    is_multiple_choice_bigbench_task,
    load_bigbench_task,
    load_glue_style_task,
    load_jsonl_task,
    load_tasks,
    select_bigbench_tasks,
)
from .shared_prefix import score_examples_shared_prefix, supports_shared_prefix

NORMALIZATIONS = ("token", "word", "sum")
DEFAULT_NORMALIZATION = "token"
SCORINGS = ("full", "shared_prefix")
DEFAULT_SCORING = "shared_prefix"
SCORING_VERSION = 1  # part of every cache key; bump when the scoring path changes its numbers

# ----------------------------------------------------------------------------------------------
# Tokenization


def join_continuation(prompt: str, choice: str) -> str:
    """The continuation scored for ``choice``: itself, or with a leading space when neither side
    has whitespace at the boundary."""
    if not prompt or prompt[-1].isspace() or choice[:1].isspace():
        return choice
    return " " + choice


def start_ids_of(tokenizer) -> List[int]:
    """The special tokens the tokenizer puts in front of any text (e.g. ``[bos]``), maybe none."""
    probe = "a b"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k:k + len(plain)] == plain:
            return list(full[:k])
    return []


def _fallback_start(tokenizer) -> List[int]:
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return [tid]
    raise InputError("the prompt is empty and the tokenizer has no bos/eos token to condition the first candidate "
                     "token on")


def encode_pair(tokenizer, prompt: str, choice: str, start_ids: Optional[List[int]] = None,
                max_length: Optional[int] = None) -> Tuple[List[int], int]:
    """Token ids of ``prompt`` + candidate and the number of leading ids that are context.

    Follows the convention in the module docstring; the candidate's tokens are ``ids[n_context:]``.
    """
    if start_ids is None:
        start_ids = start_ids_of(tokenizer)
    continuation = join_continuation(prompt, choice)
    context = prompt.rstrip(" ")
    continuation = prompt[len(context):] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"]) if context else 0
    if len(whole) <= n_ctx:
        raise InputError(f"choice {choice!r} encodes to no tokens after the prompt")
    start = list(start_ids) if (start_ids or n_ctx) else _fallback_start(tokenizer)
    ids = start + list(whole)
    n_ctx += len(start)
    if max_length is not None and len(ids) - 1 > max_length:
        cut = len(ids) - 1 - max_length  # the model reads ids[:-1]
        if cut >= n_ctx:
            raise InputError(f"choice {choice!r} alone ({len(ids) - n_ctx} tokens) does not fit the model's "
                             f"{max_length} positions")
        ids, n_ctx = ids[cut:], n_ctx - cut
    return ids, n_ctx


def _max_length(model) -> Optional[int]:
    cfg = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


# ----------------------------------------------------------------------------------------------
# Scoring


def _accepts_logits_to_keep(model) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


@torch.inference_mode()
def score_sequences(model, sequences: Sequence[Tuple[List[int], int]], batch_size: int = 8,
                    device=None, pad_id: int = 0) -> List[float]:
    """Sum of log-probabilities of ``ids[n_ctx:]`` given ``ids[:n_ctx]`` for each ``(ids, n_ctx)``.

    One forward per ``batch_size`` sequences, right-padded with an attention mask; log-softmax in
    float32 over the candidate positions only. Models whose ``forward`` takes ``logits_to_keep``
    (transformers 5's causal LMs) compute logits only from the batch's earliest candidate position
    on, which spares the vocabulary projection over long prompts.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is None:
        device = next(model.parameters()).device
    out: List[float] = [0.0] * len(sequences)
    for b in range(0, len(sequences), batch_size):
        chunk = sequences[b:b + batch_size]
        width = max(len(ids) - 1 for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, (ids, _) in enumerate(chunk):
            input_ids[r, :len(ids) - 1] = torch.tensor(ids[:-1], dtype=torch.long)
            mask[r, :len(ids) - 1] = 1
        kwargs, offset = {}, 0
        first = min(n_ctx for _, n_ctx in chunk) - 1
        if first > 0 and _accepts_logits_to_keep(model):
            # project only the positions that predict candidate tokens onto the vocabulary
            kwargs["logits_to_keep"], offset = width - first, first
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs).logits
        for r, (ids, n_ctx) in enumerate(chunk):
            rows = logits[r, n_ctx - 1 - offset:len(ids) - 1 - offset].float()
            target = torch.tensor(ids[n_ctx:], dtype=torch.long, device=rows.device)
            lp = torch.log_softmax(rows, dim=-1).gather(-1, target[:, None]).double().sum()
            out[b + r] = float(lp)
    return out


def normalize(logprob_sum: float, n_tokens: int, n_words: int, normalization: str = DEFAULT_NORMALIZATION) -> float:
    """A candidate's score from its log-probability sum, token count and word count."""
    if normalization == "token":
        return logprob_sum / n_tokens
    if normalization == "word":
        return logprob_sum / max(n_words, 1)
    if normalization == "sum":
        return logprob_sum
    raise InputError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")


def count_words(choice: str) -> int:
    return max(len(choice.split()), 1)


# ----------------------------------------------------------------------------------------------
# Cache


def model_fingerprint(model, tokenizer) -> str:
    """A hash of the model's class, config and every parameter and buffer, and of the tokenizer's
    class and vocabulary: two checkpoints of one architecture get different fingerprints."""
    h = hashlib.sha256()
    h.update(f"v{SCORING_VERSION}|{type(model).__name__}|".encode())
    cfg = getattr(model, "config", None)
    if cfg is not None:
        d = cfg.to_dict()
        for k in ("_name_or_path", "transformers_version", "name_or_path"):
            d.pop(k, None)
        h.update(json.dumps(d, sort_keys=True, default=str).encode())
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(f"|{type(tokenizer).__name__}|".encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps(start_ids_of(tokenizer)).encode())
    return h.hexdigest()[:20]


def _example_hash(ex: MCExample) -> str:
    return hashlib.sha256(json.dumps([ex.prompt, ex.choices], ensure_ascii=False).encode()).hexdigest()[:16]


class ScoreCache:
    """Append-only JSONL of per-example candidate scores.

    Row: ``{"task", "index", "model", "scoring", "example", "logprob_sums", "tokens", "words"}``; looked up
    by (task, index) and accepted only when ``model``, ``scoring`` (the scoring mode; rows without it were
    written by the full path) and ``example`` (the example's text hash) match.
    """

    def __init__(self, path: str, fingerprint: str, scoring: str = "full"):
        self.path, self.fingerprint, self.scoring = path, fingerprint, scoring
        self.rows: Dict[Tuple[str, int], dict] = {}
        if os.path.exists(path):
            self._load()
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        self._drop_torn_tail()
        self._f = open(path, "a", encoding="utf-8")

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                if n == len(lines):
                    continue  # torn last write; dropped by _drop_torn_tail
                raise InputError(f"{self.path}:{n}: not a cache row (invalid JSON); move the file away to start "
                                 "afresh") from None
            if not isinstance(row, dict) or "task" not in row or "index" not in row:
                raise InputError(f"{self.path}:{n}: not a multiple-choice cache row")
            if row.get("model") == self.fingerprint and row.get("scoring", "full") == self.scoring:
                self.rows[(row["task"], int(row["index"]))] = row

    def _drop_torn_tail(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                try:
                    json.loads(data[cut:].decode("utf-8"))
                    f.write(b"\n")
                except (UnicodeDecodeError, json.JSONDecodeError):
                    f.truncate(cut)

    def get(self, task: str, index: int, ex: MCExample) -> Optional[dict]:
        row = self.rows.get((task, index))
        if (row is None or row.get("example") != _example_hash(ex)
                or len(row.get("logprob_sums", ())) != len(ex.choices)):
            return None
        return row

    def put(self, task: str, index: int, ex: MCExample, sums, tokens, words) -> dict:
        row = {"task": task, "index": index, "model": self.fingerprint, "scoring": self.scoring,
               "example": _example_hash(ex),
               "logprob_sums": list(sums), "tokens": list(tokens), "words": list(words)}
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()
        self.rows[(task, index)] = row
        return row

    def close(self) -> None:
        self._f.close()


# ----------------------------------------------------------------------------------------------
# Running tasks


def encode_example(tokenizer, task: MCTask, ex: MCExample, start_ids: List[int],
                   max_length: Optional[int]) -> List[Tuple[List[int], int]]:
    """The (ids, n_ctx) sequence of every candidate of ``ex`` (:func:`encode_pair`)."""
    try:
        return [encode_pair(tokenizer, ex.prompt, choice, start_ids, max_length) for choice in ex.choices]
    except InputError as e:
        raise InputError(f"{ex.source or task.name}: {e}") from None


def score_examples(model, examples: List[List[Tuple[List[int], int]]], scoring: str, batch_size: int, device,
                   pad_id: int) -> List[List[float]]:
    """Per example, the log-probability sum of each candidate, by ``scoring`` (``full`` or ``shared_prefix``)."""
    if scoring == "shared_prefix":
        return score_examples_shared_prefix(model, examples, batch_size, device, pad_id)
    flat = [(e, j, seq) for e, seqs in enumerate(examples) for j, seq in enumerate(seqs)]
    order = sorted(range(len(flat)), key=lambda s: -len(flat[s][2][0]))  # similar lengths in one batch
    sums = score_sequences(model, [flat[s][2] for s in order], batch_size, device, pad_id)
    out = [[0.0] * len(seqs) for seqs in examples]
    for s, v in zip(order, sums):
        out[flat[s][0]][flat[s][1]] = v
    return out


def _windows(task: MCTask, todo: List[int], window: int):
    """``todo`` cut into consecutive groups of at most ``window`` candidates (at least one example each)."""
    group, pairs = [], 0
    for i in todo:
        n = len(task.examples[i].choices)
        if group and pairs + n > window:
            yield group
            group, pairs = [], 0
        group.append(i)
        pairs += n
    if group:
        yield group


def _score_task(model, tokenizer, task: MCTask, batch_size: int, device, cache: Optional[ScoreCache],
                start_ids: List[int], max_length: Optional[int], pad_id: int, progress: bool,
                window: int, scoring: str = "full") -> Tuple[List[dict], int]:
    rows: List[Optional[dict]] = [None] * len(task.examples)
    todo = []
    for i, ex in enumerate(task.examples):
        hit = cache.get(task.name, i, ex) if cache else None
        if hit is not None:
            rows[i] = hit
        else:
            todo.append(i)
    hits = len(task.examples) - len(todo)
    bar = tqdm(total=len(task.examples), initial=hits, desc=task.name, disable=not progress, leave=False)
    try:
        for group in _windows(task, todo, window):
            seqs = [encode_example(tokenizer, task, task.examples[i], start_ids, max_length) for i in group]
            sums = score_examples(model, seqs, scoring, batch_size, device, pad_id)
            for i, s, sq in zip(group, sums, seqs):
                ex = task.examples[i]
                t = [len(ids) - n_ctx for ids, n_ctx in sq]
                w = [count_words(c) for c in ex.choices]
                rows[i] = (cache.put(task.name, i, ex, s, t, w) if cache
                           else {"logprob_sums": s, "tokens": t, "words": w})
            bar.update(len(group))
    finally:
        bar.close()
    return rows, hits


def mean_stderr(values: Sequence[float]) -> Optional[float]:
    """The standard error of the mean of ``values``: sample standard deviation (n - 1) over ``sqrt(n)``;
    ``None`` below two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def average_stderr(stderrs: Sequence[Optional[float]]) -> Optional[float]:
    """The standard error of the mean of independent means with these standard errors: ``sqrt(sum se^2) / k``;
    ``None`` when any is unknown or there are none."""
    if not stderrs or any(se is None for se in stderrs):
        return None
    return math.sqrt(sum(se * se for se in stderrs)) / len(stderrs)


def _task_entry(task: MCTask, rows: Sequence[dict], normalization: str) -> Tuple[dict, List[dict]]:
    """A task's result entry (accuracy, stderr, n, correct, kind, source[, subtasks, notes]) and its per-example
    details (index, prediction, correct, scores, the scores under every normalization)."""
    per_group: Dict[str, List[int]] = {}
    details = []
    for i, (ex, row) in enumerate(zip(task.examples, rows)):
        triples = list(zip(row["logprob_sums"], row["tokens"], row["words"]))
        by_norm = {norm: [normalize(s, t, w, norm) for s, t, w in triples] for norm in NORMALIZATIONS}
        scores = by_norm[normalization]
        pred = max(range(len(scores)), key=lambda j: (scores[j], -j))
        ok = int(pred in ex.correct)
        per_group.setdefault(ex.group, []).append(ok)
        details.append({"index": i, "prediction": pred, "correct": bool(ok), "scores": scores,
                        "scores_by_normalization": by_norm})
    n = sum(len(v) for v in per_group.values())
    n_correct = sum(sum(v) for v in per_group.values())
    entry = {"n": n, "correct": n_correct, "kind": task.kind, "source": task.source}
    if task.info.get("notes"):
        entry["notes"] = list(task.info["notes"])
    if len(per_group) > 1 or "" not in per_group:
        subs = {g: sum(v) / len(v) for g, v in sorted(per_group.items())}
        entry["subtasks"] = subs
        entry["accuracy"] = sum(subs.values()) / len(subs)  # BIG-bench: mean over subtasks
        entry["stderr"] = average_stderr([mean_stderr(v) for _, v in sorted(per_group.items())])
    else:
        entry["accuracy"] = n_correct / n
        entry["stderr"] = mean_stderr(per_group[""])
    return entry, details


def summarize_scores(tasks: Sequence[MCTask], rows_by_task: Dict[str, Sequence[dict]], normalization: str,
                     return_details: bool = False) -> dict:
    """Accuracies and averages (see :func:`run_multiple_choice`) from every example's cached scores
    (rows with ``logprob_sums``, ``tokens``, ``words``), whichever way they were scored."""
    result = {"accuracy": {}, "tasks": {}, "normalization": normalization}
    details = {}
    for task in tasks:
        entry, details[task.name] = _task_entry(task, rows_by_task[task.name], normalization)
        result["tasks"][task.name] = entry
        result["accuracy"][task.name] = entry["accuracy"]
    accs = result["accuracy"]
    bb = [accs[t.name] for t in tasks if t.kind == "bigbench"]
    other = [accs[t.name] for t in tasks if t.kind != "bigbench"]
    result["bigbench_average"] = sum(bb) / len(bb) if bb else None
    columns = other + ([result["bigbench_average"]] if bb else [])
    result["average"] = sum(columns) / len(columns) if columns else None
    se = {t.name: result["tasks"][t.name]["stderr"] for t in tasks}
    bb_se = average_stderr([se[t.name] for t in tasks if t.kind == "bigbench"])
    result["bigbench_average_stderr"] = bb_se
    result["average_stderr"] = average_stderr([se[t.name] for t in tasks if t.kind != "bigbench"]
                                              + ([bb_se] if bb else []))
    result["stderr_note"] = ("stderr: per task, the sample standard deviation of per-example correctness over "
                             "sqrt(n) (a BIG-bench task with subtasks: sqrt(sum of squared subtask stderrs) / "
                             "subtasks); of the averages, the standard error of a mean of independent task means, "
                             "sqrt(sum of squared task stderrs) / tasks")
    result["macro_average"] = sum(accs.values()) / len(accs) if accs else None
    if return_details:
        result["details"] = details
    return result


def check_tasks(tasks: Sequence[MCTask], normalization: str) -> None:
    """Refuse an unknown normalization, repeated task names and empty tasks before any scoring."""
    if normalization not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"task names must be unique; repeated: {', '.join(dup)}")
    for task in tasks:
        if not task.examples:
            raise InputError(f"{task.source}: task {task.name!r} has no examples")


def _check_scoring(model, scoring: str) -> None:
    if scoring not in SCORINGS:
        raise InputError(f"unknown --mc_scoring {scoring!r}; use one of {', '.join(SCORINGS)}")
    if scoring == "shared_prefix" and not supports_shared_prefix(model):
        raise InputError(f"{type(model).__name__}.forward takes no key/value cache with explicit position_ids, so "
                         f"candidates cannot share the prompt's pass; use --mc_scoring full")


def run_multiple_choice(model, tokenizer, tasks: Sequence[MCTask], batch_size: int = 8,
                        normalization: str = DEFAULT_NORMALIZATION, cache_path: Optional[str] = None,
                        device=None, fingerprint: Optional[str] = None, progress: bool = True,
                        return_details: bool = False, scoring: str = DEFAULT_SCORING) -> dict:
    """Score every example of ``tasks`` with ``model`` and return accuracies.

    ``model``: a causal LM (``model(input_ids, attention_mask).logits``), already on ``device``
    (default: the device of its first parameter). ``normalization``: "token" (default), "word" or
    "sum" (see the module docstring). ``scoring``: "shared_prefix" (default: each prompt runs once,
    :mod:`lsrmwf.evaluation.shared_prefix`) or "full" (every candidate with its own copy of the
    prompt); both give the same numbers. ``cache_path``: resumable per-example JSONL cache (rows of
    one scoring mode are never read by the other). ``fingerprint``: the model's cache identity
    (default :func:`model_fingerprint`, which hashes every weight; pass e.g. a checkpoint path and
    step to skip that for very large models).

    Returns ``{"accuracy": {task: acc}, "bigbench_average", "average", "macro_average",
    "tasks": {task: {"accuracy", "n", "correct", "kind", "source"[, "subtasks", "notes"]}}, "normalization",
    "scoring", "model_fingerprint", "cached": examples read from the cache, "scored": examples scored now}``;
    with ``return_details`` also ``"details": {task: [{"index", "prediction", "correct", "scores"}]}``.
    """
    check_tasks(tasks, normalization)
    _check_scoring(model, scoring)
    was_training = model.training
    model.eval()
    cache = None
    if cache_path:
        cache = ScoreCache(cache_path, fingerprint or model_fingerprint(model, tokenizer), scoring)
    start_ids = start_ids_of(tokenizer)
    max_length = _max_length(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    window = max(batch_size * 16, 64)
    rows_by_task, cached = {}, 0
    try:
        for task in tasks:
            rows_by_task[task.name], hits = _score_task(model, tokenizer, task, batch_size, device, cache, start_ids,
                                                        max_length, pad_id, progress, window, scoring)
            cached += hits
    finally:
        if cache is not None:
            cache.close()
        if was_training:
            model.train()
    result = summarize_scores(tasks, rows_by_task, normalization, return_details)
    scored = sum(len(t.examples) for t in tasks) - cached
    result.update(scoring=scoring, model_fingerprint=cache.fingerprint if cache else fingerprint, cached=cached,
                  scored=scored)
    return result


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m lsrmwf.evaluation.multiple_choice")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select-bigbench", help="print the multiple-choice BIG-bench tasks the selection rule keeps")
    s.add_argument("bigbench_dir", help="the fetched benchmark_tasks folder (scripts/fetch_bigbench.py)")
    s.add_argument("--why", action="store_true", help="also print why each dropped task was dropped")
    args = p.parse_args(argv)
    if args.cmd == "select-bigbench":
        kept = 0
        for d in sorted(os.listdir(args.bigbench_dir)):
            path = os.path.join(args.bigbench_dir, d, "task.json")
            if not os.path.isfile(path):
                continue
            keep, why = is_multiple_choice_bigbench_task(path)
            if keep:
                kept += 1
                print(d)
            elif args.why:
                print(f"# dropped {d}: {why}", file=sys.stderr)
        print(f"# {kept} tasks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
