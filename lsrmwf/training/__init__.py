"""Training: the shared core (:mod:`.core`), the base trainer (:mod:`.base`), each method's arguments and trainer
(:mod:`.lsr_mwf`, :mod:`.logit_kd`, :mod:`.basic_reading`) and ``train.py``'s recipes by name (:mod:`.recipes`)."""
