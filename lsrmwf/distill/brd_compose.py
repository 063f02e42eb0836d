"""Basic Reading Distillation: compose the teacher's per-sentence answers into training passages.

Reads the few-shot rows of ``generate_rationales.py --task basic_reading`` (one row per sentence and
behaviour) and writes, per passage of the corpus (the BRD paper, section 3.2):

* D_ORI: ``s1 <sep> s2 <sep> s3``
* D_NER: ``s1 <sep> NER(s1) <sep> s2 <sep> NER(s2) <sep> s3 <sep> NER(s3)``
* D_QRA: ``s1 <sep> QRA(s1) <sep> s2 <sep> QRA(s2) <sep> s3 <sep> QRA(s3)``

``composition="sentence"`` is Table 6's sentence-level variant: one row per sentence (``s``, or ``s
<sep> NER(s)``), shuffled, so no passage context survives. A passage whose sentences lack an answer
(a failed or not yet generated request) is refused unless ``allow_partial`` (kept: the sentence
appears without its answer; a sentence with no row at all is left out) or ``skip_incomplete``
(dropped from every file, so D_ORI stays aligned with D_NER/D_QRA).
"""

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from ..io import InputError, iter_jsonl

BEHAVIOURS = ("ner", "qra")
DEFAULT_SEP = " <sep> "


@dataclass
class Passage:
    doc_id: str
    n_sentences: int
    sentences: Dict[int, str] = field(default_factory=dict)
    answers: Dict[Tuple[int, str], str] = field(default_factory=dict)

    def missing(self, behaviours: Iterable[str]) -> List[str]:
        """``"k:behaviour"`` for each sentence index lacking that behaviour's answer."""
        return [f"{k}:{b}" for k in range(self.n_sentences) for b in behaviours if (k, b) not in self.answers]


def read_answers(paths: List[str]) -> "OrderedDict[str, Passage]":
    """Passages (by ``doc_id``) from one or more answer files; a later finished row for the same id wins."""
    passages: Dict[str, Passage] = {}
    for path in paths:
        for line, row in iter_jsonl(path, tolerate_torn_tail=True):
            where = f"{path}:{line}"
            if "behaviour" not in row:
                raise InputError(f"{where}: no 'behaviour' field; this row was written with --brd_format json. "
                                 f"Composition reads the few-shot form (generate_rationales.py --task basic_reading)")
            for key in ("doc_id", "sentence_index", "n_sentences", "sentence"):
                if key not in row:
                    raise InputError(f"{where}: field {key!r} is missing")
            b, k, n = row["behaviour"], row["sentence_index"], row["n_sentences"]
            if b not in BEHAVIOURS:
                raise InputError(f"{where}: 'behaviour' must be one of {', '.join(BEHAVIOURS)}, got {b!r}")
            if not isinstance(n, int) or not isinstance(k, int) or not 0 <= k < n:
                raise InputError(f"{where}: 'sentence_index' {k!r} is not within 'n_sentences' {n!r}")
            if not isinstance(row["sentence"], str) or not row["sentence"].strip():
                raise InputError(f"{where}: field 'sentence' is empty or not a string")
            doc = str(row["doc_id"])
            p = passages.setdefault(doc, Passage(doc, n))
            if p.n_sentences != n:
                raise InputError(f"{where}: passage {doc!r} has n_sentences {n}, an earlier row said {p.n_sentences}")
            sentence = " ".join(row["sentence"].split())
            if p.sentences.setdefault(k, sentence) != sentence:
                raise InputError(f"{where}: sentence {k} of passage {doc!r} differs from an earlier row's")
            answer = row.get("answer")
            if row.get("error") is None and isinstance(answer, str) and answer.strip():
                p.answers[(k, b)] = " ".join(answer.split())
    if not passages:
        raise InputError(f"{', '.join(paths)}: no basic-reading rows")
    order = sorted(passages, key=lambda d: (0, int(d), "") if d.isdigit() else (1, 0, d))
    return OrderedDict((d, passages[d]) for d in order)


