"""The arguments every ``train.py`` recipe shares: the model to start from (:class:`ModelArguments`) and the
documents and summaries (:class:`SummarizationDataArguments`); the trainer's are
:class:`lsrmwf.training.base.DistillTrainingArguments`. Each method's own arguments sit with its trainer
(:mod:`.lsr_mwf`, :mod:`.logit_kd`, :mod:`.basic_reading`) and validate themselves.

``None`` means "not given": :func:`lsrmwf.presets.fill_from_preset` fills those from
``--preset cnndm|xsum`` and never overwrites an explicit value.
"""

import os
from dataclasses import dataclass, field
from typing import Iterator, Optional

from ..data.arguments import DatasetArguments
from ..evaluation.generation import BeamSearchArguments
from ..evaluation.rouge import ROUGE_TOKENIZERS
from ..io import InputError
from ..presets import PRESETS


@dataclass
class ModelArguments:
    """The student to start from (every recipe): a checkpoint, or a BART built from --config_overrides."""

    _argument_group_name = "Model (every recipe)"

    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "A BART or LSR-MWF checkpoint (hub name or local directory), e.g. facebook/bart-large, or a "
                          "decoder-only LM (Llama, Qwen2, Gemma, ...: detected from its config) trained on "
                          "--prompt_template -> summary. "
                          "Leave unset to train a BART built from --config_overrides with a BPE tokenizer trained "
                          "on the training text."},
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "From-scratch model only: BartConfig values as 'd_model=256,encoder_layers=2,...'."},
    )
    tokenizer_name: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer to use instead of the checkpoint's (or of training one)."}
    )
    tokenizer_vocab_size: int = field(
        default=8000, metadata={"help": "Vocabulary size of the BPE tokenizer trained for a from-scratch model."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Where hub models and datasets are cached."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})

    _config: Optional[object] = field(default=None, init=False, repr=False)  # read once by load_config

    def load_config(self):
        """The checkpoint's config, read once; a path or hub name that cannot be loaded is an InputError."""
        if self._config is None:
            from transformers import AutoConfig

            try:
                self._config = AutoConfig.from_pretrained(self.model_name_or_path, cache_dir=self.cache_dir,
                                                          revision=self.model_revision)
            except (OSError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise InputError(f"--model_name_or_path {self.model_name_or_path}: cannot be "
                                 f"loaded ({first})") from None
        return self._config

    def __post_init__(self):
        path = self.model_name_or_path
        if path and not os.path.isdir(path) and (os.path.exists(path) or path.startswith((".", "/", "~"))
                                                 or path.count("/") > 1):
            what = "is a file, not a checkpoint directory" if os.path.exists(path) else "no such directory"
            raise InputError(f"--model_name_or_path {path}: {what}")
        if self.model_name_or_path and self.config_overrides:
            raise InputError("--config_overrides builds a model from scratch; it cannot be "
                             "combined with --model_name_or_path")


@dataclass
class SummarizationDataArguments(DatasetArguments, BeamSearchArguments):
    """The documents and summaries of every recipe: sources, splits, lengths, generation, ROUGE, the preset."""

    _argument_group_name = "Data, lengths, generation and presets (every recipe)"

    preset: Optional[str] = field(
        default=None,
        metadata={"help": "The paper's settings for a dataset family (lengths, generation, gates, gammas); explicit "
                          "values win. Default: the one the hub dataset implies, else cnndm.",
                  "choices": sorted(PRESETS) + ["brd", "task"]},
    )
    train_file: Optional[str] = field(default=None, metadata={"help": "Local json/jsonl/csv/parquet training file."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Local file for --do_eval."})
    test_file: Optional[str] = field(default=None, metadata={"help": "Local file for --do_predict."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name for training."})
    validation_split: str = field(default="validation", metadata={"help": "Split of --dataset_name for --do_eval."})
    test_split: str = field(default="test", metadata={"help": "Split of --dataset_name for --do_predict."})
    max_source_length: Optional[int] = field(default=None, metadata={"help": "Document tokens (preset: 1024 / 512)."})
    max_target_length: Optional[int] = field(default=None, metadata={"help": "Summary tokens (preset: 120 / 80)."})
    rouge_tokenizer: str = field(
        default="default",
        metadata={"help": "ROUGE tokens of --do_eval/--do_predict: default (rouge_score's: lowercased a-z0-9 runs; "
                          "every other character is dropped, so non-Latin text scores 0), whitespace (lowercased "
                          "whitespace split) or char (every non-space character; Chinese, Japanese, Korean).",
                  "choices": list(ROUGE_TOKENIZERS)},
    )
    max_train_samples: Optional[int] = field(default=None,
                                             metadata={"help": "Use only the first N training examples."})
    max_eval_samples: Optional[int] = field(default=None,
                                            metadata={"help": "Use only the first N validation examples."})
    max_predict_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N test examples."})
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for tokenization."})
    strict_data: bool = field(
        default=False,
        metadata={"help": "Stop with an error naming the rows when an example's document or summary is empty after "
                          "stripping whitespace. Default: leave such examples out (as the paper does) and count them "
                          "in the log and run_summary.json."},
    )
    def __post_init__(self):
        for flag in ("max_train_samples", "max_eval_samples", "max_predict_samples"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise InputError(f"--{flag} must be >= 1 (leave it out to use every example), got {value}")


@dataclass
class RunArguments:
    """Everything ``train.py`` parsed: the shared arguments and each method's, by name."""

    model: object
    data: object
    training: object
    lsr_mwf: object
    logit_kd: object
    basic_reading: object
    task_tuning: object

    def __iter__(self) -> Iterator[object]:
        return iter((self.model, self.data, self.training, self.lsr_mwf, self.logit_kd, self.basic_reading,
                     self.task_tuning))
