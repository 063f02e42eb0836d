"""The causal BRD recipe: a decoder-only student continues training with the plain LM loss on packed blocks of
the D_ORI/D_NER/D_QRA mix (:mod:`lsrmwf.distill.brd_mix`). Training only; the same checkpoints and resume as
other runs. (A BART student's ``--stage basic_reading`` is the LSR-MWF recipe's pre-education.)"""

import logging
from typing import Dict, Optional

from ...data.causal import CausalCollator
from ...distill.brd_mix import load_brd_mix, packed_dataset
from ...io import InputError
from ..basic_reading import BasicReadingArguments, CausalLMTrainer
from ..core import RawData, is_causal_run, train, write_run_summary
from .causal import load_causal_student, refuse_bart_flags

logger = logging.getLogger("lsrmwf.train")

ARGUMENTS = BasicReadingArguments


def applies(args) -> bool:
    """A decoder-only student in ``--stage basic_reading``."""
    return args.basic_reading.stage == "basic_reading" and is_causal_run(args.model)


def check(args) -> None:
    refuse_bart_flags(args)
    args.basic_reading.check_training_only(args.training)
    if not args.basic_reading.brd_passages_dir:
        raise InputError("--basic_reading_file is the BART denoising stage's; a causal student's --stage "
                         "basic_reading reads the passages of compose_brd.py: give --brd_passages_dir")
    if args.logit_kd.teacher_model_name_or_path or args.logit_kd.teacher_logprobs_file:
        raise InputError("--stage basic_reading trains with the plain LM loss; leave out the KD teacher")


def run(args, checkpoint: Optional[str]) -> Dict[str, float]:
    from transformers import set_seed

    data_args, training_args, brd = args.data, args.training, args.basic_reading
    set_seed(training_args.seed)
    model, tokenizer = load_causal_student(args.model)
    block = brd.block_size or data_args.max_source_length
    if not block:
        raise InputError("give --block_size (or --max_source_length, or --preset brd)")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and block > limit:
        raise InputError(f"--block_size {block} exceeds the model's max_position_embeddings {limit}")
    with training_args.main_process_first(desc="BRD passages"):
        texts, stats = load_brd_mix(brd.brd_passages_dir, brd.brd_mix, brd.max_passages, brd.brd_drop_qra_pattern,
                                    brd.brd_sep, seed=training_args.seed)
        train_ds, packing = packed_dataset(texts, tokenizer, block, data_args.preprocessing_num_workers)
    stats["packing"] = packing
    logger.info("causal BRD student %s, %.1fM parameters: %d blocks of %d tokens", type(model).__name__,
                model.num_parameters() / 1e6, len(train_ds), block)
    trainer = CausalLMTrainer(model=model, args=training_args, processing_class=tokenizer, train_dataset=train_ds,
                              data_collator=CausalCollator(pad_token_id=tokenizer.pad_token_id))
    results = train(trainer, checkpoint, train_ds)
    write_run_summary(training_args, model, RawData(train=train_ds), None, checkpoint, results, extra={"brd": stats})
    return results
