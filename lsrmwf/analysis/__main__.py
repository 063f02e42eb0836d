"""``python -m lsrmwf.analysis``: the LSR-MWF ablations and Table 2's LLM rows (:mod:`lsrmwf.analysis.ablations`)."""

import sys

from .ablations import main

if __name__ == "__main__":
    sys.exit(main())
