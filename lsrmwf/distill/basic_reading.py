"""Basic Reading Distillation (BRD) pre-education data for a seq2seq student: per sentence, the LLM's
entities and question/answer pairs as a target, mixed with denoising examples built from the original
passages (:func:`build_basic_reading_dataset`).

It reads both forms ``generate_rationales.py --task basic_reading`` writes: ``--brd_format json`` (one
row per sentence with ``entities`` and ``qa``) and the default few-shot form (one row per sentence and
behaviour, ``id`` ``<doc_id>:<k>:<ner|qra>``), whose NER and QRA rows are merged per sentence
(:func:`merge_fewshot_rows`). The causal student's passages come from :mod:`.brd_compose`.
"""

import logging
import random
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

from ..io import InputError, iter_jsonl

logger = logging.getLogger(__name__)


def linearize_reading(entities: List[dict], qa: List[dict]) -> str:
    """The seq2seq target for one sentence's basic reading.

    ``Entities: Apple (organization: maker of the MacBook Pro) ; MacBook Pro (product) Questions: What
    did I buy? Answer: A new MacBook Pro.``  Either part is left out when empty.
    """
    parts = []
    ents = []
    for e in entities:
        name = str(e.get("name") or "").strip()
        if not name:
            continue
        typ = str(e.get("type") or "").strip()
        detail = str(e.get("detail") or "").strip()
        inner = ": ".join(x for x in (typ, detail) if x)
        ents.append(f"{name} ({inner})" if inner else name)
    if ents:
        parts.append("Entities: " + " ; ".join(ents))
    pairs = []
    for p in qa:
        q = str(p.get("question") or "").strip()
        a = str(p.get("answer") or "").strip()
        if q and a:
            pairs.append(f"{q} Answer: {a}")
    if pairs:
        parts.append("Questions: " + " ; ".join(pairs))
    return " ".join(parts)


def mask_spans(text: str, ratio: float, rng: random.Random, mask_token: str) -> str:
    """BART-style text infilling on words: spans (1-3 words) covering ~``ratio`` of the words become one mask each."""
    words = text.split()
    if ratio <= 0 or len(words) < 2:
        return text
    budget = max(1, round(len(words) * ratio))
    masked = [False] * len(words)
    tries = 0
    while budget > 0 and tries < 10 * len(words):
        tries += 1
        span = min(rng.randint(1, 3), budget)
        start = rng.randrange(0, len(words) - span + 1)
        if any(masked[start : start + span]):
            continue
        for k in range(start, start + span):
            masked[k] = True
        budget -= span
    out = []
    for w, m in zip(words, masked):
        if m:
            if not out or out[-1] != mask_token:
                out.append(mask_token)
        else:
            out.append(w)
    return " ".join(out)


_SENT_INDEX = re.compile(r":(\d+)$")


def read_basic_reading_file(path: str) -> Tuple[List[dict], Dict[str, int]]:
    """Validate and read the basic-reading JSONL (one row per sentence; see the shared contract).

    Rows whose ``error`` is set are counted and marked ``_failed`` (their sentence still belongs to
    the original passage); malformed rows raise :class:`InputError` naming the file, line and field.
    """
    rows: Dict[str, dict] = {}  # id -> row; a later row for the same id (a retry) replaces an earlier one
    stats = {"rows": 0, "failed_rows": 0, "empty_readings": 0}
    failed = set()
    fewshot: List[Tuple[int, dict]] = []
    for line, obj in iter_jsonl(path, tolerate_torn_tail=True):
        stats["rows"] += 1
        where = f"{path}:{line}"
        if "behaviour" in obj:  # the few-shot form: merged per sentence below
            fewshot.append((line, obj))
            continue
        if obj.get("error"):
            # the LLM failed on this sentence: no reading, but its text still belongs to the original passage
            key = str(obj.get("id", f"line {line}"))
            failed.add(key)
            rows.pop(key, None)
            if "doc_id" in obj and isinstance(obj.get("sentence"), str) and obj["sentence"].strip():
                rows[key] = {"id": key, "doc_id": obj["doc_id"], "sentence": obj["sentence"], "_line": line,
                             "_failed": True}
            continue
        for key in ("id", "doc_id", "sentence"):
            if key not in obj:
                raise InputError(f"{where}: field {key!r} is missing")
        if not isinstance(obj["sentence"], str) or not obj["sentence"].strip():
            raise InputError(f"{where}: field 'sentence' is empty or not a string")
        for key, subkeys in (("entities", ("name",)), ("qa", ("question", "answer"))):
            value = obj.get(key) or []
            if not isinstance(value, list):
                raise InputError(f"{where}: field {key!r} must be a list, got {type(value).__name__}")
            for k, item in enumerate(value):
                if not isinstance(item, dict) or any(s not in item for s in subkeys):
                    raise InputError(f"{where}: {key}[{k}] must be an object with {list(subkeys)}")
        obj["_line"] = line
        rows[str(obj["id"])] = obj
        failed.discard(str(obj["id"]))
    if fewshot:
        if rows or failed:
            raise InputError(f"{path}: mixes few-shot rows (with 'behaviour') and --brd_format json rows; use one "
                             "form per file")
        merged = merge_fewshot_rows(path, fewshot)
        failed = {r["id"] for r in merged if r.get("_failed")}
        rows = {r["id"]: r for r in merged}
    stats["failed_rows"] = len(failed)
    return list(rows.values()), stats


