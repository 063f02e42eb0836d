"""``--task teacher_choices``: TaskDistillation's pseudo answers by *scoring* instead of generating: a local
Hugging Face teacher picks, for every input of a task split file, the choice the multiple-choice scorer ranks
first (:func:`lsrmwf.evaluation.multiple_choice.run_multiple_choice`, ``--mc_normalization``). Writes
``<output_dir>/answers.jsonl`` in the format ``train.py --task_answers_file`` reads (every row mapped); the
scorer's cache (``mc_cache.jsonl``) makes a killed run resume."""

import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ...io import InputError, write_jsonl_atomic
from .arguments import GenerationArguments, InputArguments
from .multiple_choice import MultipleChoiceArguments
from .registry import EvaluationTask, register_task


@dataclass
class TeacherChoicesArguments:
    _argument_group_name = "teacher_choices"

    task_split_file: Optional[str] = field(
        default=None, metadata={"help": "teacher_choices: a split file of python -m lsrmwf.commands.task_data (e.g. "
                                        "tasks/train/rte.jsonl)."})


@register_task("teacher_choices")
class TeacherChoicesTask(EvaluationTask):
    summary = "TaskDistillation answers from a local teacher's choice scores (for train.py --task_answers_file)"
    arguments = (TeacherChoicesArguments, MultipleChoiceArguments)

    def run(self, args: Mapping[type, object]) -> dict:
        from ..causal_lm import load_causal_lm
        from ..mc_tasks import load_jsonl_task
        from ..multiple_choice import run_multiple_choice
        from ..task_data import read_split_rows

        inp, gen = args[InputArguments], args[GenerationArguments]
        mc, tc = args[MultipleChoiceArguments], args[TeacherChoicesArguments]
        if not tc.task_split_file or not inp.output_dir:
            raise InputError("--task teacher_choices needs --task_split_file and --output_dir")
        rows = read_split_rows(tc.task_split_file)
        task = load_jsonl_task(tc.task_split_file)
        os.makedirs(inp.output_dir, exist_ok=True)
        model, tokenizer = load_causal_lm(inp.model_name_or_path, gen.device, gen.dtype, inp.cache_dir)
        res = run_multiple_choice(model, tokenizer, [task], batch_size=gen.batch_size,
                                  normalization=mc.mc_normalization,
                                  cache_path=os.path.join(inp.output_dir, "mc_cache.jsonl"),
                                  progress=not inp.no_progress, return_details=True)
        rule = f"teacher-score-{mc.mc_normalization}"
        out = [{"id": r["id"], "prompt": r["prompt"], "choices": r["choices"], "label": r["label"],
                "answer": r["choices"][d["prediction"]], "choice": d["prediction"], "mapping": rule, "error": None}
               for r, d in zip(rows, res["details"][task.name])]
        write_jsonl_atomic(os.path.join(inp.output_dir, "answers.jsonl"), out)
        print(f"{len(out)} teacher choices ({rule}); teacher accuracy on the gold labels: "
              f"{100 * res['accuracy'][task.name]:.1f}% -> {os.path.join(inp.output_dir, 'answers.jsonl')}")
        return res