def behaviours_in(passages: Dict[str, Passage]) -> List[str]:
    present = {b for p in passages.values() for (_, b) in p.answers}
    return [b for b in BEHAVIOURS if b in present]


def compose(passages: "OrderedDict[str, Passage]", behaviours: Optional[List[str]] = None, sep: str = DEFAULT_SEP,
            composition: str = "passage", allow_partial: bool = False, skip_incomplete: bool = False,
            seed: int = 42) -> Tuple[Dict[str, List[dict]], dict]:
    """``({"ori": rows, "ner": rows, "qra": rows}, counts)``; rows are ``{id, text, n_sentences, partial}``."""
    if composition not in ("passage", "sentence"):
        raise InputError(f"--composition must be 'passage' or 'sentence', not {composition!r}")
    if allow_partial and skip_incomplete:
        raise InputError("--allow_partial and --skip_incomplete exclude each other")
    if not sep:
        raise InputError("--sep must not be empty")
    behaviours = list(behaviours) if behaviours else behaviours_in(passages)
    if not behaviours:
        raise InputError("no finished NER or QRA answer in the answer file(s)")
    for b in behaviours:
        if b not in BEHAVIOURS:
            raise InputError(f"--behaviours: unknown behaviour {b!r}; known: {', '.join(BEHAVIOURS)}")
    incomplete = {d: p.missing(behaviours) for d, p in passages.items()}
    incomplete = {d: m for d, m in incomplete.items() if m}
    if incomplete and not (allow_partial or skip_incomplete):
        shown = "; ".join(f"passage {d!r} lacks {', '.join(m[:6])}{' ...' if len(m) > 6 else ''}"
                          for d, m in list(incomplete.items())[:5])
        raise InputError(f"{len(incomplete)} of {len(passages)} passages have sentences without answers ({shown}). "
                         "Rerun generate_rationales.py with the same arguments to retry failed and missing requests, "
                         "or pass --allow_partial (keep them, sentences without their answer) or --skip_incomplete "
                         "(drop them)")
    out: Dict[str, List[dict]] = {"ori": [], **{b: [] for b in behaviours}}
    for d, p in passages.items():
        if d in incomplete and skip_incomplete:
            continue
        partial = d in incomplete
        known = sorted(p.sentences)
        if composition == "passage":
            out["ori"].append({"id": d, "text": sep.join(p.sentences[k] for k in known), "n_sentences": p.n_sentences,
                               "partial": partial})
            for b in behaviours:
                parts = []
                for k in known:
                    parts.append(p.sentences[k])
                    if (k, b) in p.answers:
                        parts.append(p.answers[(k, b)])
                out[b].append({"id": d, "text": sep.join(parts), "n_sentences": p.n_sentences, "partial": partial})
        else:
            for k in known:
                out["ori"].append({"id": f"{d}:{k}", "text": p.sentences[k], "n_sentences": 1, "partial": False})
                for b in behaviours:
                    if (k, b) in p.answers:
                        out[b].append({"id": f"{d}:{k}", "text": p.sentences[k] + sep + p.answers[(k, b)],
                                       "n_sentences": 1, "partial": False})
    if composition == "sentence":
        for name, rows in out.items():
            random.Random(f"{seed}:{name}").shuffle(rows)
    counts = {
        "composition": composition, "behaviours": behaviours, "passages_read": len(passages),
        "incomplete_passages": len(incomplete),
        "kept_partial": len(incomplete) if allow_partial else 0,
        "skipped_incomplete": len(incomplete) if skip_incomplete else 0,
        "rows": {name: len(rows) for name, rows in out.items()},
        "sentences": sum(len(p.sentences) for d, p in passages.items() if not (skip_incomplete and d in incomplete)),
        "answers": {b: sum(1 for d, p in passages.items() for (_, bb) in p.answers
                           if bb == b and not (skip_incomplete and d in incomplete)) for b in behaviours},
    }
    return out, counts
