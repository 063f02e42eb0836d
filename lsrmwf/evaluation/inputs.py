"""Reading prediction and reference files and pairing them up, with errors that name file and line.

Two formats:

* ``.txt``: one example per line, paired by position. An empty line is an error (it would shift
  every later example onto the wrong reference).
* ``.jsonl``: one object per line with ``id`` and a text field (``prediction`` for predictions,
  ``reference`` for references; the ``predictions.jsonl`` that ``train.py``/``evaluate.py`` write
  has both). Paired by ``id`` when both sides have ids, otherwise by position.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..io import InputError, iter_jsonl


@dataclass
class Examples:
    """Texts read from one source; ``ids`` is None for sources paired by position."""

    source: str
    texts: List[str]
    ids: Optional[List[str]]
    lines: List[int]  # 1-based line (or row) of each example, for messages
    references: Optional[List[object]] = None  # a predictions.jsonl's own ``reference`` field, per row
    documents: Optional[List[str]] = None

    def where(self, k: int) -> str:
        return f"{self.source}:{self.lines[k]}"

    def own_references(self) -> "Examples":
        """The ``reference`` field of a predictions.jsonl, as the reference side of the pairing."""
        if self.references is None or all(r is None for r in self.references):
            raise InputError(
                f"{self.source}: no references; give --references, --dataset_name or --data_file, "
                f"or a .jsonl whose rows have a 'reference' field"
            )
        for k, r in enumerate(self.references):
            if not isinstance(r, str) or not r.strip():
                problem = "is missing" if r is None else ("is empty" if isinstance(r, str)
                                                          else f"must be a string, got {type(r).__name__}")
                raise InputError(f"{self.where(k)}: field 'reference' {problem}")
        return Examples(self.source, list(self.references), self.ids, self.lines, documents=self.documents)


def _txt_lines(path: str, role: str) -> Examples:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a .txt or .jsonl file") from None
    parts = raw.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # the newline that ends the last line
    if not parts:
        raise InputError(f"{path}: file is empty")
    texts, lines = [], []
    for i, line in enumerate(parts, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{path}:{i}: not valid UTF-8 ({e}); save the file as UTF-8") from None
        text = text.removesuffix("\r")
        if not text.strip():
            raise InputError(
                f"{path}:{i}: empty line; a .txt {role} file holds one example per line, so an empty line "
                f"would pair every later {role} with the wrong example (use .jsonl with ids for empty {role}s)"
            )
        texts.append(text)
        lines.append(i)
    return Examples(path, texts, None, lines)


def _jsonl_rows(path: str, field: str, role: str, allow_empty: bool) -> Examples:
    texts, ids, lines, refs, docs = [], [], [], [], []
    seen = {}
    for line, row in iter_jsonl(path):
        if field not in row:
            raise InputError(f"{path}:{line}: field {field!r} is missing (fields: {sorted(row)})")
        text = row[field]
        if not isinstance(text, str):
            raise InputError(f"{path}:{line}: field {field!r} must be a string, got {type(text).__name__}")
        if not text.strip() and not allow_empty:
            raise InputError(f"{path}:{line}: field {field!r} is empty")
        if "id" in row:
            i = str(row["id"])
            if i in seen:
                raise InputError(f"{path}:{line}: duplicate id {i!r}, first at line {seen[i]}")
            seen[i] = line
        ids.append(str(row["id"]) if "id" in row else None)
        texts.append(text)
        lines.append(line)
        refs.append(row.get("reference"))
        docs.append(row.get("document"))
    if not texts:
        raise InputError(f"{path}: no rows")
    with_id = [i is not None for i in ids]
    if any(with_id) and not all(with_id):
        k = with_id.index(False) if with_id[0] else with_id.index(True)
        raise InputError(f"{path}:{lines[k]}: some rows have an 'id' and some do not; give every row an id or none")
    return Examples(
        path,
        texts,
        ids if all(with_id) else None,
        lines,
        references=refs,
        documents=docs if all(isinstance(d, str) for d in docs) else None,
    )


def read_examples(path: str, field: str, role: str, allow_empty: bool = False) -> Examples:
    """Read a ``.txt`` or ``.jsonl`` file of ``role`` texts ("prediction"/"reference")."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".txt":
        return _txt_lines(path, role)
    if ext == ".jsonl":
        return _jsonl_rows(path, field, role, allow_empty)
    raise InputError(f"{path}: unsupported {role} file type {ext!r}; use .jsonl (with ids) or .txt (one per line)")


