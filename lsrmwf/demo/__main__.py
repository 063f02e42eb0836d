"""``python -m lsrmwf.demo``: the LSR-MWF demo (see :mod:`lsrmwf.demo.lsr_mwf`)."""

import sys

from .lsr_mwf import main

if __name__ == "__main__":
    sys.exit(main())
