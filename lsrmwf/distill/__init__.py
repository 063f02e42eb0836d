"""The distillation methods beside LSR-MWF: task-specific logit KD (:mod:`.logit_kd`) and Basic Reading
Distillation (:mod:`.basic_reading`)."""
