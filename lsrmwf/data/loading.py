"""Loading documents and summaries from the hub, the ``aclsum`` package or local files.

Every script (``train.py``, ``generate_rationales.py``, ``evaluate.py``) goes through
:func:`load_documents`, which returns a :class:`datasets.Dataset` with the columns ``id``,
``document`` and ``summary`` whatever the source: a hub dataset (``cnn_dailymail`` 3.0.0,
``EdinburghNLP/xsum``), the ``aclsum`` package (real ACL papers, shipped offline), or local
json/jsonl/csv/parquet files. Bad input fails here with the file, row and field named.
"""

import os
from typing import Optional

from ..io import InputError, iter_jsonl
from ..presets import HUB_DATASETS

LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
RATIONALE_SEPARATOR = " | "
TRIPLE_SEPARATOR = " # "


def _aclsum_split(split: str):
    """The ``aclsum`` package's papers as ``id/document/summary`` rows.

    Document = abstract + introduction + conclusion sentences; summary = the three human-written
    aspect sentences (challenge, approach, outcome), a CNN/DM-like three-sentence summary.
    """
    import datasets

    try:
        from aclsum import ACLSum
    except ImportError:
        raise InputError("dataset 'aclsum' needs the aclsum package: pip install aclsum") from None
    names = {"train": "train", "validation": "val", "val": "val", "test": "test"}
    if split not in names:
        raise InputError(f"aclsum has splits train/validation/test, not {split!r}")
    rows = {"id": [], "document": [], "summary": []}
    for doc in ACLSum(names[split]):
        rows["id"].append(doc.id)
        rows["document"].append(" ".join(doc.get_all_sentences()))
        rows["summary"].append(" ".join(doc.summaries[a] for a in ("challenge", "approach", "outcome")))
    return datasets.Dataset.from_dict(rows)


def load_documents(
    dataset_name: Optional[str] = None,
    dataset_config_name: Optional[str] = None,
    split: str = "train",
    data_file: Optional[str] = None,
    text_column: Optional[str] = None,
    summary_column: Optional[str] = None,
    id_column: Optional[str] = None,
    max_examples: Optional[int] = None,
    cache_dir: Optional[str] = None,
    require_summary: bool = True,
    on_empty: str = "error",
    dropped: Optional[list] = None,
):
    """Load one split as a Dataset with string columns ``id``, ``document``, ``summary``.

    Local files use their ``id`` column when they have one (or ``id_column``), else the row index
    ``"<row index>"``. Ids must be unique, otherwise :class:`InputError` names the source and rows.
    Documents must be non-empty and (when ``require_summary``) summaries too, after stripping
    whitespace. An example that is not (the paper removes "empty items") is an error naming the
    rows with ``on_empty="error"``, or is left out with ``on_empty="drop"``, which appends one
    ``{"row", "id", "field"}`` per left-out example to ``dropped`` when it is given.
    """
    if on_empty not in ("error", "drop"):
        raise ValueError(f"on_empty must be 'error' or 'drop', not {on_empty!r}")
    if (dataset_name is None) == (data_file is None):
        raise InputError("give exactly one of --dataset_name or --data_file")
    known = HUB_DATASETS.get(dataset_name or "", {})
    columns = (text_column or known.get("text_column") or "document",
               summary_column or known.get("summary_column") or "summary", id_column or known.get("id_column"))
    if dataset_name == "aclsum":
        columns = ("document", "summary", "id")
    ds, source = read_source(dataset_name, dataset_config_name, split, data_file, cache_dir)
    text_column, summary_column, id_column = columns
    id_column = check_columns(ds, source, text_column, summary_column, id_column, require_summary, data_file)
    if max_examples is not None:
        ds = ds.select(range(min(max_examples, len(ds))))
    ds = to_standard_columns(ds, text_column, summary_column, id_column)
    _validate(ds, source)  # row numbers of the source, before anything is left out
    return drop_or_refuse_empty(ds, source, text_column, summary_column, require_summary, on_empty, dropped)


def read_source(dataset_name: Optional[str], dataset_config_name: Optional[str], split: str,
                data_file: Optional[str], cache_dir: Optional[str]):
    """``(the split as the source has it, a name of the source for messages)``."""
    import datasets

    if dataset_name == "aclsum":
        return _aclsum_split(split), "aclsum"
    if data_file is None:
        ds = datasets.load_dataset(dataset_name, dataset_config_name, split=split, cache_dir=cache_dir)
        return ds, f"{dataset_name}[{split}]"
    ext = os.path.splitext(data_file)[1].lower()
    if ext not in LOCAL_FORMATS:
        raise InputError(f"{data_file}: unsupported extension {ext!r}; use one of {sorted(LOCAL_FORMATS)}")
    if not os.path.exists(data_file):
        raise InputError(f"{data_file}: file not found")
    _precheck_text_file(data_file, ext)
    try:
        ds = datasets.load_dataset(LOCAL_FORMATS[ext], data_files={"data": data_file}, split="data",
                                   cache_dir=cache_dir)
    except Exception as e:  # datasets wraps parser errors in several exception types
        first = " ".join(str(e).split())[:300]
        raise InputError(f"{data_file}: could not be read as {LOCAL_FORMATS[ext]}: {first}") from None
    return ds, data_file