def merge_fewshot_rows(path: str, rows: List[Tuple[int, dict]]) -> List[dict]:
    """Few-shot rows (one per sentence and behaviour) as one row per sentence: ``entities`` from the
    NER row, ``qa`` from the QRA row; ``_failed`` when no behaviour of the sentence has an answer."""
    by_sentence: "OrderedDict[str, dict]" = OrderedDict()
    for line, obj in rows:
        where = f"{path}:{line}"
        for key in ("id", "doc_id", "sentence_index", "sentence", "behaviour"):
            if key not in obj:
                raise InputError(f"{where}: field {key!r} is missing")
        if not isinstance(obj["sentence"], str) or not obj["sentence"].strip():
            raise InputError(f"{where}: field 'sentence' is empty or not a string")
        if obj["behaviour"] not in ("ner", "qra"):
            raise InputError(f"{where}: field 'behaviour' must be 'ner' or 'qra', got {obj['behaviour']!r}")
        key = f"{obj['doc_id']}:{obj['sentence_index']}"
        merged = by_sentence.setdefault(key, {"id": key, "doc_id": obj["doc_id"], "sentence": obj["sentence"],
                                             "entities": [], "qa": [], "_line": line, "_answers": set()})
        if obj.get("error"):
            continue
        if obj["behaviour"] == "ner":
            merged["entities"] = [dict(e, detail=e.get("detail", "")) for e in obj.get("entities") or []
                                  if isinstance(e, dict) and e.get("name")]
        else:
            merged["qa"] = [q for q in obj.get("qa") or []
                            if isinstance(q, dict) and "question" in q and "answer" in q]
        merged["_answers"].add(obj["behaviour"])
    out = []
    for r in by_sentence.values():
        if not r.pop("_answers"):
            r["_failed"] = True
        out.append(r)
    return out


def build_basic_reading_dataset(
    path: str,
    mix_original: bool = True,
    passage_sentences: int = 3,
    mask_ratio: float = 0.3,
    seed: int = 42,
    mask_token: str = "<mask>",
):
    """BRD pre-education examples as a Dataset with ``id``, ``document`` (input), ``summary`` (target).

    * one reading example per sentence: input = the sentence, target = :func:`linearize_reading`;
    * with ``mix_original``, one denoising example per passage of ``passage_sentences`` consecutive
      sentences of a document (in sentence order): input = the passage with word spans masked,
      target = the passage, so the pre-trained model keeps reconstructing ordinary text.
    """
    import datasets

    rows, stats = read_basic_reading_file(path)
    out = {"id": [], "document": [], "summary": []}
    docs: "OrderedDict[str, List[Tuple[int, int, str]]]" = OrderedDict()
    for r in rows:
        target = "" if r.get("_failed") else linearize_reading(r.get("entities") or [], r.get("qa") or [])
        m = _SENT_INDEX.search(str(r["id"]))
        order = int(m.group(1)) if m else r["_line"]
        docs.setdefault(str(r["doc_id"]), []).append((order, r["_line"], r["sentence"].strip()))
        if r.get("_failed"):
            continue
        if not target:
            stats["empty_readings"] += 1
            continue
        out["id"].append(f"reading:{r['id']}")
        out["document"].append(r["sentence"].strip())
        out["summary"].append(target)
    n_reading = len(out["id"])
    if n_reading == 0:
        raise InputError(f"{path}: no usable basic-reading row ({stats}); every row failed or has no "
                         "entities/questions")
    if mix_original:
        for doc_id, sents in docs.items():
            sents = [s for _, _, s in sorted(sents)]
            for k in range(0, len(sents), passage_sentences):
                passage = " ".join(sents[k : k + passage_sentences])
                rng = random.Random(f"{seed}:{doc_id}:{k}")
                out["id"].append(f"passage:{doc_id}:{k // passage_sentences}")
                out["document"].append(mask_spans(passage, mask_ratio, rng, mask_token))
                out["summary"].append(passage)
    stats.update(reading_examples=n_reading, passage_examples=len(out["id"]) - n_reading)
    logger.info("basic reading data from %s: %s", path, stats)
    return datasets.Dataset.from_dict(out), stats
