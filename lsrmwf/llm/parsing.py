"""Tolerant parsing and validation of the LLM's answers.

Every parser accepts JSON (also inside a ```json fence or surrounded by chatter) and falls back to
the line formats the text-mode prompts ask for:

* rationales: ``aspect | sentence | s # r # o, s # r # o`` (one line per rationale; the paper's
  format); triples may also be separated by ``;``;
* summaries: ``SUB: ...`` lines and a ``SUMMARY: ...`` line;
* basic reading: ``ENTITY: name | type | detail`` lines and ``Q: ...`` / ``A: ...`` pairs.

A parser either returns clean data or raises :class:`AnswerError` whose message states the problem
in words the model can act on (it is sent back once in a retry, then recorded as the row's error).
"""

import json
import re
from typing import List, Optional, Tuple


class AnswerError(ValueError):
    """The model's answer is unusable; the message says why. ``raw_answer``: the rejected text, if any."""

    def __init__(self, message: str, raw_answer: Optional[str] = None):
        super().__init__(message)
        self.raw_answer = raw_answer


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_TRIPLE_SPLIT = re.compile(r"\s*#\s*")
_LAST_SEPARATOR = re.compile(r"^(.*)[,;]\s*(.*)$", re.S)


def _json_candidates(text: str) -> List[str]:
    out = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        out.append(text[start:end + 1])
    return out


def load_json_object(text: str) -> Optional[dict]:
    """The JSON object in ``text`` (whole text, fenced block, or outermost braces), or None."""
    for candidate in [text.strip()] + _json_candidates(text):
        try:
            obj = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _clean(value, what: str) -> str:
    if not isinstance(value, str):
        raise AnswerError(f"{what} must be a string, got {type(value).__name__}")
    value = " ".join(value.split())
    if not value:
        raise AnswerError(f"{what} is empty")
    if not any(ch.isalnum() for ch in value):
        raise AnswerError(f"{what} has no words ({value!r}); write real content, not a placeholder")
    return value


def _optional(value, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AnswerError(f"{what} must be a string, got {type(value).__name__}")
    return " ".join(value.split())


def _looks_like_json(text: str) -> bool:
    s = text.lstrip()
    return s.startswith("{") or s.startswith("```")


def normalize_space(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------------
# Rationales (Tasks 1-3)
# ------------------------------------------------------------------------------------------------


def split_triples(field: str, where: str) -> List[List[str]]:
    """``"s # r # o, s # r # o"`` -> ``[[s, r, o], [s, r, o]]``.

    Splitting on ``#`` gives ``s1, r1, "o1, s2", r2, "o2, s3", ...``; each inner piece is cut at its
    last ``,``/``;``, so commas inside objects survive. A count that is not 3k parts is an error.
    """
    field = field.strip().strip(".")
    if not field:
        raise AnswerError(f"{where}: no triples")
    pieces = _TRIPLE_SPLIT.split(field)
    if len(pieces) < 3 or len(pieces) % 2 == 0:
        raise AnswerError(f"{where}: triples must look like 'subject # relation # object', got {field!r}")
    parts = [pieces[0]]
    for k in range(1, len(pieces)):
        piece = pieces[k]
        if k % 2 == 0 and k != len(pieces) - 1:  # "object, next subject"
            m = _LAST_SEPARATOR.match(piece)
            if not m:
                raise AnswerError(f"{where}: cannot tell where a triple ends in {piece!r} "
                                  "(separate triples with ', ')")
            parts.extend([m.group(1), m.group(2)])
        else:
            parts.append(piece)
    triples = [parts[i:i + 3] for i in range(0, len(parts), 3)]
    return [[_clean(p, f"{where}: triple part") for p in t] for t in triples]


def _rationale_from_json(obj, where: str) -> dict:
    if not isinstance(obj, dict):
        raise AnswerError(f"{where} must be an object with aspect, sentence and triples")
    for key in ("aspect", "sentence", "triples"):
        if key not in obj:
            raise AnswerError(f"{where} has no {key!r}")
    triples = obj["triples"]
    if isinstance(triples, str):
        triples = split_triples(triples, f"{where}.triples")
    if not isinstance(triples, list) or not triples:
        raise AnswerError(f"{where}.triples must be a non-empty list of [subject, relation, object]")
    clean = []
    for j, t in enumerate(triples):
        if isinstance(t, dict):
            t = [t.get("subject"), t.get("relation"), t.get("object")]
        if not isinstance(t, list) or len(t) != 3:
            raise AnswerError(f"{where}.triples[{j}] must have exactly 3 parts (subject, relation, object), got {t!r}")
        clean.append([_clean(p, f"{where}.triples[{j}]") for p in t])
    return {"aspect": _clean(obj["aspect"], f"{where}.aspect"),
            "sentence": _clean(obj["sentence"], f"{where}.sentence"), "triples": clean}


def _rationale_from_line(line: str, where: str) -> dict:
    fields = [f.strip() for f in line.split(" | ")]
    if len(fields) != 3:
        fields = [f.strip() for f in line.split("|")]
    if len(fields) != 3:
        raise AnswerError(f"{where} must be 'aspect | sentence | subject # relation # object, ...', got {line!r}")
    aspect, sentence, triples = fields
    return {
        "aspect": _clean(aspect, f"{where} aspect"),
        "sentence": _clean(sentence, f"{where} sentence"),
        "triples": split_triples(triples, where),
    }


_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)]|rationale\s*\d*\s*:)\s*", re.I)


