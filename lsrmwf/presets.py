"""The papers' numbers, in one place, and the method each belongs to.

* :data:`PRESETS` (``--preset cnndm|xsum``): the LSR-MWF paper's settings for a dataset family. Lengths,
  generation and the optimizer serve every summarization recipe of ``train.py`` (LSR-MWF, plain BART, logit
  KD) and ``evaluate.py``; ``gate_init``, ``gamma_ce``, ``gamma_views`` are LSR-MWF's; the selection values
  are ``generate_rationales.py``'s.
* :data:`BRD_PRESET` (``--preset brd``): Basic Reading Distillation's causal stage (its paper's A.1).
* :data:`TASK_PRESET` (``--preset task``): BRD's supervised stages, SFT and TaskDistillation (own choices).

Every script fills whatever the user did not set from here; an explicit command-line value always wins.
"""

from dataclasses import asdict, dataclass
from typing import Optional

PAPER = "paper"  # LSR-MWF (AAAI 2025), section Experimental Setup / Implementation Details or Method
# Liu et al. 2022 (BRIO), which the paper follows for CNN/DM and XSum evaluation; the paper states none of these
BRIO = "BRIO"
OWN = "own choice"  # this package's choice where the paper is silent


@dataclass(frozen=True)
class Preset:
    # tokenization (BRIO)
    max_source_length: int
    max_target_length: int
    # generation (BRIO; the paper does not state its beam search settings)
    num_beams: int
    length_penalty: float
    min_length: int
    max_length: int
    no_repeat_ngram_size: int
    # weak-gated fusion and Eq. (11) (paper)
    gate_init: float
    gamma_ce: float
    gamma_views: float
    # rationale selection, step 2 (paper: Eq. 7 / Eq. 8, thresholds "85" / "65")
    score: str  # "score1" = 1 - R1*R2/(R1+R2);  "score2" = 1 - (R1+R2+RL)/3
    score_threshold: float
    rationales: str  # "per_sentence": one rationale per summary sentence; "one": a single rationale (own choice)
    # optimizer (paper: Adam, lr = 2e-3 * min(step^-0.5, step * warmup^-1.5), warmup 10000)
    lr_schedule: str = "noam"
    learning_rate: float = 2e-3  # the Noam factor: peak 2e-3 * 10000^-0.5 = 2e-5 at step 10000
    warmup_steps: int = 10000
    # the reading of Eq. (6)-(8) (own choice, see README "Rationale selection"): ROUGE F1, not Eq. (6)'s recall,
    # and ROUGE-L as Score2's third term, not Eq. (8)'s printed ROUGE_3; `generate_rationales.py --rescore
    # --compare` prints what each of the four readings keeps
    rouge_measure: str = "fmeasure"
    score2_terms: str = "rougeL"


# Where each number comes from (same for both presets).
SOURCES = {
    "max_source_length": BRIO, "max_target_length": BRIO,
    "num_beams": BRIO, "length_penalty": BRIO, "min_length": BRIO, "max_length": BRIO, "no_repeat_ngram_size": BRIO,
    "gate_init": PAPER, "gamma_ce": PAPER, "gamma_views": PAPER,
    "score": PAPER, "score_threshold": PAPER, "rationales": OWN,
    "lr_schedule": PAPER, "learning_rate": PAPER, "warmup_steps": PAPER,
    "rouge_measure": OWN, "score2_terms": OWN,
}
# Not in the presets, and why: Adam's betas/epsilon and the batch size are not given by the paper (HF's AdamW
# defaults with weight decay 0 are used, gates never decay); the number of training steps is not given either.

PRESETS = {
    "cnndm": Preset(
        max_source_length=1024, max_target_length=120, num_beams=4, length_penalty=2.0,
        min_length=55, max_length=140, no_repeat_ngram_size=3, gate_init=0.02, gamma_ce=0.6,
        gamma_views=0.4, score="score1", score_threshold=0.85, rationales="per_sentence",
    ),
    "xsum": Preset(
        max_source_length=512, max_target_length=80, num_beams=8, length_penalty=0.6,
        min_length=11, max_length=62, no_repeat_ngram_size=3, gate_init=0.01, gamma_ce=0.7,
        gamma_views=0.3, score="score2", score_threshold=0.65, rationales="one",
    ),
}

# Hub datasets the presets are meant for, with their column names and the preset they imply.
HUB_DATASETS = {
    "cnn_dailymail": {"text_column": "article", "summary_column": "highlights", "id_column": "id", "preset": "cnndm"},
    "abisee/cnn_dailymail": {"text_column": "article", "summary_column": "highlights", "id_column": "id",
                             "preset": "cnndm"},
    "xsum": {"text_column": "document", "summary_column": "summary", "id_column": "id", "preset": "xsum"},
    "EdinburghNLP/xsum": {"text_column": "document", "summary_column": "summary", "id_column": "id", "preset": "xsum"},
}


