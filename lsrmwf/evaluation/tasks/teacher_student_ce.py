"""``--task teacher_student_ce``: the BRD paper's Table 5, per task CE = -sum over its texts of
pbar*log(qbar) between a teacher and a student causal LM, and its table (``ce_results.json`` / ``.md``)."""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from ...io import InputError
from ...io.provenance import PROVENANCE_KEY, provenance
from ..generation import resolve_device
from .arguments import GenerationArguments, InputArguments
from .multiple_choice import MultipleChoiceArguments, load_mc_tasks, write_table
from .registry import EvaluationTask, register_task


@dataclass
class CrossEntropyArguments:
    """The teacher, and how a text's probability is averaged."""

    _argument_group_name = "teacher_student_ce"

    teacher_model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "teacher_student_ce: the teacher causal LM (local directory or hub name). A served teacher "
                          "would need prompt log-probs (vLLM); llama.cpp ignores echo, so load it here."})
    teacher_gguf_file: Optional[str] = field(
        default=None,
        metadata={"help": "teacher_student_ce: the teacher's GGUF file inside --teacher_model_name_or_path."})
    ce_average: str = field(
        default="arithmetic",
        metadata={"help": "teacher_student_ce: a text's average per-token probability as the arithmetic mean of "
                          "token probabilities (default) or geometric (exp of the mean log-prob).",
                  "choices": ["arithmetic", "geometric"]})
    ce_text: str = field(
        default="prompt",
        metadata={"help": "teacher_student_ce: the text of an example: its prompt, or prompt_answer (the prompt "
                          "followed by its first correct choice).", "choices": ["prompt", "prompt_answer"]})


def task_texts(tasks, ce_text: str) -> Dict[str, List[str]]:
    """Each task's texts: the prompts, or each prompt followed by its first correct choice."""
    texts = {}
    for t in tasks:
        if ce_text == "prompt":
            texts[t.name] = [ex.prompt for ex in t.examples]
        else:
            texts[t.name] = [ex.prompt + (" " if ex.prompt and not ex.prompt[-1].isspace() else "")
                             + ex.choices[ex.correct[0]] for ex in t.examples]
    return texts


def ce_table(results: dict) -> str:
    """The CE table (markdown): one row per task and the BIG-bench average."""
    lines = [f"Teacher-student cross-entropy (lower: closer), teacher {results['teacher']}, "
             f"student {results['student']}", "", "| task | texts | CE |", "|---|---:|---:|"]
    lines += [f"| {name} | {r['n']} | {r['ce']:.2f} |" for name, r in results["tasks"].items()]
    if results["bigbench_average"] is not None:
        lines.append(f"| BIG-bench average | | {results['bigbench_average']:.2f} |")
    return "\n".join(lines) + "\n"


@register_task("teacher_student_ce")
class TeacherStudentCETask(EvaluationTask):
    summary = ("BRD paper Table 5: CE between --teacher_model_name_or_path and --model_name_or_path over the "
               "tasks' texts")
    arguments = (MultipleChoiceArguments, CrossEntropyArguments)

    def run(self, args: Mapping[type, object]) -> dict:
        """Per task CE (BRD Table 5); ``ce_results.json`` and ``ce_results.md``. The teacher scores every text first
        and is released before the student loads; ``ce_teacher.jsonl`` / ``ce_student.jsonl`` hold each text's value
        as it finishes, so a rerun of a killed run scores only what is missing."""
        from ..causal_lm import ce_entry, check_causal_lm

        inp, gen = args[InputArguments], args[GenerationArguments]
        mc, ce = args[MultipleChoiceArguments], args[CrossEntropyArguments]
        if not ce.teacher_model_name_or_path:
            raise InputError("--task teacher_student_ce needs --teacher_model_name_or_path (and the student as "
                             "--model_name_or_path)")
        tasks = load_mc_tasks(self.name, inp, mc)
        texts = task_texts(tasks, ce.ce_text)
        os.makedirs(inp.output_dir, exist_ok=True)
        check_causal_lm(ce.teacher_model_name_or_path, gen.dtype, ce.teacher_gguf_file, "--teacher_model_name_or_path")
        check_causal_lm(inp.model_name_or_path, gen.dtype, mc.gguf_file)  # both refused before any scoring
        p = self.scores("teacher", ce.teacher_model_name_or_path, ce.teacher_gguf_file, texts, inp, gen, ce)
        q = self.scores("student", inp.model_name_or_path, mc.gguf_file, texts, inp, gen, ce)
        per_task = {name: ce_entry(p[name], q[name]) for name in texts}
        bb = [per_task[t.name]["ce"] for t in tasks if t.kind == "bigbench"]
        results = {"teacher": ce.teacher_model_name_or_path, "student": inp.model_name_or_path,
                   "average": ce.ce_average, "text": ce.ce_text, "tasks": per_task,
                   "bigbench_average": sum(bb) / len(bb) if bb else None,
                   PROVENANCE_KEY: provenance(args.values(), device=gen.device_map or resolve_device(gen.device))}
        write_table(inp.output_dir, "ce_results", results, ce_table(results))
        return results

    @staticmethod
    def scores(role: str, path: str, gguf_file: Optional[str], texts: Dict[str, List[str]], inp: InputArguments,
               gen: GenerationArguments, ce: CrossEntropyArguments) -> Dict[str, List[float]]:
        """Each task's per-text values under one model (``role``), cached in ``OUT/ce_<role>.jsonl``; the model is
        loaded only when a text is missing and released before this returns."""
        from ...io.fingerprint import checkpoint_fingerprint
        from ...io.store import ResultStore, cache_key
        from ..causal_lm import cached_probabilities, load_causal_lm, text_id

        flag = "--teacher_model_name_or_path" if role == "teacher" else "--model_name_or_path"
        settings = {"model": checkpoint_fingerprint(path), "gguf_file": gguf_file, "dtype": gen.dtype,
                    "average": ce.ce_average}
        cache = os.path.join(inp.output_dir, f"ce_{role}.jsonl")
        ids = {name: [text_id(role, name, i, t) for i, t in enumerate(tx)] for name, tx in texts.items()}
        items = [(i, t) for name, tx in texts.items() for i, t in zip(ids[name], tx)]
        with ResultStore(cache, cache_key(settings), settings, fix=f"delete {cache} or use another --output_dir to "
                                                                    f"score with the new {role}") as store:
            values = cached_probabilities(
                lambda: load_causal_lm(path, gen.device, gen.dtype, inp.cache_dir, gguf_file, flag=flag,
                                       device_map=gen.device_map),
                items, store, ce.ce_average, gen.batch_size, progress=not inp.no_progress, desc=role)
        return {name: [values[i] for i in ids[name]] for name in texts}
