"""Basic Reading Distillation's arguments and its causal LM stage's trainer.

``--stage basic_reading`` has two students: a causal one trains with the plain LM loss on packed blocks of
the D_ORI/D_NER/D_QRA mix (:mod:`lsrmwf.distill.brd_mix`; the run is
:mod:`lsrmwf.training.recipes.basic_reading`), a BART/LSR-MWF one denoises ``--basic_reading_file``
(:mod:`lsrmwf.distill.basic_reading`) as the pre-education its summarization stage starts from (run by the
LSR-MWF recipe).
"""

from dataclasses import dataclass, field
from typing import Optional

from ..io import InputError
from .base import DistillTrainer, causal_lm_loss

STAGES = ("summarization", "basic_reading")
CAUSAL_ONLY = ("brd_passages_dir", "max_passages", "brd_drop_qra_pattern", "block_size")


@dataclass
class BasicReadingArguments:
    """The stage, and the passages of either BRD student (causal: composed passages; BART: reading answers)."""

    _argument_group_name = "Basic Reading Distillation (--stage basic_reading)"

    stage: str = field(
        default="summarization",
        metadata={"help": "summarization, or basic_reading: BRD. A BART/LSR-MWF student denoises "
                          "--basic_reading_file (pre-education the summarization stage starts from); a causal student "
                          "trains with the LM loss on the packed --brd_passages_dir mix (preset brd).",
                  "choices": list(STAGES)},
    )
    basic_reading_file: Optional[str] = field(
        default=None,
        metadata={"help": "--stage basic_reading: the JSONL of generate_rationales.py --task basic_reading."},
    )
    brd_mix_original: bool = field(
        default=True,
        metadata={"help": "BRD: mix in denoising examples built from the original passages so the model does not "
                          "forget."},
    )
    brd_passages_dir: Optional[str] = field(
        default=None,
        metadata={"help": "--stage basic_reading, causal student: the directory of compose_brd.py with ori.jsonl, "
                          "ner.jsonl and qra.jsonl (one passage per row, field 'text')."},
    )
    brd_mix: str = field(
        default="ori=1,ner=1,qra=1",
        metadata={"help": "Causal BRD: weight per passage file. 0 leaves a file out (qra=0 is -QRA); the integer part "
                          "repeats every passage, the fractional part adds that seeded share once more."},
    )
    max_passages: Optional[int] = field(
        default=None,
        metadata={"help": "Causal BRD: at most N passages of each file (seeded choice, nested for growing N), before "
                          "mixing."},
    )
    brd_drop_qra_pattern: Optional[str] = field(
        default=None,
        metadata={"help": "Causal BRD (Table 10's -SentData): drop the QRA question/answer segments in which this "
                          "regex is found (case-insensitive); their sentences stay."},
    )
    brd_sep: str = field(default=" <sep> ",
                         metadata={"help": "Causal BRD: the --sep the passages were composed with."})
    block_size: Optional[int] = field(
        default=None,
        metadata={"help": "Causal BRD: tokens per packed training block (default --max_source_length; preset brd: "
                          "2048)."},
    )
    brd_passage_sentences: int = field(default=3, metadata={"help": "BRD: sentences per original passage."})
    brd_mask_ratio: float = field(
        default=0.3, metadata={"help": "BRD: fraction of a passage's words masked out (text infilling)."})

    def __post_init__(self):
        if self.stage == "basic_reading":
            if self.basic_reading_file and self.brd_passages_dir:
                raise InputError("give one of --basic_reading_file (BART denoising) or --brd_passages_dir (causal "
                                 "student)")
            if not (self.basic_reading_file or self.brd_passages_dir):
                raise InputError("--stage basic_reading needs --brd_passages_dir (a causal student; from "
                                 "compose_brd.py) or --basic_reading_file "
                                 "(a BART student; from generate_rationales.py --task basic_reading)")
        else:
            for flag in ("basic_reading_file",) + CAUSAL_ONLY:
                if getattr(self, flag) is not None:
                    raise InputError(f"--{flag} is only read by --stage basic_reading")
        if self.max_passages is not None and self.max_passages < 1:
            raise InputError(f"--max_passages must be >= 1 (leave it out to use every passage), got "
                             f"{self.max_passages}")
        if self.block_size is not None and self.block_size < 2:
            raise InputError(f"--block_size must be >= 2, got {self.block_size}")
        if not 0.0 <= self.brd_mask_ratio < 1.0:
            raise InputError(f"--brd_mask_ratio must lie in [0, 1), got {self.brd_mask_ratio}")
        if self.brd_passage_sentences < 1:
            raise InputError(f"--brd_passage_sentences must be >= 1, got {self.brd_passage_sentences}")

    def check_training_only(self, training_args) -> None:
        """Either student's BRD stage only trains: its output is what the summarization stage starts from."""
        if self.stage == "basic_reading" and (training_args.do_eval or training_args.do_predict):
            raise InputError("--stage basic_reading only trains (pre-education); evaluate the summarization stage "
                             "that starts from its output (--model_name_or_path <this --output_dir>)")


class CausalLMTrainer(DistillTrainer):
    """The causal BRD stage: the plain next-token loss over packed blocks, training only."""

    term_names = ["ce"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss_shifts_labels = True  # position i predicts token i+1: count labels[..., 1:] as the step's tokens

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits, targets = outputs.logits[:, :-1], inputs["labels"][:, 1:]
        loss = causal_lm_loss(logits, targets)
        if model.training:
            self._record({"ce": loss}, loss.device)
            loss = loss * self._token_share(targets.ne(-100).sum(), num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

