"""The arguments every evaluation task reads: the inputs and outputs, and how a checkpoint runs."""

from dataclasses import dataclass, field
from typing import List, Optional

from ...data.arguments import DatasetSplitArguments
from ...presets import PRESETS
from ..generation import GenerationSettings

PRESET_CHOICES = sorted(PRESETS) + ["none"]


@dataclass
class InputArguments(DatasetSplitArguments):
    """What is evaluated and where the results go (every task)."""

    _argument_group_name = "inputs and outputs"

    output_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Where scores, metrics, tables, plots and generated predictions go (required)."})
    split: str = field(default="test", metadata={"help": "Split of --dataset_name."})
    predictions: Optional[List[str]] = field(
        default=None,
        metadata={"help": "Prediction files to score: .jsonl rows {id, prediction[, reference]} or .txt (one summary "
                          "per line). Several files make a comparison table."},
    )
    system_names: Optional[List[str]] = field(
        default=None, metadata={"help": "Names for the --predictions files, in order (default: file names)."}
    )
    references: Optional[str] = field(
        default=None,
        metadata={"help": "Reference summaries: .jsonl rows {id, reference} or .txt (one per line). Default: the "
                          "dataset's summaries, else the 'reference' field of the predictions .jsonl."},
    )
    prediction_field: str = field(default="prediction", metadata={"help": "Text field of prediction .jsonl rows."})
    reference_field: str = field(default="reference", metadata={"help": "Text field of --references .jsonl rows."})
    baseline: Optional[str] = field(
        default=None, metadata={"help": "System the others are tested against (paired bootstrap). Default: the first."}
    )
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Generate summaries with this seq2seq checkpoint (LSR-MWF or plain BART; local directory or "
                          "hub name) for the dataset's documents, then score them."},
    )
    model_system_name: Optional[str] = field(
        default=None, metadata={"help": "Name of the generated system in the table (default: the checkpoint's name)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Regenerate even if --output_dir holds (finished or partial) predictions of this "
                          "checkpoint."})
    no_progress: bool = field(default=False, metadata={"help": "Hide progress bars."})


@dataclass
class GenerationArguments(GenerationSettings):
    """How a checkpoint runs: decoding (summarization), device, dtype and batch size (every task)."""

    _argument_group_name = "generation (device, dtype and batch size: every task)"

    device_map: Optional[str] = field(
        default=None,
        metadata={"help": "multiple_choice / teacher_student_ce: auto spreads a model too large for one device over "
                          "the GPUs (and CPU) with accelerate; --device is then not used.", "choices": ["auto"]})

    preset: Optional[str] = field(
        default=None,
        metadata={"help": "The paper's generation settings (cnndm: 4 beams, length penalty 2.0, 55-140 tokens; xsum: "
                          "8 beams, 0.6, 11-62; both no-repeat 3). 'none' keeps the checkpoint's generation config. "
                          "Default: the preset the hub dataset implies, else cnndm (as train.py).",
                  "choices": PRESET_CHOICES},
    )