def parse_rationales(text: str, n: int) -> List[dict]:
    """Exactly ``n`` rationales ``{aspect, sentence, triples}`` from a JSON or line-format answer."""
    obj = load_json_object(text)
    if obj is not None:
        items = obj.get("rationales")
        if not isinstance(items, list):
            raise AnswerError("the JSON answer has no 'rationales' list")
        rationales = [_rationale_from_json(r, f"rationales[{i}]") for i, r in enumerate(items)]
    elif _looks_like_json(text):
        raise AnswerError("the answer is not valid JSON")
    else:
        lines = [_LIST_MARKER.sub("", ln).strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln.count("|") >= 2]
        if not lines:
            raise AnswerError("found no rationale: expected JSON or lines 'aspect | sentence | "
                              "subject # relation # object'")
        rationales = [_rationale_from_line(ln, f"line {i + 1}") for i, ln in enumerate(lines)]
    if len(rationales) != n:
        raise AnswerError(f"expected exactly {n} rationale(s), one per summary sentence, got {len(rationales)}")
    return rationales


def verbatim_flags(rationales: List[dict], document: str) -> List[bool]:
    """Whether each associated sentence occurs in the document (whitespace-normalised, case-sensitive)."""
    doc = normalize_space(document)
    flags = []
    for r in rationales:
        sentence = normalize_space(r["sentence"]).rstrip(".")
        flags.append(any(ch.isalnum() for ch in sentence) and sentence in doc)
    return flags


# ------------------------------------------------------------------------------------------------
# Summaries (Tasks 4-5)
# ------------------------------------------------------------------------------------------------


def parse_summaries(text: str, n: int) -> Tuple[List[str], str]:
    """``(sub_summaries, total_summary)``; exactly ``n`` sub-summaries."""
    obj = load_json_object(text)
    if obj is not None:
        subs = obj.get("sub_summaries")
        if not isinstance(subs, list):
            raise AnswerError("the JSON answer has no 'sub_summaries' list")
        subs = [_clean(s, f"sub_summaries[{i}]") for i, s in enumerate(subs)]
        if "summary" not in obj:
            raise AnswerError("the JSON answer has no 'summary'")
        total = _clean(obj["summary"], "summary")
    elif _looks_like_json(text):
        raise AnswerError("the answer is not valid JSON")
    else:
        subs, total = [], None
        for line in text.splitlines():
            m = re.match(r"^\s*(SUB|SUMMARY)\s*\d*\s*:\s*(.*)$", line, re.I)
            if not m:
                continue
            if m.group(1).upper() == "SUB":
                subs.append(_clean(m.group(2), f"SUB line {len(subs) + 1}"))
            else:
                total = _clean(m.group(2), "SUMMARY line")
        if total is None:
            raise AnswerError("found no total summary: expected JSON or a line 'SUMMARY: ...'")
    if len(subs) != n:
        raise AnswerError(f"expected exactly {n} sub-summaries, one per rationale, got {len(subs)}")
    return subs, total


# ------------------------------------------------------------------------------------------------
# Basic reading (BRD)
# ------------------------------------------------------------------------------------------------


