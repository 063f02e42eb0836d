"""``train.py``: its arguments and entry point. The run itself is :func:`lsrmwf.training.run.run`.

    accelerate launch train.py                         # small built-in demo run on aclsum (2 CPU cores, minutes)
    accelerate launch train.py --rationale_file r.jsonl   # the same with LSR-MWF's alignment losses
    accelerate launch train.py --preset cnndm --dataset_name cnn_dailymail --dataset_config_name 3.0.0 \\
        --model_name_or_path facebook/bart-large --rationale_file r.jsonl --output_dir out --do_train --do_predict
    python train.py config.json                        # one JSON file holding all arguments
"""

import logging
import os
import sys
from typing import List, Optional

from ..presets import HUB_DATASETS, fill_from_preset
from ..training.arguments import DataArguments, ModelArguments
from ..training.trainer import LsrMwfTrainingArguments
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
    "--max_steps", "80", "--learning_rate", "1e-3", "--warmup_steps", "10",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_eval_samples", "16", "--max_predict_samples", "16",
    "--logging_steps", "10", "--save_steps", "40", "--save_total_limit", "2",
    "--eval_strategy", "no", "--report_to", "none", "--seed", "42",
]
DATA_SOURCE_FLAGS = ("--dataset_name", "--train_file", "--validation_file", "--test_file", "--basic_reading_file")


def parse_args(argv: Optional[List[str]] = None):
    """``(model_args, data_args, training_args)`` from the command line, a JSON file, or the default run."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, LsrMwfTrainingArguments), allow_abbrev=False)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parse_dataclasses(parser, json_file=os.path.abspath(argv[0]))
    else:
        flags = {"--" + a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
        if not flags & set(DATA_SOURCE_FLAGS):
            logger.warning("no data source given: running the built-in default (aclsum, small BART from config); "
                           "see lsrmwf/commands/train.py DEFAULT_RUN_ARGS")
            argv = DEFAULT_RUN_ARGS + argv
        model_args, data_args, training_args = parse_dataclasses(parser, argv)
    resolve_preset(model_args, data_args, training_args)
    return model_args, data_args, training_args


def resolve_preset(model_args, data_args, training_args) -> str:
    """Fill every unset (None) value from the preset: explicit, else implied by the hub dataset, else cnndm."""
    preset = data_args.preset
    if preset is None:
        preset = HUB_DATASETS.get(data_args.dataset_name or "", {}).get("preset", "cnndm")
        logger.info("no --preset given: using %r for unset values", preset)
        data_args.preset = preset
    fill_from_preset(data_args, preset)
    fill_from_preset(model_args, preset, fields=("gate_init",))
    fill_from_preset(training_args, preset, fields=("gamma_ce", "gamma_views"))
    return preset


def main(argv: Optional[List[str]] = None):
    from ..training.run import run

    model_args, data_args, training_args = parse_args(argv)
    return run(model_args, data_args, training_args)
