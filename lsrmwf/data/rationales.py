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

from typing import Dict, List

from ..io import InputError, iter_jsonl
from ..io.schema import VIEWS, RationaleRow

POLICIES = ("drop", "ce_only")
ON_DUPLICATE = ("error", "last")


def load_rationales(path: str, on_duplicate: str = "error") -> Dict[str, RationaleRow]:
    """Read the JSONL that ``generate_rationales.py`` writes: id -> :class:`RationaleRow`.

    A torn last line (a run killed mid-write) is skipped. Rows with an ``error`` are kept in the
    mapping so callers can report them. An id written twice is an :class:`InputError` naming the
    ids and their lines, unless ``on_duplicate="last"`` (the last row for an id wins).
    """
    if on_duplicate not in ON_DUPLICATE:
        raise InputError(f"--on_duplicate must be one of {list(ON_DUPLICATE)}, got {on_duplicate!r}")
    rows: Dict[str, RationaleRow] = {}
    duplicates: Dict[str, List[int]] = {}
    for line, obj in iter_jsonl(path, tolerate_torn_tail=True):
        row = RationaleRow.from_json(obj, f"{path}:{line}")
        row.line = line
        if row.id in rows:
            duplicates.setdefault(row.id, [rows[row.id].line]).append(line)
        rows[row.id] = row
    if duplicates and on_duplicate == "error":
        shown = "; ".join(f"id {i!r} at lines {', '.join(map(str, lines))}" for i, lines in list(duplicates.items())[:5])
        more = f" (and {len(duplicates) - 5} more ids)" if len(duplicates) > 5 else ""
        raise InputError(f"{path}: {len(duplicates)} id(s) written more than once: {shown}{more}. Two runs probably "
                         f"wrote the same file; remove the extra rows, or pass --on_duplicate last to use each id's last row")
    return rows


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
    ``24 documents: 19 with rationales, 3 rejected by selection, 1 failed, 1 missing → 19 trained (--rationale_policy drop)``."""
    return (f"{stats['documents']} documents: {stats['with_rationales']} with rationales, {stats['rejected']} rejected by "
            f"selection, {stats['failed']} failed, {stats['missing']} missing → {stats['trained']} trained "
            f"(--rationale_policy {stats['policy']})")


def join_rationales(ds, path: str, policy: str = "drop", logger=None, rows: Dict[str, RationaleRow] = None):
    """Add ``ea_text``, ``as_text``, ``ter_text`` columns to ``ds`` from a rationale JSONL.

    ``policy="drop"``: only documents with a kept, finished row stay (the paper's selection).
    ``policy="ce_only"``: every document stays; rejected, failed and missing ones get no rationale
    texts, so their alignment losses are masked. A rationale file whose ids match no example is an
    error (almost always the wrong file or id column). ``rows`` may pass the file already read by
    :func:`load_rationales`. Returns ``(ds, stats)``; ``stats["line"]`` is :func:`describe_join`'s
    line, which is also logged at WARNING level when ``logger`` is given.
    """
    if policy not in POLICIES:
        raise InputError(f"--rationale_policy must be one of {list(POLICIES)}, got {policy!r}")
    rows = load_rationales(path) if rows is None else rows
    ids = list(ds["id"])
    id_set = set(ids)
    unmatched = [i for i in rows if i not in id_set]
    if rows and len(unmatched) == len(rows):
        first = next(iter(rows.values()))
        raise InputError(
            f"{path}:{first.line}: rationale id {first.id!r} (and all {len(rows)} others) match no "
            f"example id; check --id_column and that the file belongs to this dataset/split"
        )
    groups = {i: classify(rows.get(i)) for i in ids}
    counts = {g: 0 for g in ("with_rationales", "rejected", "failed", "missing")}
    for g in groups.values():
        counts[g] += 1
    train_ids = {i for i, g in groups.items() if policy == "ce_only" or g == "with_rationales"}

    def add(batch):
        out = {f"{v}_text": [] for v in VIEWS}
        for i in batch["id"]:
            r = rows.get(i)
            texts = r.view_texts() if groups[i] == "with_rationales" else dict.fromkeys(VIEWS)
            for v in VIEWS:
                out[f"{v}_text"].append(texts[v])
        return out

    if len(train_ids) < len(ids):
        ds = ds.filter(lambda b: [i in train_ids for i in b["id"]], batched=True,
                       desc=f"--rationale_policy {policy}")
    ds = ds.map(add, batched=True, desc="joining rationales")
    stats = dict(documents=len(ids), **counts, trained=len(ds), policy=policy, rationale_file=path,
                 unmatched_rationale_rows=len(unmatched))
    stats["line"] = describe_join(stats)
    if logger is not None:
        logger.warning("%s: %s", path, stats["line"])
    return ds, stats