def parse_reading(text: str) -> Tuple[List[dict], List[dict]]:
    """``(entities [{name, type, detail}], qa [{question, answer}])``; at least one QA pair."""
    obj = load_json_object(text)
    if obj is not None:
        ents, qas = obj.get("entities", []), obj.get("qa")
        if not isinstance(ents, list):
            raise AnswerError("'entities' must be a list")
        if not isinstance(qas, list):
            raise AnswerError("the JSON answer has no 'qa' list")
        entities = []
        for i, e in enumerate(ents):
            if not isinstance(e, dict):
                raise AnswerError(f"entities[{i}] must be an object with name, type and detail")
            entities.append({
                "name": _clean(e.get("name"), f"entities[{i}].name"),
                "type": _clean(e.get("type"), f"entities[{i}].type"),
                "detail": _optional(e.get("detail"), f"entities[{i}].detail"),
            })
        qa = []
        for i, q in enumerate(qas):
            if not isinstance(q, dict):
                raise AnswerError(f"qa[{i}] must be an object with question and answer")
            qa.append({"question": _clean(q.get("question"), f"qa[{i}].question"),
                       "answer": _clean(q.get("answer"), f"qa[{i}].answer")})
    elif _looks_like_json(text):
        raise AnswerError("the answer is not valid JSON")
    else:
        entities, qa, question = [], [], None
        for line in text.splitlines():
            m = re.match(r"^\s*(ENTITY|Q|QUESTION|A|ANSWER)\s*:\s*(.*)$", line, re.I)
            if not m:
                continue
            tag, body = m.group(1).upper(), m.group(2).strip()
            if tag == "ENTITY":
                parts = [p.strip() for p in body.split("|")]
                if len(parts) < 2:
                    raise AnswerError(f"entity line must be 'ENTITY: name | type | detail', got {line.strip()!r}")
                entities.append({"name": _clean(parts[0], "entity name"), "type": _clean(parts[1], "entity type"),
                                 "detail": " | ".join(parts[2:])})
            elif tag in ("Q", "QUESTION"):
                question = _clean(body, "question")
            elif question is not None:
                qa.append({"question": question, "answer": _clean(body, "answer")})
                question = None
    if not qa:
        raise AnswerError("no question with an answer: expected at least one question and its answer")
    return entities, qa


# ------------------------------------------------------------------------------------------------
# Basic reading, few-shot plain text (the BRD paper's Tables 1-2)
# ------------------------------------------------------------------------------------------------

_MARKUP = re.compile(r"\*\*|__|`")
_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]")
_ENTITY_CLAUSE = re.compile(r"((?:[\"“][^\"“”]+[\"”](?:\s*,\s*|\s+and\s+|\s*,\s*and\s+)?)+)"
                            r"\s+(?:is|are)\s+(?:an?\s+|the\s+)?"
                            r"(.+?)\s+entit(?:y|ies)\b", re.I)
_QA_PAIR = re.compile(r"\b(?:question|q)\s*[:：]\s*(.+?)\s*\b(?:answer|a)\s*[:：]\s*(.+?)"
                      r"(?=\s*\b(?:question|q)\s*[:：]|\Z)",
                      re.I | re.S)
MAX_QA_PAIRS = 5


def plain_answer(text: str, input_label: str = "", output_label: str = "") -> str:
    """The answer as one line: markdown emphasis removed, a leading ``output_label`` dropped, and
    everything from a model-written next example (``input_label`` again) cut off."""
    text = _MARKUP.sub("", text or "")
    if input_label:
        cut = text.lower().find(input_label.lower())
        if cut != -1:
            text = text[:cut]
    text = normalize_space(text)
    if output_label and text.lower().startswith(output_label.lower()):
        text = text[len(output_label):].strip()
    return text


def parse_ner_answer(text: str, input_label: str = "", output_label: str = "") -> dict:
    """``{"answer": the cleaned text, "entities": [{name, type}]}``. The text is what training uses;
    ``entities`` is read from ``"X" is a <type> entity`` clauses where the model wrote them (may be empty)."""
    answer = plain_answer(text, input_label, output_label)
    if not answer or not any(ch.isalnum() for ch in answer):
        raise AnswerError("the answer is empty; write the named entities of the sentence after 'Output:'")
    if _looks_like_json(answer):
        raise AnswerError("the answer is JSON; answer in plain sentences like the examples")
    entities = []
    for m in _ENTITY_CLAUSE.finditer(answer):
        typ = normalize_space(m.group(2))
        for name in _QUOTED.findall(m.group(1)):
            if name.strip():
                entities.append({"name": normalize_space(name), "type": typ})
    return {"answer": answer, "entities": entities}


def parse_qra_answer(text: str, input_label: str = "", output_label: str = "") -> dict:
    """``{"answer": "Question: q Answer: a ...", "qa": [{question, answer}]}``: at least one pair,
    labels matched case-insensitively (``Q:``/``A:`` too), at most :data:`MAX_QA_PAIRS`."""
    cleaned = plain_answer(text, input_label, output_label)
    qa = []
    for m in _QA_PAIR.finditer(cleaned):
        q, a = normalize_space(m.group(1)), normalize_space(m.group(2))
        if any(ch.isalnum() for ch in q) and any(ch.isalnum() for ch in a):
            qa.append({"question": q, "answer": a})
    if not qa:
        raise AnswerError("no question with an answer: write 'Question: ... Answer: ...' like the examples")
    qa = qa[:MAX_QA_PAIRS]
    return {"answer": " ".join(f"Question: {p['question']} Answer: {p['answer']}" for p in qa), "qa": qa}
