"""BRD's supervised stages (SFT, TaskDistillation): a decoder-only student learns prompt -> answer on task
examples (:mod:`lsrmwf.training.task_tuning`). Training only; the same checkpoints, resume and DeepSpeed as
every other run. BRD² / BRD²-SFT are the basic-reading recipe started from the BRD student."""

import logging
from typing import Dict, Optional

from ...data.causal import CausalCollator
from ...io import InputError
from ..core import RawData, is_causal_run, train, write_run_summary
from ..task_tuning import TaskTuningArguments, TaskTuningTrainer, encode_task_example, load_task_pairs
from .causal import load_causal_student, refuse_bart_flags

logger = logging.getLogger("lsrmwf.train")

ARGUMENTS = TaskTuningArguments


def applies(args) -> bool:
    """A decoder-only student given task examples (--task_train_file or --task_answers_file)."""
    return args.task_tuning.active and is_causal_run(args.model)


def check(args) -> None:
    refuse_bart_flags(args)
    if args.basic_reading.stage == "basic_reading":
        raise InputError("--task_train_file/--task_answers_file train the supervised stages; leave out --stage "
                         "basic_reading (BRD² is --stage basic_reading on the task's composed passages)")
    if args.training.do_eval or args.training.do_predict:
        raise InputError("the supervised stages only train; evaluate the output with evaluate.py --task "
                         "multiple_choice --mc_tasks jsonl:<task_data>/test/<task>.jsonl")
    if args.logit_kd.teacher_model_name_or_path or args.logit_kd.teacher_logprobs_file:
        raise InputError("the supervised stages train with the plain LM loss on the answers; leave out the KD teacher")


def run(args, checkpoint: Optional[str]) -> Dict[str, float]:
    import datasets
    from transformers import set_seed

    data_args, training_args, tt = args.data, args.training, args.task_tuning
    set_seed(training_args.seed)
    model, tokenizer = load_causal_student(args.model)
    limit = getattr(model.config, "max_position_embeddings", None)
    bounds = [x for x in (data_args.max_source_length, limit) if x]
    length = min(bounds) if bounds else None
    with training_args.main_process_first(desc="task examples"):
        pairs, stats = load_task_pairs(tt)
        rows = [encode_task_example(tokenizer, p, a, length) for p, a in pairs]
        train_ds = datasets.Dataset.from_list(rows)
    stats["examples"] = len(train_ds)
    logger.info("%s: %d (prompt, answer) examples for %s", stats["kind"], len(train_ds), type(model).__name__)
    trainer = TaskTuningTrainer(model=model, args=training_args, processing_class=tokenizer, train_dataset=train_ds,
                                data_collator=CausalCollator(pad_token_id=tokenizer.pad_token_id))
    results = train(trainer, checkpoint, train_ds)
    write_run_summary(training_args, model, RawData(train=train_ds), None, checkpoint, results,
                      extra={"task_tuning": stats})
    return results
