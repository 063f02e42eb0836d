"""Training: arguments, the LSR-MWF/KD trainer and its collator, and ``train.py``'s run as named steps (:mod:`.run`)."""
