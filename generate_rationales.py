#!/usr/bin/env python
"""Dig structured rationales with an LLM and select the best (LSR-MWF steps 1-2), or generate
basic-reading annotations (BRD), through any OpenAI-compatible endpoint. Resumable: rerun the same
command after an interruption. See ``python generate_rationales.py --help`` and ``lsrmwf.llm``.
"""

import sys

from lsrmwf.commands.generate_rationales import main

if __name__ == "__main__":
    sys.exit(main())
