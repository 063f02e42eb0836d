#!/usr/bin/env python
"""Train LSR-MWF (or plain BART with --baseline, logit KD with --teacher_model_name_or_path, or the
Basic Reading Distillation stage with --stage basic_reading). Run ``python train.py --help``.

    accelerate launch train.py        # small built-in run on aclsum; see lsrmwf/commands/train.py
"""

import sys

from lsrmwf.commands.train import script_main

if __name__ == "__main__":
    sys.exit(script_main())
