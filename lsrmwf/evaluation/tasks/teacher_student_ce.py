"""``--task teacher_student_ce``: the BRD paper's Table 5, per task CE = -sum over its texts of
pbar*log(qbar) between a teacher and a student causal LM, and its table (``ce_results.json`` / ``.md``)."""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from ...io import InputError
from ...io.provenance import PROVENANCE_KEY, provenance
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
        """Per task CE (BRD Table 5); ``ce_results.json`` and ``ce_results.md``."""
        from ..causal_lm import load_causal_lm, teacher_student_ce

        inp, gen = args[InputArguments], args[GenerationArguments]
        mc, ce = args[MultipleChoiceArguments], args[CrossEntropyArguments]
        if not ce.teacher_model_name_or_path:
            raise InputError("--task teacher_student_ce needs --teacher_model_name_or_path (and the student as "
                             "--model_name_or_path)")
        tasks = load_mc_tasks(self.name, inp, mc)
        texts = task_texts(tasks, ce.ce_text)
        os.makedirs(inp.output_dir, exist_ok=True)
        teacher = load_causal_lm(ce.teacher_model_name_or_path, gen.device, gen.dtype, inp.cache_dir,
                                 ce.teacher_gguf_file, flag="--teacher_model_name_or_path")
        student = load_causal_lm(inp.model_name_or_path, gen.device, gen.dtype, inp.cache_dir, mc.gguf_file)
        per_task = {name: teacher_student_ce(*teacher, *student, tx, ce.ce_average, gen.batch_size)
                    for name, tx in texts.items()}
        bb = [per_task[t.name]["ce"] for t in tasks if t.kind == "bigbench"]
        results = {"teacher": ce.teacher_model_name_or_path, "student": inp.model_name_or_path,
                   "average": ce.ce_average, "text": ce.ce_text, "tasks": per_task,
                   "bigbench_average": sum(bb) / len(bb) if bb else None,
                   PROVENANCE_KEY: provenance(args.values(), device=str(next(student[0].parameters()).device))}
        write_table(inp.output_dir, "ce_results", results, ce_table(results))
        return results