def check_columns(ds, source: str, text_column: str, summary_column: str, id_column: Optional[str],
                  require_summary: bool, data_file: Optional[str]) -> Optional[str]:
    """Refuse a split without the needed columns; the id column to use (a local file's own ``id``)."""
    needed = [text_column] + ([summary_column] if require_summary else [])
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {missing}; available columns are {ds.column_names} "
            f"(set --text_column/--summary_column/--id_column)"
        )
    if id_column is None and data_file is not None and "id" in ds.column_names:
        id_column = "id"  # a local file's own ids, so rationale rows keyed by them match
    if id_column is not None and id_column not in ds.column_names:
        raise InputError(f"{source}: id column {id_column!r} not found; available columns are {ds.column_names}")
    return id_column


def to_standard_columns(ds, text_column: str, summary_column: str, id_column: Optional[str]):
    """The split with string columns ``id`` (the id column, else the row index), ``document``, ``summary``."""
    has_summary = summary_column in ds.column_names

    def to_rows(batch, indices):
        out = {"id": [], "document": [], "summary": []}
        for j, idx in enumerate(indices):
            out["id"].append(str(batch[id_column][j]) if id_column else str(idx))
            out["document"].append(batch[text_column][j] or "")
            out["summary"].append((batch[summary_column][j] or "") if has_summary else "")
        return out

    return ds.map(to_rows, batched=True, with_indices=True, remove_columns=ds.column_names, desc="reading")


def drop_or_refuse_empty(ds, source: str, text_column: str, summary_column: str, require_summary: bool,
                         on_empty: str, dropped: Optional[list]):
    """Empty examples: an error naming the rows (``on_empty="error"``) or left out (``"drop"``)."""
    empty = find_empty(ds, text_column, summary_column, require_summary)
    if empty and on_empty == "error":
        raise InputError(describe_empty(empty, source, limit=10))
    if empty:
        bad = {e["row"] - 1 for e in empty}
        ds = ds.select([k for k in range(len(ds)) if k not in bad])
        if dropped is not None:
            dropped.extend(empty)
    return ds


def _precheck_text_file(path: str, ext: str) -> None:
    """JSONL: every line a JSON object (the error names the line); CSV/JSON: valid UTF-8 (names the line)."""
    if ext == ".jsonl":
        for _ in iter_jsonl(path):
            pass
    elif ext in (".csv", ".json"):
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"{path}:{number}: not valid UTF-8 ({e})") from None


def find_empty(ds, text_column: str = "document", summary_column: str = "summary",
               require_summary: bool = True) -> list:
    """``{"row" (1-based), "id", "field"}`` for each example whose document (or required summary) is empty
    or whitespace only; ``field`` names the source column."""
    out = []
    for row, (i, doc, summ) in enumerate(zip(ds["id"], ds["document"], ds["summary"])):
        if not doc.strip():
            out.append({"row": row + 1, "id": i, "field": text_column})
        elif require_summary and not summ.strip():
            out.append({"row": row + 1, "id": i, "field": summary_column})
    return out


def describe_empty(empty: list, source: str, limit: int = 10) -> str:
    """``source: row 2 (id 'b'): field 'document' is empty; row 7 (...)...`` for up to ``limit`` rows."""
    parts = [f"row {e['row']} (id {e['id']!r}): field {e['field']!r} is empty" for e in empty[:limit]]
    more = f"; and {len(empty) - limit} more" if len(empty) > limit else ""
    return f"{source}: " + "; ".join(parts) + more


def _validate(ds, source):
    seen = {}
    for row, i in enumerate(ds["id"]):
        where = f"{source}: row {row + 1} (id {i!r})"
        if i in seen:
            raise InputError(f"{where}: duplicate id, first seen at row {seen[i] + 1}")
        seen[i] = row


def load_txt_passages(path: str, unit: str, max_examples: Optional[int] = None):
    """A .txt file as passages (ids = 0-based passage index), one per line or per paragraph."""
    import re

    import datasets

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e})") from None
    chunks = text.splitlines() if unit == "line" else re.split(r"\n\s*\n", text)
    passages = [" ".join(c.split()) for c in chunks if c.strip()]
    if not passages:
        raise InputError(f"{path}: no text found")
    passages = passages[:max_examples] if max_examples is not None else passages
    ids = [str(i) for i in range(len(passages))]
    return datasets.Dataset.from_dict({"id": ids, "document": passages, "summary": [""] * len(passages)})
