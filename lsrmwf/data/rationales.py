"""Reading a rationale file and joining its rows onto a dataset of documents.

Every training document falls in exactly one of four groups:

    with rationales   a finished row (``error`` null) that selection kept (``keep`` not false)
    rejected          a finished row that selection rejected (``keep: false``)
    failed            a row whose LLM request failed (``error`` set)
    missing           no row for the document's id

``--rationale_policy drop`` (the paper's filtering, every preset's default) trains only the first
group; ``ce_only`` trains every document, the last three with the token loss only (view losses
masked). :func:`join_rationales` applies the policy and returns the counts, and
:func:`describe_join` turns them into the one line every run prints.
"""

import os
from typing import Dict, List, Optional

from ..io import InputError, iter_jsonl
from ..io.schema import VIEWS, RationaleRow

POLICIES = ("drop", "ce_only")
ON_DUPLICATE = ("error", "last")
GROUPS = ("with_rationales", "rejected", "failed", "missing")
TABLE_VERSION = "rationale-table-v1"  # bump when the columns or their meaning change: old caches are then ignored


def _duplicate_error(path: str, duplicates: Dict[str, List[int]]) -> InputError:
    shown = "; ".join(f"id {i!r} at lines {', '.join(map(str, lines))}" for i, lines in list(duplicates.items())[:5])
    more = f" (and {len(duplicates) - 5} more ids)" if len(duplicates) > 5 else ""
    return InputError(f"{path}: {len(duplicates)} id(s) written more than once: {shown}{more}. Two runs probably "
                      "wrote the same file; remove the extra rows, or pass --on_duplicate "
                      "last to use each id's last row")


def _check_on_duplicate(on_duplicate: str) -> None:
    if on_duplicate not in ON_DUPLICATE:
        raise InputError(f"--on_duplicate must be one of {list(ON_DUPLICATE)}, got {on_duplicate!r}")


def load_rationales(path: str, on_duplicate: str = "error") -> Dict[str, RationaleRow]:
    """Read the JSONL that ``generate_rationales.py`` writes: id -> :class:`RationaleRow`.

    For files that fit in memory (evaluation's views, tests); training joins through
    :func:`rationale_table`. A torn last line (a run killed mid-write) is skipped. Rows with an
    ``error`` are kept in the mapping so callers can report them. An id written twice is an
    :class:`InputError` naming the ids and their lines, unless ``on_duplicate="last"`` (the last row
    for an id wins).
    """
    _check_on_duplicate(on_duplicate)
    rows: Dict[str, RationaleRow] = {}
    duplicates: Dict[str, List[int]] = {}
    for line, obj in iter_jsonl(path, tolerate_torn_tail=True):
        row = RationaleRow.from_json(obj, f"{path}:{line}")
        row.line = line
        if row.id in rows:
            duplicates.setdefault(row.id, [rows[row.id].line]).append(line)
        rows[row.id] = row
    if duplicates and on_duplicate == "error":
        raise _duplicate_error(path, duplicates)
    return rows


def _table_rows(path: str, stamp: str):
    """One Arrow row per JSONL row: what training needs of it (``stamp`` only keys the cache)."""
    for line, obj in iter_jsonl(path, tolerate_torn_tail=True):
        row = RationaleRow.from_json(obj, f"{path}:{line}")
        texts = row.view_texts() if classify(row) == "with_rationales" else dict.fromkeys(VIEWS)
        yield {"id": row.id, "line": line, "group": classify(row), "summary": row.summary,
               **{f"{v}_text": texts[v] for v in VIEWS}}


