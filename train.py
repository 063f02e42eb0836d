#!/usr/bin/env python
"""Train LSR-MWF (or plain BART with --baseline, logit KD with --teacher_model_name_or_path, or the
Basic Reading Distillation stage with --stage basic_reading). Run ``python train.py --help``.

    accelerate launch train.py        # small built-in run on aclsum; see lsrmwf/commands/train.py
"""

import sys

from lsrmwf.commands.train import main
from lsrmwf.io import InputError
from lsrmwf.io.interrupts import EXIT_INTERRUPTED
from lsrmwf.training.core import TrainingInterrupted

if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    except TrainingInterrupted as e:
        print(f"train.py: interrupted: {e}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
