"""The papers' analyses as commands: ``python -m lsrmwf.analysis KIND`` (see :mod:`lsrmwf.analysis.ablations`)."""
