"""``python -m lsrmwf.analysis``: the LSR-MWF ablations and Table 2's LLM rows (:mod:`lsrmwf.analysis.ablations`);
``table3``: the BRD paper's Table 3 from per-model multiple-choice results (:mod:`lsrmwf.analysis.table3`)."""

import sys

from .ablations import main
from .table3 import main as table3_main

if __name__ == "__main__":
    sys.exit(table3_main(sys.argv[2:]) if sys.argv[1:2] == ["table3"] else main())
