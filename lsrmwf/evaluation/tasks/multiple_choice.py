"""``--task multiple_choice``: a causal LM's accuracy per task by candidate log-likelihood (BRD paper
section 3.3), the BIG-bench and overall averages, and their table (``mc_results.json`` / ``.md``)."""

import logging
import os
from dataclasses import dataclass, field
from typing import List, Mapping, Optional

from ...io import InputError, write_json_atomic, write_jsonl_atomic
from ...io.provenance import PROVENANCE_KEY, provenance
from .arguments import GenerationArguments, InputArguments
from .registry import EvaluationTask, register_task

logger = logging.getLogger("lsrmwf.evaluate")


@dataclass
class MultipleChoiceArguments:
    """The tasks and how a candidate is scored (also the texts of ``teacher_student_ce``)."""

    _argument_group_name = "multiple_choice and teacher_student_ce"

    mc_tasks: Optional[List[str]] = field(
        default=None,
        metadata={"help": "multiple_choice / teacher_student_ce: task specs: xnli rte cb paws-x boolq sst-2 (hub; "
                          "NAME=FILE reads a local JSONL/CSV), bigbench (the committed list of the paper's "
                          "multiple-choice tasks), bigbench:NAME or bigbench:PATH, jsonl:PATH or a .jsonl path "
                          "(rows {prompt, choices, label})."})
    bigbench_dir: Optional[str] = field(
        default=None, metadata={"help": "The fetched BIG-bench benchmark_tasks folder (scripts/fetch_bigbench.py; "
                                        "default ~/.cache/lsrmwf/bigbench)."})
    mc_split: Optional[str] = field(
        default=None, metadata={"help": "Split of the hub GLUE-style tasks (default: each task's evaluation split)."})
    mc_normalization: str = field(
        default="token",
        metadata={"help": "Candidate score: token (average per-token log-prob, the paper's formula; default), word "
                          "(sum / words) or sum.", "choices": ["token", "word", "sum"]})
    bigbench_prompt: str = field(
        default="bigbench",
        metadata={"help": "BIG-bench prompts: bigbench (BIG-bench's zero-shot format, choices appended where the task "
                          "asks; default) or paper (the BRD paper's 'task prefix and input', no choices listed). "
                          "Stated in the results.", "choices": ["bigbench", "paper"]})
    bigbench_max_examples: Optional[int] = field(
        default=None, metadata={"help": "A seeded sample of at most N examples of each BIG-bench task, the other "
                                        "tasks whole (Table 5: 1000)."})
    gguf_file: Optional[str] = field(
        default=None, metadata={"help": "Load --model_name_or_path's weights from this GGUF file inside it "
                                        "(transformers dequantizes it)."})


@dataclass
class MultipleChoiceScoringArguments:
    """How ``--task multiple_choice`` scores candidates: locally (shared prefix or full) or by a served model."""

    _argument_group_name = "multiple_choice scoring"

    mc_scoring: str = field(
        default="shared_prefix",
        metadata={"help": "multiple_choice: shared_prefix (each prompt runs once, its candidates scored against its "
                          "key/value cache; default) or full (each candidate with its own copy of the prompt, for "
                          "models whose cache cannot be reused). Same numbers; the mode is part of the cache key.",
                  "choices": ["shared_prefix", "full"]})
    base_url: Optional[List[str]] = field(
        default=None,
        metadata={"help": "multiple_choice: score candidates with the model served here (OpenAI-compatible, "
                          "/v1/completions with echo, e.g. vLLM) instead of --model_name_or_path; rows in "
                          "OUT/mc_served.jsonl (resumable)."})
    model: Optional[str] = field(
        default=None, metadata={"help": "multiple_choice with --base_url: the served model's name."})
    api_key: Optional[str] = field(
        default=None, metadata={"help": "multiple_choice with --base_url: API key (default: $OPENAI_API_KEY). Never "
                                        "written to any file or log."})
    concurrency: int = field(
        default=8, metadata={"help": "multiple_choice with --base_url: examples in flight at once."})
    log_samples: bool = field(
        default=False,
        metadata={"help": "multiple_choice: also write OUT/mc_samples.jsonl, one row per example: task, index, "
                          "prompt, choices, scores (each choice's score under every normalization), prediction, "
                          "gold, correct."})


def load_mc_tasks(task_name: str, inp: InputArguments, mc: MultipleChoiceArguments):
    """The ``--mc_tasks`` of ``--task task_name``, checked (``--output_dir`` too) before any model loads."""
    from ..mc_tasks import load_tasks

    if not mc.mc_tasks:
        raise InputError(f"--task {task_name} needs --mc_tasks (e.g. xnli rte cb paws-x boolq sst-2 bigbench)")
    if not inp.output_dir:
        raise InputError("--output_dir is required")
    return load_tasks(mc.mc_tasks, bigbench_dir=mc.bigbench_dir, max_examples=inp.max_examples, split=mc.mc_split,
                      prompt_style=mc.bigbench_prompt, bigbench_max_examples=mc.bigbench_max_examples)


