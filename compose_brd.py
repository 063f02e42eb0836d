#!/usr/bin/env python
"""Compose the Basic Reading Distillation passages (D_ORI, D_NER, D_QRA) from the teacher's answers.

    python compose_brd.py --answers brd.jsonl --output_dir brd_passages     # see --help
"""

import sys

from lsrmwf.commands.compose_brd import main

if __name__ == "__main__":
    sys.exit(main())
