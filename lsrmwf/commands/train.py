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

from ..io import InputError, read_json
from ..presets import HUB_DATASETS, fill_brd_preset, fill_from_preset, get_preset
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
    "--max_steps", "80", "--lr_schedule", "hf", "--learning_rate", "1e-3", "--warmup_steps", "10",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_eval_samples", "16", "--max_predict_samples", "16",
    "--logging_steps", "10", "--save_steps", "40", "--save_total_limit", "2",
    "--eval_strategy", "no", "--report_to", "none", "--seed", "42",
]
DATA_SOURCE_FLAGS = ("--dataset_name", "--train_file", "--validation_file", "--test_file", "--basic_reading_file",
                     "--brd_passages_dir")


def parse_args(argv: Optional[List[str]] = None):
    """``(model_args, data_args, training_args)`` from the command line, a JSON file, or the default run."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, LsrMwfTrainingArguments), allow_abbrev=False)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = os.path.abspath(argv[0])
        model_args, data_args, training_args = parse_dataclasses(parser, json_file=path)
        given = set(read_json(path))  # its keys count as given
    else:
        flags = given_flags(argv)
        if not {"--" + f for f in flags} & set(DATA_SOURCE_FLAGS):
            logger.warning("no data source given: running the built-in default (aclsum, small BART from config); "
                           "see lsrmwf/commands/train.py DEFAULT_RUN_ARGS")
            argv = DEFAULT_RUN_ARGS + argv
        given = given_flags(argv)
        model_args, data_args, training_args = parse_dataclasses(parser, argv)
    resolve_preset(model_args, data_args, training_args, given=given)
    return model_args, data_args, training_args


def given_flags(argv: List[str]) -> set:
    """The argument names on a command line (``--warmup-steps=5`` -> ``warmup_steps``).

    Needed for the values whose dataclass default is not ``None`` (``--learning_rate`` defaults to 5e-5,
    ``--warmup_steps`` to 0): only these names tell whether the user chose them or the preset may."""
    return {a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}


def resolve_preset(model_args, data_args, training_args, given=frozenset()) -> str:
    """Fill every unset value from the preset: explicit, else implied by the hub dataset, else cnndm.

    ``given`` names the arguments set on the command line (or in the JSON file). Dataclass fields
    default to ``None`` when "unset" is visible; the optimizer's are HF's fields with real defaults,
    so for them ``given`` decides: the preset's schedule (the paper's Noam schedule) fills
    ``lr_schedule``, and, when the schedule is noam and the user did not choose them,
    ``learning_rate`` (the Noam factor) and ``warmup_steps``. An explicit ``--lr_schedule hf`` keeps
    HF's learning rate and warmup defaults (the preset's numbers are Noam's).
    """
    preset = data_args.preset
    if preset is None and data_args.brd_passages_dir:
        preset = data_args.preset = "brd"
        logger.info("--brd_passages_dir: using preset 'brd' (the BRD paper's A.1) for unset values")
    if preset == "brd":
        if data_args.stage != "basic_reading":
            raise InputError("--preset brd is the causal --stage basic_reading's (BRD paper, A.1)")
        fill_brd_preset(data_args, training_args, given)
        return preset
    if preset is None:
        preset = HUB_DATASETS.get(data_args.dataset_name or "", {}).get("preset", "cnndm")
        logger.info("no --preset given: using %r for unset values", preset)
        data_args.preset = preset
    fill_from_preset(data_args, preset)
    fill_from_preset(model_args, preset, fields=("gate_init",))
    fill_from_preset(training_args, preset, fields=("gamma_ce", "gamma_views"))
    resolve_optimizer(training_args, preset, given)
    return preset


def resolve_optimizer(training_args, preset: str, given=frozenset()) -> None:
    """The paper's optimizer settings for whatever the command line left open (see :func:`resolve_preset`)."""
    p = get_preset(preset)
    if "lr_schedule" not in given:
        training_args.lr_schedule = p.lr_schedule
    if training_args.lr_schedule == "noam":
        if "learning_rate" not in given:
            training_args.learning_rate = p.learning_rate
        if not given & {"warmup_steps", "warmup_ratio"}:
            training_args.warmup_steps = p.warmup_steps
        if not training_args.warmup_steps >= 1:
            raise InputError("--lr_schedule noam needs --warmup_steps >= 1 (a step count; the paper uses 10000)")
        w = int(training_args.warmup_steps)
        logger.info("learning rate: noam, %g * min(step^-0.5, step * %d^-1.5): peak %.3g at step %d",
                    training_args.learning_rate, w, training_args.learning_rate * w ** -0.5, w)


def main(argv: Optional[List[str]] = None):
    from ..training.run import run

    model_args, data_args, training_args = parse_args(argv)
    return run(model_args, data_args, training_args)
