"""Multiple choice on a served model: ``evaluate.py --task multiple_choice --base_url URL --model NAME``.

Every candidate is scored through ``/v1/completions`` with ``echo=true, max_tokens=0, logprobs=1``
(:class:`lsrmwf.llm.scoring.ContinuationScoringTask`): the text sent is the local path's
(:func:`~lsrmwf.evaluation.multiple_choice.encode_pair`: the prompt without its trailing spaces, then
the spaces and the candidate), and the candidate's tokens are the server's tokens from the
candidate's first character on (found by ``text_offset``; a token across the boundary counts towards
the candidate). The server adds its own start token. One row per example goes to a
:class:`~lsrmwf.io.store.ResultStore` file (concurrent, resumable after kill -9, nothing asked twice;
the served model's name is part of its cache key); the accuracies are computed as the local path's
(:func:`~lsrmwf.evaluation.multiple_choice.summarize_scores`), so the results files are the same.

A server that ignores ``echo`` (llama-server: log-probs of generated tokens only) or rejects it stops
the run at its first answer, before any row is written.
"""

from typing import Dict, List, Optional, Sequence

from ..io import InputError, iter_jsonl
from ..llm.client import GenerationParams, LLMClient
from ..llm.pipeline import FailurePolicy, run_task
from ..llm.scoring import ContinuationScoringTask, items_sha
from .multiple_choice import MCTask, check_tasks, count_words, join_continuation, summarize_scores


def served_items(tasks: Sequence[MCTask]) -> List[dict]:
    """One item per example: id ``<task>:<index>:<hash of its texts>`` (an edited example is asked again),
    the context and every candidate's continuation."""
    items = []
    for task in tasks:
        for i, ex in enumerate(task.examples):
            context = ex.prompt.rstrip(" ")
            continuations = [ex.prompt[len(context):] + join_continuation(ex.prompt, c) for c in ex.choices]
            sha = items_sha(context, continuations)
            items.append({"id": f"{task.name}:{i}:{sha}", "context": context, "continuations": continuations})
    return items


def _rows_by_task(tasks: Sequence[MCTask], items: List[dict], path: str) -> Dict[str, List[dict]]:
    done = {}
    for _, row in iter_jsonl(path, tolerate_torn_tail=True):
        if row.get("error") is None and "logprob_sums" in row:
            done[row["id"]] = row
    out, k, failed = {}, 0, []
    for task in tasks:
        rows = []
        for ex in task.examples:
            item = items[k]
            k += 1
            row = done.get(item["id"])
            if row is None:
                failed.append(item["id"])
                continue
            rows.append({"logprob_sums": row["logprob_sums"], "tokens": row["tokens"],
                         "words": [count_words(c) for c in ex.choices]})
        out[task.name] = rows
    if failed:
        raise InputError(f"{path}: {len(failed)} examples have no score (first: {failed[0]}; their errors are in the "
                         f"file); rerun the same command to retry them")
    return out


def run_multiple_choice_served(tasks: Sequence[MCTask], base_urls: List[str], model: str, output: str,
                               normalization: str = "token", api_key: Optional[str] = None, concurrency: int = 8,
                               progress: bool = True, timeout: Optional[float] = None,
                               return_details: bool = False) -> dict:
    """Accuracies (as :func:`~lsrmwf.evaluation.multiple_choice.run_multiple_choice` returns them) of the
    model served at ``base_urls`` under ``model``; rows in ``output``."""
    check_tasks(tasks, normalization)
    if not model:
        raise InputError("--base_url needs --model (the served model's name)")
    items = served_items(tasks)
    kwargs = {"timeout": timeout} if timeout else {}
    client = LLMClient(base_urls, api_key, GenerationParams(model=model, max_tokens=0, response_format="text"),
                       **kwargs)
    summary = run_task(ContinuationScoringTask(), items, client, output, concurrency, progress, policy=FailurePolicy())
    if summary["this_run"]["interrupted"]:
        raise InputError(f"interrupted; {output} keeps the finished examples: rerun to resume")
    result = summarize_scores(tasks, _rows_by_task(tasks, items, output), normalization, return_details)
    scored = summary["this_run"]["finished"]
    result.update(scoring="served", model_fingerprint=model, cached=len(items) - scored, scored=scored)
    return result