def rationale_table(path: str, cache_dir: Optional[str] = None):
    """The rationale file as a memory-mapped Arrow table (a ``datasets.Dataset``), built once.

    Columns: ``id``, ``line`` (1-based, for messages), ``group`` (:func:`classify`: with_rationales,
    rejected or failed), ``summary`` (S^tol) and ``{ea,as,ter}_text`` (None unless the row's group is
    with_rationales). The file is streamed row by row and validated on the way (a bad row is an
    :class:`InputError` naming its line); the table is cached by datasets under the file's path,
    size and modification time, so a later run (or another rank, after the main process) maps it
    from disk instead of parsing JSON. No per-row Python object outlives the build.
    """
    import datasets

    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    st = os.stat(path)
    # ctime and inode cannot be set back (cp -p, rsync -a and tar restore mtime): a rewritten file is new
    stamp = f"{TABLE_VERSION}:{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    features = datasets.Features({"id": datasets.Value("string"), "line": datasets.Value("int64"),
                                  "group": datasets.Value("string"), "summary": datasets.Value("string"),
                                  **{f"{v}_text": datasets.Value("string") for v in VIEWS}})
    if not any(True for _ in iter_jsonl(path, tolerate_torn_tail=True)):  # datasets cannot build an empty split
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    try:
        return datasets.Dataset.from_generator(_table_rows, features=features, cache_dir=cache_dir,
                                               gen_kwargs={"path": path, "stamp": stamp})
    except Exception as e:  # datasets wraps the generator's errors: surface the row's own message
        cause = e
        while cause is not None and not isinstance(cause, InputError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None


def row_positions(ids, table, path: str, on_duplicate: str = "error"):
    """For each id in ``ids`` (a pyarrow array), the position of its row in ``table`` (null: no row).

    Vectorised in Arrow (no Python dict of the file). An id written twice in ``table`` is an
    :class:`InputError` naming the ids and lines, unless ``on_duplicate="last"`` (its last row).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    _check_on_duplicate(on_duplicate)
    rid = table.data.table.column("id").combine_chunks()
    n = len(rid)
    if n and len(pc.unique(rid)) < n:
        if on_duplicate == "error":
            counts = pc.value_counts(rid)
            dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
            first = dup.slice(0, 5)
            where = pc.is_in(rid, value_set=first)
            lines = table.data.table.column("line").combine_chunks().filter(where).to_pylist()
            duplicates: Dict[str, List[int]] = {}
            for i, line in zip(rid.filter(where).to_pylist(), lines):
                duplicates.setdefault(i, []).append(line)
            duplicates.update({i: [] for i in dup.slice(5).to_pylist()})
            raise _duplicate_error(path, duplicates)
        reversed_ids = rid.take(pa.array(range(n - 1, -1, -1), pa.int64()))
        last = pc.index_in(ids, value_set=reversed_ids)  # first match in the reversed file = last row
        return pc.subtract(pa.scalar(n - 1, pa.int32()), last)
    return pc.index_in(ids, value_set=rid)


def classify(row) -> str:
    """``with_rationales``, ``rejected``, ``failed`` or ``missing`` for one document's row (or None)."""
    if row is None:
        return "missing"
    if not row.ok:
        return "failed"
    if row.keep is False:
        return "rejected"
    return "with_rationales"


def describe_join(stats: dict) -> str:
    """The run's one line about its documents, e.g.
    ``24 documents: 19 with rationales, 3 rejected by selection, 1 failed, 1 missing → 19 trained
    (--rationale_policy drop)``."""
    return (f"{stats['documents']} documents: {stats['with_rationales']} with rationales, "
            f"{stats['rejected']} rejected by selection, {stats['failed']} failed, {stats['missing']} missing → "
            f"{stats['trained']} trained (--rationale_policy {stats['policy']})")


def _join_key(*parts) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps([TABLE_VERSION, *parts]).encode()).hexdigest()[:16]


