"""``python -m lsrmwf.analysis``: the LSR-MWF ablations and Table 2's LLM rows (:mod:`lsrmwf.analysis.ablations`);
``table3``: the BRD paper's Table 3 from per-model multiple-choice results (:mod:`lsrmwf.analysis.table3`)."""

import sys
from typing import List, Optional

from .ablations import main as ablations_main
from .table3 import main as table3_main


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return table3_main(argv[1:]) if argv[:1] == ["table3"] else ablations_main(argv)


if __name__ == "__main__":
    sys.exit(main())