def get_preset(name: Optional[str]) -> Optional[Preset]:
    if name is None:
        return None
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def source_of(field: str) -> str:
    """Where the presets' value of ``field`` comes from: "paper", "BRIO" or "own choice"."""
    return SOURCES[field]


def fill_from_preset(obj, preset: Optional[str], fields=None) -> None:
    """Set every attribute of ``obj`` that is ``None`` and named in the preset to the preset's value.

    Dataclass arguments use ``None`` to mean "not given", so explicit values are never overwritten.
    """
    p = get_preset(preset)
    if p is None:
        return
    for key, value in asdict(p).items():
        if fields is not None and key not in fields:
            continue
        if hasattr(obj, key) and getattr(obj, key) is None:
            setattr(obj, key, value)


# ----------------------------------------------------------------------------------------------
# Basic Reading Distillation with a causal student (train.py --stage basic_reading --preset brd)
# ----------------------------------------------------------------------------------------------

BRD_PAPER = "BRD paper"  # shared/seeds/002_… (Basic Reading Distillation), Appendix A.1 "Training Configuration"

# XGLM-564M continued on the D_ORI/D_NER/D_QRA mix. Only values the command line left unset are filled.
BRD_PRESET = {
    "learning_rate": 3e-4,  # A.1: "learning rate = 0.0003"
    "per_device_train_batch_size": 8,  # A.1: "batch size = 8" (on four A100s; per GPU or in total is not said)
    "max_source_length": 2048,  # A.1: "max input length = 2048"; --block_size (the packed block) defaults to it
    "max_steps": 40000,  # A.1: "for a maximum of 40000 steps"
    "save_steps": 1000,  # A.1: "We save the model every 1000 steps"
    "lr_schedule": "hf",  # HF's schedule (--lr_scheduler_type, linear decay), not LSR-MWF's Noam: the paper names none
    "warmup_steps": 0,  # not stated
    "brd_mix": "ori=1,ner=1,qra=1",  # section 3.2 mixes the three sets; equal weights are not stated
}
BRD_SOURCES = {
    "learning_rate": BRD_PAPER, "per_device_train_batch_size": BRD_PAPER,
    "max_source_length": BRD_PAPER, "max_steps": BRD_PAPER, "save_steps": BRD_PAPER,
    "lr_schedule": OWN, "warmup_steps": OWN, "brd_mix": OWN,
}
# Not stated by the paper either: the optimizer (HF's AdamW defaults here), weight decay, precision, and the
# mixing proportions (all passages of each set once). One million CC-100 passages per set (section 4).


def fill_brd_preset(objs, given=frozenset()) -> None:
    """Fill what the command line left open in the argument objects ``objs`` from :data:`BRD_PRESET`. Fields
    that default to ``None`` are unset when ``None``; the Trainer's fields (real defaults) and ``brd_mix`` are
    unset when not in ``given``."""
    for key, value in BRD_PRESET.items():
        for obj in objs:
            if not hasattr(obj, key):
                continue
            if getattr(obj, key) is None or (key not in given and getattr(obj, key) is not None):
                setattr(obj, key, value)


# ----------------------------------------------------------------------------------------------
# BRD's supervised stages: SFT (gold answers) and TaskDistillation (the teacher's answers), a causal student
# (train.py --task_train_file / --task_answers_file, --preset task)
# ----------------------------------------------------------------------------------------------

# The paper (section 4.1, Table 3) names the two baselines but states none of their training settings.
TASK_PRESET = {
    "learning_rate": 3e-4,  # A.1's BRD value, reused: the paper gives none for SFT
    "per_device_train_batch_size": 8,  # A.1's BRD value, reused
    "max_source_length": 2048,  # A.1's "max input length", reused: longer examples lose prompt tokens on the left
    "num_train_epochs": 3,  # not stated
    "lr_schedule": "hf",  # HF's linear decay; not stated
    "warmup_steps": 0,  # not stated
}
TASK_SOURCES = {
    "learning_rate": BRD_PAPER + " A.1 (stated for BRD; reused)",
    "per_device_train_batch_size": BRD_PAPER + " A.1 (stated for BRD; reused)",
    "max_source_length": BRD_PAPER + " A.1 (stated for BRD; reused)",
    "num_train_epochs": OWN, "lr_schedule": OWN, "warmup_steps": OWN,
}


def fill_task_preset(objs, given=frozenset()) -> None:
    """Fill what the command line left open from :data:`TASK_PRESET` (as :func:`fill_brd_preset` does)."""
    for key, value in TASK_PRESET.items():
        for obj in objs:
            if hasattr(obj, key) and (getattr(obj, key) is None or key not in given):
                setattr(obj, key, value)
