"""``train.py``: its arguments and entry point. The recipes and their runs are :mod:`lsrmwf.training.recipes`.

    accelerate launch train.py                         # small built-in demo run on aclsum (2 CPU cores, minutes)
    accelerate launch train.py --rationale_file r.jsonl   # the same with LSR-MWF's alignment losses
    accelerate launch train.py --preset cnndm --dataset_name cnn_dailymail --dataset_config_name 3.0.0 \\
        --model_name_or_path facebook/bart-large --rationale_file r.jsonl --output_dir out --do_train --do_predict
    python train.py config.json                        # one JSON file holding all arguments
    lsrmwf train --config run.yaml --learning_rate 3e-5   # a YAML/JSON config, the command line wins

Every run writes the resolved arguments to ``<output_dir>/train_config.yaml``; ``--config`` with that file
repeats the run.
"""

import logging
import os
import sys
from typing import List, Optional

from ..io import read_json
from ..io.config import as_flags, expand_config, given_flags, save_config
from ..training.arguments import ModelArguments, RunArguments, SummarizationDataArguments
from ..training.base import DistillTrainingArguments
from ..training.recipes import RECIPES, resolve_preset
from . import parse_dataclasses

logger = logging.getLogger("lsrmwf.train")

# `train.py` with no data source runs this: real ACL papers (aclsum, offline), a BART built from a
# small config with a BPE vocabulary trained on the training text, short lengths, a few steps.
# Anything given on the command line is appended and wins (argparse keeps the last value).
DEFAULT_RUN_ARGS = [
    "--dataset_name", "aclsum",
    "--output_dir", "outputs/default_run",
    "--do_train", "--do_eval", "--do_predict",
    "--preset", "cnndm",
    "--config_overrides",
    "d_model=128,encoder_layers=2,decoder_layers=2,encoder_attention_heads=4,decoder_attention_heads=4,"
    "encoder_ffn_dim=256,decoder_ffn_dim=256,max_position_embeddings=512",
    "--tokenizer_vocab_size", "4000",
    "--max_source_length", "384", "--max_target_length", "96", "--max_rationale_length", "128",
    "--num_beams", "2", "--min_length", "10", "--max_length", "96",
    "--max_steps", "80", "--lr_schedule", "hf", "--learning_rate", "1e-3", "--warmup_steps", "10",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_eval_samples", "16", "--max_predict_samples", "16",
    "--logging_steps", "10", "--save_steps", "40", "--save_total_limit", "2",
    "--eval_strategy", "no", "--report_to", "none", "--seed", "42",
]
DATA_SOURCE_FLAGS = ("--dataset_name", "--train_file", "--validation_file", "--test_file", "--basic_reading_file",
                     "--brd_passages_dir", "--task_train_file", "--task_answers_file")
SHARED = (ModelArguments, SummarizationDataArguments, DistillTrainingArguments)


def build_parser():
    """One parser for every recipe; ``--help`` shows one group per dataclass (shared ones, then each method's)."""
    from transformers import HfArgumentParser

    return HfArgumentParser(SHARED + tuple(r.arguments for r in RECIPES.values()), allow_abbrev=False)


def parse_args(argv: Optional[List[str]] = None) -> RunArguments:
    """The parsed arguments (shared and each recipe's) from the command line, a JSON file, or the default run."""
    return parse_run(argv)[0]


def parse_run(argv: Optional[List[str]] = None):
    """:func:`parse_args` and the command line it resolved to (``--config`` expanded, the default run's flags)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = os.path.abspath(argv[0])
        parsed = parse_dataclasses(parser, json_file=path)
        config = read_json(path)
        given = set(config)  # its keys count as given
        argv = [flag for key, value in config.items() if value is not None for flag in as_flags(key, value)]
    else:
        argv = expand_config(parser, argv)
        flags = given_flags(argv)
        if not {"--" + f for f in flags} & set(DATA_SOURCE_FLAGS):
            logger.warning("no data source given: running the built-in default (aclsum, small BART from config); "
                           "see lsrmwf/commands/train.py DEFAULT_RUN_ARGS")
            argv = DEFAULT_RUN_ARGS + argv
        given = given_flags(argv)
        parsed = parse_dataclasses(parser, argv)
    model, data, training, *methods = parsed
    args = RunArguments(model, data, training, **dict(zip(RECIPES, methods)))
    resolve_preset(args, given=given)  # given names: the values the preset may not replace
    return args, argv


def main(argv: Optional[List[str]] = None):
    """Parse, save the resolved arguments, run the recipe, write the model card; ``--push_to_hub`` uploads the
    output directory (card, code, weights) once at the end instead of the Trainer's pushes."""
    from ..training.core import check_run
    from ..training.model_card import push_to_hub, write_model_card
    from ..training.recipes import run, select

    args, resolved = parse_run(argv)
    push, args.training.push_to_hub = args.training.push_to_hub, False
    out = args.training.output_dir
    check_run(args.training)  # a refused run leaves no --output_dir behind (run() checks again, cheaply)
    if args.training.should_save:
        save_config(os.path.join(out, "train_config.yaml"), build_parser(), resolved)
    results = run(args)
    if args.training.should_save:
        write_model_card(out, args, select(args).name)
        if push:
            logger.warning("pushed %s to the hub as %s", out, push_to_hub(out, args.training))
    return results


def script_main(argv: Optional[List[str]] = None) -> int:
    """``train.py`` and ``lsrmwf train``: :func:`main`, a bad input as one line and exit code 2."""
    from ..io import InputError
    from ..io.interrupts import EXIT_INTERRUPTED
    from ..training.core import TrainingInterrupted

    try:
        main(argv)
    except InputError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except TrainingInterrupted as e:  # a checkpoint is saved; the same command resumes from it
        print(f"train.py: interrupted: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
