"""Command-line arguments of ``train.py`` (model and data); the training ones live in
:class:`lsrmwf.trainer.LsrMwfTrainingArguments`.

``None`` means "not given": :func:`lsrmwf.presets.fill_from_preset` fills those from
``--preset cnndm|xsum`` and never overwrites an explicit value.
"""

import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..data.arguments import DatasetArguments
from ..evaluation.generation import BeamSearchArguments
from ..evaluation.rouge import ROUGE_TOKENIZERS
from ..io import InputError
from ..io.schema import VIEWS
from ..presets import PRESETS

TARGETS = ("gold", "llm_summary", "both")
STAGES = ("summarization", "basic_reading")


@dataclass
class ModelArguments:
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
    baseline: bool = field(
        default=False,
        metadata={"help": "Train plain BartForConditionalGeneration (no views, no gates, loss = token loss)."},
    )
    views: Optional[List[str]] = field(
        default=None,
        metadata={"help": "LSR-MWF views to build (ablations): any of ea as ter. Default: all three, or the "
                          "checkpoint's own views for an LSR-MWF checkpoint."},
    )
    gate_init: Optional[float] = field(default=None, metadata={"help": "Initial gate value (preset: 0.02 cnndm, 0.01 xsum)."})
    freeze_gates: bool = field(default=False, metadata={"help": "Keep the gates fixed at --gate_init (Table 4 ablation)."})
    freeze_encoder: bool = field(
        default=False,
        metadata={"help": "Do not train BART's encoder (layers, positions, LayerNorms); the view modules, gates and "
                          "decoder still train. For small GPUs: no optimizer state and no gradients for the encoder."},
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={"help": "Do not train the shared token embeddings (tied with the LM head) and BART's learned positions."},
    )
    view_ffn_dim: Optional[int] = field(
        default=None,
        metadata={"help": "Feed-forward width of the view layers. Default: 2 * d_model (half of bart-large's), or the "
                          "checkpoint's own width for an LSR-MWF checkpoint; the encoder's width gives full BART layers."},
    )
    cache_rationale_targets: bool = field(
        default=True,
        metadata={"help": "Encode the rationale texts once with the initial model before training (the paper's "
                          "'previously encoded' targets, cached by datasets) instead of in every step."},
    )
    teacher_model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Logit KD: a frozen teacher sharing the student's tokenizer, seq2seq for a BART student, "
                          "a causal LM for a causal student (loss = kd_alpha*CE + (1-kd_alpha)*T^2*KL)."},
    )
    teacher_dtype: str = field(
        default="auto",
        metadata={"help": "Causal teacher: load it in this dtype (auto = the checkpoint's).",
                  "choices": ["auto", "float32", "bfloat16", "float16"]},
    )
    teacher_device_map: Optional[str] = field(
        default=None,
        metadata={"help": "Causal teacher: split it over the visible devices (e.g. 'auto'; accelerate's device_map) "
                          "when it does not fit one; default: whole on the student's device."},
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
                raise InputError(f"--model_name_or_path {self.model_name_or_path}: cannot be loaded ({first})") from None
        return self._config

    def __post_init__(self):
        if self.views is not None:
            bad = [v for v in self.views if v not in VIEWS]
            if bad or not self.views:
                raise InputError(f"--views must be a non-empty subset of {list(VIEWS)}, got {self.views}")
            if len(set(self.views)) != len(self.views):
                raise InputError(f"--views lists a view twice: {self.views}")
            self.views = [v for v in VIEWS if v in self.views]  # the hierarchy's order
        if self.baseline and self.views is not None:
            raise InputError(f"--baseline trains plain BART without views; --views {' '.join(self.views)} would be ignored. "
                             f"Leave out one of them")
        path = self.model_name_or_path
        if path and not os.path.isdir(path) and (os.path.exists(path) or path.startswith((".", "/", "~")) or path.count("/") > 1):
            what = "is a file, not a checkpoint directory" if os.path.exists(path) else "no such directory"
            raise InputError(f"--model_name_or_path {path}: {what}")
        if self.model_name_or_path and self.config_overrides:
            raise InputError("--config_overrides builds a model from scratch; it cannot be combined with --model_name_or_path")
        if self.view_ffn_dim is not None and self.view_ffn_dim < 1:
            raise InputError(f"--view_ffn_dim must be a positive width, got {self.view_ffn_dim}")
        if self.gate_init is not None and not 0.0 < self.gate_init < 1.0:
            raise InputError(f"--gate_init must lie strictly between 0 and 1, got {self.gate_init}")


@dataclass
class DataArguments(DatasetArguments, BeamSearchArguments):
    preset: Optional[str] = field(
        default=None,
        metadata={"help": "The paper's settings for a dataset family (lengths, generation, gates, gammas); explicit "
                          "values win. Default: the one the hub dataset implies, else cnndm.",
                  "choices": sorted(PRESETS) + ["brd"]},
    )
    stage: str = field(
        default="summarization",
        metadata={"help": "summarization, or basic_reading: BRD. A BART/LSR-MWF student denoises --basic_reading_file "
                          "(pre-education the summarization stage starts from); a causal student trains with the LM "
                          "loss on the packed --brd_passages_dir mix (preset brd).", "choices": list(STAGES)},
    )
    train_file: Optional[str] = field(default=None, metadata={"help": "Local json/jsonl/csv/parquet training file."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Local file for --do_eval."})
    test_file: Optional[str] = field(default=None, metadata={"help": "Local file for --do_predict."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name for training."})
    validation_split: str = field(default="validation", metadata={"help": "Split of --dataset_name for --do_eval."})
    test_split: str = field(default="test", metadata={"help": "Split of --dataset_name for --do_predict."})
    rationale_file: Optional[str] = field(
        default=None,
        metadata={"help": "Rationale JSONL from generate_rationales.py for the training split (see "
                          "--rationale_policy for documents without a kept row). Without it the alignment losses are off."},
    )
    rationale_policy: str = field(
        default="drop",
        metadata={"help": "Documents whose rationale row was rejected by selection, failed or is missing: drop (the "
                          "paper's filtering and every preset's default: they do not train) or ce_only (they train "
                          "with the token loss only, view losses masked). The run prints and records the counts.",
                  "choices": ["drop", "ce_only"]},
    )
    on_duplicate: str = field(
        default="error",
        metadata={"help": "An id written twice in --rationale_file: error (naming the ids), or last (its last row wins).",
                  "choices": ["error", "last"]},
    )
    target: str = field(
        default="gold",
        metadata={"help": "Training targets: gold summaries, the LLM's total summaries from --rationale_file "
                          "(sequence-level distillation), or both (each document once with each).",
                  "choices": list(TARGETS)},
    )
    basic_reading_file: Optional[str] = field(
        default=None, metadata={"help": "--stage basic_reading: the JSONL of generate_rationales.py --task basic_reading."}
    )
    brd_mix_original: bool = field(
        default=True,
        metadata={"help": "BRD: mix in denoising examples built from the original passages so the model does not forget."},
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
        metadata={"help": "Causal BRD: at most N passages of each file (seeded choice, nested for growing N), before mixing."},
    )
    brd_drop_qra_pattern: Optional[str] = field(
        default=None,
        metadata={"help": "Causal BRD (Table 10's -SentData): drop the QRA question/answer segments in which this "
                          "regex is found (case-insensitive); their sentences stay."},
    )
    brd_sep: str = field(default=" <sep> ", metadata={"help": "Causal BRD: the --sep the passages were composed with."})
    block_size: Optional[int] = field(
        default=None,
        metadata={"help": "Causal BRD: tokens per packed training block (default --max_source_length; preset brd: 2048)."},
    )
    brd_passage_sentences: int = field(default=3, metadata={"help": "BRD: sentences per original passage."})
    brd_mask_ratio: float = field(default=0.3, metadata={"help": "BRD: fraction of a passage's words masked out (text infilling)."})
    max_source_length: Optional[int] = field(default=None, metadata={"help": "Document tokens (preset: 1024 / 512)."})
    max_target_length: Optional[int] = field(default=None, metadata={"help": "Summary tokens (preset: 120 / 80)."})
    max_rationale_length: int = field(default=256, metadata={"help": "Tokens per rationale view text."})
    rouge_tokenizer: str = field(
        default="default",
        metadata={"help": "ROUGE tokens of --do_eval/--do_predict: default (rouge_score's: lowercased a-z0-9 runs; "
                          "every other character is dropped, so non-Latin text scores 0), whitespace (lowercased "
                          "whitespace split) or char (every non-space character; Chinese, Japanese, Korean).",
                  "choices": list(ROUGE_TOKENIZERS)},
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N training examples."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N validation examples."})
    max_predict_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N test examples."})
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for tokenization."})
    strict_data: bool = field(
        default=False,
        metadata={"help": "Stop with an error naming the rows when an example's document or summary is empty after "
                          "stripping whitespace. Default: leave such examples out (as the paper does) and count them "
                          "in the log and run_summary.json."},
    )
    prompt_template: str = field(
        default="Summarize:\n{document}\n\nSummary:",
        metadata={"help": "Causal student: the prompt the summary continues; {document} is replaced by the document."},
    )
    use_chat_template: bool = field(
        default=False,
        metadata={"help": "Causal student: put --prompt_template in a user turn of the tokenizer's chat template."},
    )
    teacher_logprobs_file: Optional[str] = field(
        default=None,
        metadata={"help": "Causal student: sparse top-K KD from a served teacher's top-K log-probs "
                          "(generate_rationales.py --task teacher_logprobs on the training split). The targets are the "
                          "teacher's own summaries, or the dataset's references where the file scored them "
                          "(--logprobs_target reference); the log says which."},
    )

    def __post_init__(self):
        if self.stage == "basic_reading":
            if self.basic_reading_file and self.brd_passages_dir:
                raise InputError("give one of --basic_reading_file (BART denoising) or --brd_passages_dir (causal student)")
            if not (self.basic_reading_file or self.brd_passages_dir):
                raise InputError("--stage basic_reading needs --brd_passages_dir (a causal student; from compose_brd.py) or "
                                 "--basic_reading_file (a BART student; from generate_rationales.py --task basic_reading)")
        else:
            for flag in ("basic_reading_file", "brd_passages_dir", "max_passages", "brd_drop_qra_pattern", "block_size"):
                if getattr(self, flag) is not None:
                    raise InputError(f"--{flag} is only read by --stage basic_reading")
        if self.max_passages is not None and self.max_passages < 1:
            raise InputError(f"--max_passages must be >= 1 (leave it out to use every passage), got {self.max_passages}")
        if self.block_size is not None and self.block_size < 2:
            raise InputError(f"--block_size must be >= 2, got {self.block_size}")
        if self.target != "gold" and not self.rationale_file:
            raise InputError(f"--target {self.target} trains on the LLM summaries of --rationale_file; give that file")
        for flag in ("max_train_samples", "max_eval_samples", "max_predict_samples"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise InputError(f"--{flag} must be >= 1 (leave it out to use every example), got {value}")
        if not 0.0 <= self.brd_mask_ratio < 1.0:
            raise InputError(f"--brd_mask_ratio must lie in [0, 1), got {self.brd_mask_ratio}")
        if self.brd_passage_sentences < 1:
            raise InputError(f"--brd_passage_sentences must be >= 1, got {self.brd_passage_sentences}")