def from_dataset(ds, source: str) -> Examples:
    """References (the ``summary`` column) of a dataset from :func:`lsrmwf.data.load_documents`."""
    return Examples(source, list(ds["summary"]), list(ds["id"]), list(range(1, len(ds) + 1)),
                    documents=list(ds["document"]))


def pair(predictions: Examples, references: Examples) -> Tuple[List[str], List[str], List[str]]:
    """``(ids, predictions, references)`` in the references' order.

    By id when both sides have ids (the sets must be equal), otherwise by position (the counts
    must be equal).
    """
    if predictions.ids is not None and references.ids is not None:
        index = {i: k for k, i in enumerate(predictions.ids)}
        missing = [k for k, i in enumerate(references.ids) if i not in index]
        if missing:
            k = missing[0]
            raise InputError(
                f"{predictions.source}: no prediction for id {references.ids[k]!r} ({references.where(k)}); "
                f"{len(missing)} of {len(references.ids)} reference ids have no prediction"
            )
        ref_ids = set(references.ids)
        extra = [k for k, i in enumerate(predictions.ids) if i not in ref_ids]
        if extra:
            k = extra[0]
            raise InputError(
                f"{predictions.where(k)}: id {predictions.ids[k]!r} "
                f"is not among the references in {references.source} ({len(extra)} prediction ids are not)"
            )
        order = [index[i] for i in references.ids]
        return list(references.ids), [predictions.texts[k] for k in order], list(references.texts)
    if len(predictions.texts) != len(references.texts):
        raise InputError(
            f"{predictions.source} has {len(predictions.texts)} predictions but {references.source} has "
            f"{len(references.texts)} references; without ids on both sides they are paired line by line"
        )
    ids = references.ids or predictions.ids or [str(k) for k in range(len(references.texts))]
    return list(ids), list(predictions.texts), list(references.texts)


def pair_all(systems: Mapping[str, Examples],
             references: Examples) -> Tuple[List[str], Dict[str, List[str]], List[str]]:
    """Pair every system with the same references: ``(ids, {system: predictions}, references)``.

    When the references have no ids, pairing is by position; systems that carry ids must then
    list them in the same order, or one of them is misaligned.
    """
    ids, aligned, ref_texts, claimed = None, {}, None, None
    for name, ex in systems.items():
        row_ids, aligned[name], ref_texts = pair(ex, references)
        ids = row_ids if ids is None else ids
        if references.ids is None and ex.ids is not None:
            if claimed is not None and claimed[1] != row_ids:
                k = next((k for k, (a, b) in enumerate(zip(claimed[1], row_ids)) if a != b), 0)
                raise InputError(
                    f"{ex.where(k)}: id {row_ids[k]!r} where {claimed[0].where(k)} has {claimed[1][k]!r}; "
                    f"without ids in {references.source} the systems are paired with it line by line, "
                    "so their rows must be in the same order"
                )
            claimed = (ex, row_ids)
    return (claimed[1] if claimed else ids), aligned, ref_texts


def check_same_ids(systems: Sequence[Tuple[str, List[str]]]) -> None:
    """All systems of a comparison must cover the same examples in the same order."""
    name0, ids0 = systems[0]
    for name, ids in systems[1:]:
        if ids != ids0:
            diff = next((k for k, (a, b) in enumerate(zip(ids, ids0)) if a != b), min(len(ids), len(ids0)))
            raise InputError(
                f"systems {name0!r} and {name!r} are scored on different examples (first difference at "
                f"position {diff + 1}); paired significance needs the same references for every system"
            )
