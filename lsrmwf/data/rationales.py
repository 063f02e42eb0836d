"""Reading a rationale file and joining its rows onto a dataset of documents."""

import json
from typing import Dict

from ..io import InputError, iter_jsonl
from ..io.schema import VIEWS, RationaleRow


def load_rationales(path: str) -> Dict[str, RationaleRow]:
    """Read the JSONL that ``generate_rationales.py`` writes: id -> :class:`RationaleRow` (last row for an id wins).

    A torn last line (a run killed mid-write) is skipped. Rows with an ``error`` are kept in the
    mapping so callers can report them; use :func:`join_rationales` to attach them to a dataset.
    """
    rows = {}
    for line, obj in iter_jsonl(path, tolerate_torn_tail=True):
        row = RationaleRow.from_json(obj, f"{path}:{line}")
        row.line = line
        rows[row.id] = row
    return rows


def join_rationales(ds, path: str, drop_not_kept: bool = True, logger=None, rows: Dict[str, RationaleRow] = None):
    """Add ``ea_text``, ``as_text``, ``ter_text`` columns to ``ds`` from a rationale JSONL.

    Rows marked ``keep: false`` are dropped (the paper's best-rationale selection) unless
    ``drop_not_kept`` is False. Examples with no rationale row, or a failed one, keep their
    document and get no rationale texts: their alignment losses are masked. A rationale file whose
    ids match no example is an error (almost always the wrong file or id column). ``rows`` may pass
    the file already read by :func:`load_rationales`.
    """
    rows = load_rationales(path) if rows is None else rows
    ids = set(ds["id"])
    unmatched = [i for i in rows if i not in ids]
    if rows and len(unmatched) == len(rows):
        first = next(iter(rows.values()))
        raise InputError(
            f"{path}:{first.line}: rationale id {first.id!r} (and all {len(rows)} others) match no "
            f"example id; check --id_column and that the file belongs to this dataset/split"
        )
    dropped = {i for i, r in rows.items() if drop_not_kept and r.keep is False}

    def add(batch):
        out = {f"{v}_text": [] for v in VIEWS}
        for i in batch["id"]:
            r = rows.get(i)
            texts = r.view_texts() if r is not None else dict.fromkeys(VIEWS)
            for v in VIEWS:
                out[f"{v}_text"].append(texts[v])
        return out

    n_before = len(ds)
    if dropped:
        ds = ds.filter(lambda b: [i not in dropped for i in b["id"]], batched=True, desc="dropping keep=false")
    ds = ds.map(add, batched=True, desc="joining rationales")
    stats = {
        "examples": n_before,
        "with_rationales": sum(1 for i in ids if i in rows and rows[i].ok),
        "dropped_keep_false": n_before - len(ds),
        "unmatched_rationale_rows": len(unmatched),
    }
    if logger is not None:
        logger.info("rationales from %s: %s", path, json.dumps(stats))
    return ds, stats