def join_rationales(ds, path: str, policy: str = "drop", logger=None, table=None, on_duplicate: str = "error",
                    cache_dir: Optional[str] = None):
    """Add ``ea_text``, ``as_text``, ``ter_text`` columns to ``ds`` from a rationale JSONL.

    ``policy="drop"``: only documents with a kept, finished row stay (the paper's selection).
    ``policy="ce_only"``: every document stays; rejected, failed and missing ones get no rationale
    texts, so their alignment losses are masked. A rationale file whose ids match no example is an
    error (almost always the wrong file or id column). ``table`` may pass :func:`rationale_table`'s
    result. The join is an Arrow lookup of each document's row and one ``datasets`` map cached under
    the documents', the table's and the policy's fingerprints: a rerun reads it from the cache.
    Returns ``(ds, stats)``; ``stats["line"]`` is :func:`describe_join`'s line, which is also logged
    at WARNING level when ``logger`` is given.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if policy not in POLICIES:
        raise InputError(f"--rationale_policy must be one of {list(POLICIES)}, got {policy!r}")
    table = rationale_table(path, cache_dir) if table is None else table
    ids = ds.with_format("arrow")["id"]
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    positions = row_positions(ids, table, path, on_duplicate)
    rid = table.data.table.column("id")
    unmatched = len(rid) - pc.sum(pc.is_in(rid, value_set=ids)).as_py() if len(rid) else 0
    if len(rid) and unmatched == len(rid):
        first = table[0]
        raise InputError(
            f"{path}:{first['line']}: rationale id {first['id']!r} (and all {len(rid)} others) match no "
            f"example id; check --id_column and that the file belongs to this dataset/split"
        )
    groups = pc.fill_null(table.data.table.column("group").combine_chunks().take(positions), "missing")
    counts = dict.fromkeys(GROUPS, 0)
    for item in pc.value_counts(groups).to_pylist():
        counts[item["values"]] += item["counts"]
    has = pc.equal(groups, "with_rationales")
    if policy == "drop" and counts["with_rationales"] < len(ids):
        keep = np.flatnonzero(has.to_numpy(zero_copy_only=False))
        ds, positions, has = ds.select(keep), positions.take(pa.array(keep)), pa.array(np.ones(len(keep), bool))
    # documents outside with_rationales get no texts: position -1 becomes a null row in ``take``
    text_positions = pc.fill_null(pc.if_else(has, positions, pa.scalar(None, positions.type)), -1).to_numpy()
    texts = table.data.table.select([f"{v}_text" for v in VIEWS])

    def add(batch, indices):
        wanted = text_positions[indices]
        picked = texts.take(pa.array(wanted, mask=wanted < 0))
        return {name: picked.column(name).to_pylist() for name in picked.column_names}

    if len(ds):
        ds = ds.map(add, batched=True, with_indices=True, desc="joining rationales",
                    new_fingerprint=_join_key(ds._fingerprint, table._fingerprint, policy, on_duplicate))
    stats = dict(documents=len(ids), **counts, trained=len(ds), policy=policy, rationale_file=path,
                 unmatched_rationale_rows=unmatched)
    stats["line"] = describe_join(stats)
    stats["table1"] = {"train": len(ds), "doc_words": average_words(ds, "document"),
                       "summary_words": average_words(ds, "summary")}
    stats["table1_line"] = (f"Table 1 (train after selection): {len(ds)} examples, avg words: document "
                            f"{stats['table1']['doc_words']}, gold summary {stats['table1']['summary_words']}")
    if logger is not None:
        logger.warning("%s: %s; %s", path, stats["line"], stats["table1_line"])
    return ds, stats


def average_words(ds, column: str):
    """Mean whitespace words of a text column (Table 1's "# Avg Words"), computed in Arrow; None when empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(ds) or column not in ds.column_names:
        return None
    texts = ds.with_format("arrow")[column]
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    counts = pc.list_value_length(pc.utf8_split_whitespace(pc.fill_null(texts, "")))
    return round(pc.mean(counts).as_py(), 1)


def llm_summaries(ds, path: str, table, on_duplicate: str = "error"):
    """``ds`` with ``summary`` replaced by each document's LLM total summary (S^tol), keeping only
    documents whose row is kept, finished and has a non-empty summary (``--target llm_summary``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = ds.with_format("arrow")["id"]
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    positions = row_positions(ids, table, path, on_duplicate)
    columns = table.data.table
    groups = pc.fill_null(columns.column("group").combine_chunks().take(positions), "missing")
    summaries = pc.utf8_trim_whitespace(pc.fill_null(columns.column("summary").combine_chunks().take(positions), ""))
    ok = pc.and_(pc.equal(groups, "with_rationales"), pc.greater(pc.utf8_length(summaries), 0))
    keep = np.flatnonzero(ok.to_numpy(zero_copy_only=False))
    kept_summaries = summaries.take(pa.array(keep))
    out = ds.select(keep)
    if not len(out):
        return out

    def replace(batch, indices):
        return {"summary": kept_summaries.take(pa.array(indices)).to_pylist()}

    return out.map(replace, batched=True, with_indices=True, desc="LLM summaries as targets",
                   new_fingerprint=_join_key("llm_summary", out._fingerprint, table._fingerprint, on_duplicate))
