"""The distillation methods' data and losses (no trainers: those are in :mod:`lsrmwf.training`): logit KD's loss and
teacher checks (:mod:`.logit_kd`, :mod:`.causal_student`), sparse top-K KD (:mod:`.sparse_kd`), KD across tokenizers
(:mod:`.text_alignment`, :mod:`.uld`), and Basic Reading
Distillation's passages (:mod:`.brd_compose`), causal mix (:mod:`.brd_mix`) and seq2seq denoising data
(:mod:`.basic_reading`)."""
