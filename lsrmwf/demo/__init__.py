"""The offline demos of the three systems, each a real command line per step:

    python -m lsrmwf.demo          # LSR-MWF (lsr_mwf.py): rationales, BART vs LSR-MWF, evaluation
    python -m lsrmwf.demo.causal   # task-specific logit KD (causal.py): teacher, KD students, retention
    python -m lsrmwf.demo.brd      # Basic Reading Distillation (brd.py): BRD data, student, multiple choice

Each first checks what it needs (prereqs.py), one line each, and stops before any work if something
is missing; ``--check`` runs only the checks.
"""
