"""TaskDistillation's pseudo answers (BRD paper, section 4.1): the teacher *generates* an answer to every
training input of a task, and the answer is mapped to one of the task's choices.

``generate_rationales.py --task task_answers --data_file <task_data>/train/<task>.jsonl`` reads a split file
of ``python -m lsrmwf.commands.task_data`` (rows ``{id, prompt, choices, label}``) and asks, per row, for the
continuation of ``prompt``: through ``/v1/completions`` (the prompt as raw text; ``--task_answers_api
completions``) or as one chat user turn (``chat``); an answer cut off at ``--max_tokens`` is kept (a base
model rarely stops by itself; the first line decides). Rows go through the package's store (concurrent,
resumable after kill -9, nothing sent twice): ``{id, prompt, choices, label, answer, choice, mapping}``.

The matching rule (:func:`map_answer`, ``mapping`` in every row): the answer's first non-empty line, without
HTML tags and markdown emphasis (Gemma-3 270M answers ``<strong>correct</strong>.``), stripped of surrounding
whitespace, quotes and trailing punctuation, compared case-insensitively; a choice
matches when that text equals it or starts with it followed by a non-alphanumeric character (``"Yes, it
does"`` is ``Yes``); when several match, the longest choice wins (``"no"`` vs ``"not sure"``). An answer
that matches no choice is kept with ``choice: null``: counted as unmappable (``train.py --task_answers_file``
leaves it out and says how many), not retried and not an error.
"""

import logging
import re
from dataclasses import dataclass
from typing import Iterable, List, Optional

from ..io import InputError, iter_jsonl
from .client import LLMClient, RequestError, Usage

logger = logging.getLogger(__name__)

MAPPING_RULE = "first-line-prefix-v2"
_MARKUP = re.compile(r"</?[A-Za-z][^>]*>|[*_]")  # HTML tags, markdown emphasis
_STRIP = " \t\r\n\"'`“”‘’"
_TRAILING = ".,;:!?)]}"


def _normal(text: str) -> str:
    return text.strip(_STRIP).rstrip(_TRAILING).strip(_STRIP).lower()


def map_answer(answer: str, choices: List[str]) -> Optional[int]:
    """The index of the choice ``answer`` names by the rule in the module docstring, or ``None``."""
    lines = [line for line in (answer or "").splitlines() if line.strip()]
    if not lines:
        return None
    first = _MARKUP.sub("", lines[0]).strip(_STRIP).lower()
    said = _normal(first)
    best = None
    for j, choice in enumerate(choices):
        c = _normal(choice)
        if not c:
            continue
        hit = said == c or (first.startswith(c) and (len(first) == len(c) or not first[len(c)].isalnum()))
        if hit and (best is None or len(c) > len(_normal(choices[best]))):
            best = j
    return best


def read_task_rows(path: str, max_examples: Optional[int] = None) -> List[dict]:
    """The rows of a task split file; a row without a string prompt or with fewer than 2 choices is an error
    naming file, line and field."""
    rows = []
    for n, row in iter_jsonl(path):
        where = f"{path}:{n}"
        if not isinstance(row.get("prompt"), str):
            raise InputError(f"{where}: field 'prompt' is missing or not a string")
        choices = row.get("choices")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise InputError(f"{where}: field 'choices' must be a list of at least 2 strings")
        rows.append({"id": str(row.get("id", f"{path}:{n}")), "prompt": row["prompt"], "choices": choices,
                     "label": row.get("label")})
        if max_examples and len(rows) >= max_examples:
            break
    if not rows:
        raise InputError(f"{path}: no rows")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: field 'id' repeats (every row needs its own id to be resumable)")
    return rows


@dataclass
class TaskAnswersTask:
    """One row per training input: the teacher's generated answer and the choice it maps to."""

    api: str = "completions"
    name: str = "task_answers"

    def settings(self) -> dict:
        return {"task_answers_api": self.api, "mapping": MAPPING_RULE}

    def items(self, rows) -> Iterable[dict]:
        yield from rows

    async def process(self, item: dict, client: LLMClient, endpoint: int, usage: Usage) -> dict:
        from .pipeline import failed

        row = {k: item[k] for k in ("id", "prompt", "choices", "label")}
        row.update(answer=None, choice=None, mapping=MAPPING_RULE)
        usage.requests += 1  # counted when sent
        try:
            if self.api == "completions":
                answer = await client.complete(endpoint, item["prompt"])
            else:
                answer = await client.chat(endpoint, [{"role": "user", "content": item["prompt"]}], None)
        except RequestError as e:
            return failed(row, f"task answer: {e}", e)
        usage.add(answer.usage)
        # an answer cut off at --max_tokens is kept: its first line is what the rule reads
        row.update(answer=answer.text, choice=map_answer(answer.text, item["choices"]),
                   finish_reason=answer.finish_reason, error=None)
        return row

    def reselect(self, store, ds) -> int:
        return 0

    def file_summary(self, store) -> dict:
        rows = list(store.done.values())
        mapped = [r for r in rows if r.get("choice") is not None]
        gold = [r for r in mapped if isinstance(r.get("label"), list)]
        agree = sum(1 for r in gold if r["choice"] in r["label"])
        return {"rows_done": len(rows), "mapped": len(mapped), "unmappable": len(rows) - len(mapped),
                "teacher_accuracy": round(agree / len(gold), 4) if gold else None, "mapping": MAPPING_RULE}
