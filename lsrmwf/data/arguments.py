"""Where the documents come from: the dataset arguments shared by the three command lines.

``train.py`` reads three splits (:class:`lsrmwf.training.arguments.SummarizationDataArguments` adds its train/
validation/test files and sample limits); ``generate_rationales.py`` and ``evaluate.py`` read one
(:class:`DatasetSplitArguments`). All of them load through :meth:`DatasetArguments.load`, which
returns ``id``/``document``/``summary`` rows (:func:`lsrmwf.data.loading.load_documents`).
"""

from dataclasses import dataclass, field
from typing import Optional

from ..io import InputError


@dataclass
class DatasetArguments:
    dataset_name: Optional[str] = field(
        default=None, metadata={"help": "Hub dataset (cnn_dailymail, EdinburghNLP/xsum) or 'aclsum' (offline)."}
    )
    dataset_config_name: Optional[str] = field(default=None,
                                               metadata={"help": "Hub dataset config, e.g. 3.0.0 for cnn_dailymail."})
    text_column: Optional[str] = field(default=None,
                                       metadata={"help": "Document column (default: the dataset's, else 'document')."})
    summary_column: Optional[str] = field(default=None, metadata={"help": "Summary column (default: the "
                                                                          "dataset's, else 'summary')."})
    id_column: Optional[str] = field(
        default=None,
        metadata={"help": "Id column (default: the dataset's, or a local file's 'id'; else the row index). Rationale "
                          "rows are matched to documents by it."},
    )

    def load(self, split: str = "train", data_file: Optional[str] = None, max_examples: Optional[int] = None,
             cache_dir: Optional[str] = None, require_summary: bool = True, on_empty: str = "error",
             dropped: Optional[list] = None):
        """One split as a Dataset of ``id``/``document``/``summary``: ``data_file`` if given, else the hub dataset.
        ``on_empty``/``dropped``: see :func:`lsrmwf.data.loading.load_documents`."""
        from .loading import load_documents

        return load_documents(
            dataset_name=None if data_file else self.dataset_name,
            dataset_config_name=self.dataset_config_name, split=split, data_file=data_file,
            text_column=self.text_column, summary_column=self.summary_column, id_column=self.id_column,
            max_examples=max_examples, cache_dir=cache_dir, require_summary=require_summary, on_empty=on_empty,
            dropped=dropped,
        )


@dataclass
class DatasetSplitArguments(DatasetArguments):
    """One split of a dataset, or one local file."""

    data_file: Optional[str] = field(default=None,
                                     metadata={"help": "Local json/jsonl/csv/parquet file instead of --dataset_name."})
    split: str = field(default="train", metadata={"help": "Split of --dataset_name."})
    max_examples: Optional[int] = field(default=None, metadata={"help": "Use only the first N documents."})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Cache for hub datasets (and models)."})

    def __post_init__(self):
        if self.max_examples is not None and self.max_examples < 1:
            raise InputError("--max_examples must be >= 1 (leave it out to use every "
                             f"example), got {self.max_examples}")

    def load_split(self, require_summary: bool = True):
        if self.data_file and self.dataset_name:
            raise InputError("give exactly one of --dataset_name or --data_file")
        return self.load(self.split, self.data_file, self.max_examples, self.cache_dir, require_summary)