def percent(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def mc_table(results: dict, normalization: str) -> str:
    """The accuracy table (markdown): one row per task, the BIG-bench average and the paper's Average."""
    style = f"; BIG-bench prompt: {results['bigbench_prompt']}" if results.get("bigbench_prompt") else ""
    lines = [f"Multiple choice: {results['model']} (score: {normalization}{style}; accuracy in %)", "",
             "| task | examples | accuracy | stderr |", "|---|---:|---:|---:|"]
    for name, entry in results["tasks"].items():
        lines.append(f"| {name} | {entry['n']} | {percent(entry['accuracy'])} | {percent(entry['stderr'])} |")
    if results["bigbench_average"] is not None:
        lines.append(f"| BIG-bench average | | {percent(results['bigbench_average'])} | "
                     f"{percent(results['bigbench_average_stderr'])} |")
    lines.append(f"| **Average** | | **{percent(results['average'])}** | {percent(results['average_stderr'])} |")
    return "\n".join(lines) + "\n"


def sample_rows(tasks, details: Mapping[str, list]):
    """``--log_samples`` rows: per example its task, index, prompt, choices, every normalization's scores,
    the prediction, the gold indices and whether it was correct."""
    for task in tasks:
        for d in details[task.name]:
            ex = task.examples[d["index"]]
            yield {"task": task.name, "index": d["index"], "prompt": ex.prompt, "choices": list(ex.choices),
                   "scores": d["scores_by_normalization"], "prediction": d["prediction"], "gold": list(ex.correct),
                   "correct": d["correct"]}


def write_table(output_dir: str, stem: str, results: dict, table: str) -> None:
    """``<stem>.json`` and ``<stem>.md`` in ``output_dir``; the table is printed too."""
    write_json_atomic(os.path.join(output_dir, f"{stem}.json"), results)
    with open(os.path.join(output_dir, f"{stem}.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table)


@register_task("multiple_choice")
class MultipleChoiceTask(EvaluationTask):
    summary = "a causal LM's accuracy per task and the average; BRD paper section 3.3"
    arguments = (MultipleChoiceArguments, MultipleChoiceScoringArguments)

    def run(self, args: Mapping[type, object]) -> dict:
        """Accuracy per task and the averages: ``mc_results.json``, ``mc_results.md``; ``mc_cache.jsonl`` (local)
        or ``mc_served.jsonl`` (``--base_url``) resumes a killed run."""
        inp, mc, how = args[InputArguments], args[MultipleChoiceArguments], args[MultipleChoiceScoringArguments]
        tasks = load_mc_tasks(self.name, inp, mc)
        os.makedirs(inp.output_dir, exist_ok=True)
        if how.base_url:
            results, cache = self.served(tasks, inp, mc, how)
        else:
            results, cache = self.local(tasks, inp, args[GenerationArguments], mc, how)
        results[PROVENANCE_KEY] = provenance(args.values(), device=results.pop("device"))
        details = results.pop("details")
        if how.log_samples:
            write_jsonl_atomic(os.path.join(inp.output_dir, "mc_samples.jsonl"), sample_rows(tasks, details),
                               "the per-example log")
        results["bigbench_prompt"] = mc.bigbench_prompt
        write_table(inp.output_dir, "mc_results", results, mc_table(results, mc.mc_normalization))
        logger.info("%d examples scored now, %d read from %s", results["scored"], results["cached"], cache)
        return results

    @staticmethod
    def served(tasks, inp: InputArguments, mc: MultipleChoiceArguments, how: MultipleChoiceScoringArguments):
        from ..mc_served import run_multiple_choice_served

        if inp.model_name_or_path or mc.gguf_file:
            raise InputError("--base_url scores with a served model; drop --model_name_or_path / --gguf_file")
        cache = os.path.join(inp.output_dir, "mc_served.jsonl")
        results = run_multiple_choice_served(tasks, how.base_url, how.model, cache, mc.mc_normalization,
                                             how.api_key or os.environ.get("OPENAI_API_KEY"), how.concurrency,
                                             progress=not inp.no_progress, return_details=True)
        results["model"] = f"{how.model} at {', '.join(how.base_url)}"
        results["device"] = f"served: {', '.join(how.base_url)}"
        return results, cache

    @staticmethod
    def local(tasks, inp: InputArguments, gen: GenerationArguments, mc: MultipleChoiceArguments,
              how: MultipleChoiceScoringArguments):
        from ..causal_lm import load_causal_lm
        from ..multiple_choice import run_multiple_choice

        model, tokenizer = load_causal_lm(inp.model_name_or_path, gen.device, gen.dtype, inp.cache_dir, mc.gguf_file,
                                          device_map=gen.device_map)
        cache = os.path.join(inp.output_dir, "mc_cache.jsonl")
        results = run_multiple_choice(model, tokenizer, tasks, batch_size=gen.batch_size,
                                      normalization=mc.mc_normalization, cache_path=cache,
                                      progress=not inp.no_progress, scoring=how.mc_scoring, return_details=True)
        results["model"] = inp.model_name_or_path if not mc.gguf_file else f"{inp.model_name_or_path}/{mc.gguf_file}"
        results["device"] = str(next(model.parameters()).device)
        return results, cache
