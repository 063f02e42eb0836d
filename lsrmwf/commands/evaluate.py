"""``evaluate.py``: score prediction files and/or generate from a checkpoint, compare systems,
plot the gates and render case pages.

``--task`` picks what is evaluated from the registry :data:`lsrmwf.evaluation.tasks.TASKS` (each task
a class with its arguments and its run, in :mod:`lsrmwf.evaluation.tasks`): ``summarization`` (the
default: ROUGE/BERTScore of prediction files or a seq2seq checkpoint's summaries),
``multiple_choice`` (a causal LM's accuracy by candidate log-likelihood on BIG-bench, the six
GLUE-style tasks of the BRD paper or JSONL tasks) and ``teacher_student_ce`` (the BRD paper's
Table 5 cross-entropy between a teacher and a student causal LM over the tasks' texts).

Examples::

    python evaluate.py --predictions preds.jsonl --references refs.jsonl --output_dir out
    python evaluate.py --model_name_or_path runs/lsrmwf --dataset_name cnn_dailymail \\
        --dataset_config_name 3.0.0 --split test --preset cnndm --output_dir out
    python evaluate.py --model_name_or_path runs/lsrmwf --predictions bart.jsonl --baseline bart \\
        --data_file test.jsonl --gates_file runs/lsrmwf/gates.jsonl \\
        --rationale_file rationales.jsonl --case_ids 17 42 --output_dir out
    python evaluate.py --task multiple_choice --model_name_or_path facebook/xglm-564M \
        --mc_tasks xnli rte cb paws-x boolq sst-2 bigbench --output_dir out_mc
    python evaluate.py --task teacher_student_ce --teacher_model_name_or_path lmsys/vicuna-13b-v1.3 \
        --model_name_or_path runs/xglm-brd --mc_tasks rte cb bigbench --max_examples 1000 --output_dir out_ce
"""

import logging
import sys
from typing import List, Optional

from ..evaluation.tasks import TASKS, TaskArguments, argument_classes
from ..io import InputError
from ..io.interrupts import EXIT_INTERRUPTED, sigterm_as_interrupt

logger = logging.getLogger("lsrmwf.evaluate")


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(argument_classes(), description=__doc__.split("\n\n")[0],
                            allow_abbrev=False)  # a misspelt flag is an error, not a silent prefix match


def main(argv: Optional[List[str]] = None) -> int:
    from ..io.config import expand_config, save_beside_outputs
    from . import parse_dataclasses

    parser = build_parser()
    logging.basicConfig(format="%(message)s", level=logging.WARNING, stream=sys.stderr)
    logger.setLevel(logging.INFO)
    try:
        argv = expand_config(parser, sys.argv[1:] if argv is None else argv)
        parsed = parse_dataclasses(parser, argv)
        args = {type(a): a for a in parsed}
        with sigterm_as_interrupt():  # SIGTERM stops like Ctrl-C: every finished example is already cached
            TASKS[args[TaskArguments].task]().run(args)
        save_beside_outputs(parser, parsed, argv, "evaluate")  # after the run: bad input writes nothing
    except InputError as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"evaluate.py: interrupted by {e or 'SIGINT'}: finished examples are cached in --output_dir; rerun the "
              f"same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
