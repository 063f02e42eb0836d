#!/usr/bin/env python
"""Score summaries (ROUGE, BERTScore, bootstrap CIs), compare systems, generate from a checkpoint,
plot gates and render case pages. Run ``python evaluate.py --help``; the code is in
:mod:`lsrmwf.evaluation`.

This file shares its name with the Hugging Face ``evaluate`` library. Its directory is moved to
the end of ``sys.path`` before anything else is imported, and if some code does ``import evaluate``
with this directory on the path anyway, this module hands over to the real library (or raises the
ModuleNotFoundError the import would have raised without this file).
"""

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _elsewhere(entries):
    return [p for p in entries if os.path.abspath(p or os.curdir) != _HERE]


if __name__ == "evaluate":
    _spec = importlib.machinery.PathFinder.find_spec("evaluate", _elsewhere(sys.path))
    if _spec is None:
        raise ModuleNotFoundError(
            f"No module named 'evaluate' ({__file__} is lsrmwf's evaluation script, not the library)", name="evaluate"
        )
    _library = importlib.util.module_from_spec(_spec)
    sys.modules["evaluate"] = _library
    _spec.loader.exec_module(_library)
else:
    sys.path[:] = _elsewhere(sys.path) + [_HERE]

    if __name__ == "__main__":
        from lsrmwf.commands.evaluate import main

        sys.exit(main())
