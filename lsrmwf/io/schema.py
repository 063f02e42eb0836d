"""The rationale row: what ``generate_rationales.py`` writes, training joins and evaluation shows.

One row per training document::

    {"id": "17",
     "rationales": [{"aspect": "...", "sentence": "...", "triples": [["s", "r", "o"], ...]}, ...],
     "sub_summaries": ["...", ...], "summary": "...",          # S^mul and S^tol (paper Tasks 4-5)
     "rouge": {...}, "score": 0.71, "keep": true,                 # best-rationale selection
     "error": null,                                               # or what failed (then keep is false)
     ... provenance: model, endpoint, prompt_version, params, usage, latency_s, cache_key ...}

:class:`RationaleRow` is its typed form: :meth:`RationaleRow.from_json` validates a decoded row and
names the bad field, :meth:`RationaleRow.to_json` writes it back unchanged (unknown provenance fields
are kept). The three views and the texts their target encodings are computed from live here too.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import InputError

VIEWS = ("ea", "as", "ter")  # Essential Aspect, Associated Sentence, Triple Entity Relations; hierarchy order
RATIONALE_SEPARATOR = " | "
TRIPLE_SEPARATOR = " # "


@dataclass
class Rationale:
    """One rationale: the essential aspect (EA), its associated document sentence (AS) and the
    subject|relation|object triples (TER) of that sentence."""

    aspect: str = ""
    sentence: str = ""
    triples: List[List[str]] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: Any, where: str = "rationale") -> "Rationale":
        if not isinstance(obj, dict):
            raise InputError(f"{where}: must be an object with aspect, sentence, triples; got {type(obj).__name__}")
        values = {}
        for name in ("aspect", "sentence"):
            value = obj.get(name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{where}.{name}: must be a string, got {type(value).__name__}")
            values[name] = value or ""
        triples = obj.get("triples") or []
        if not isinstance(triples, list):
            raise InputError(f"{where}.triples: must be a list of [subject, relation, object], "
                             f"got {type(triples).__name__}")
        for k, t in enumerate(triples):
            if not isinstance(t, (list, tuple)) or not all(isinstance(p, (str, int, float)) for p in t):
                raise InputError(f"{where}.triples[{k}]: must be a list [subject, relation, "
                                 f"object] of strings, got {t!r}")
        return cls(values["aspect"], values["sentence"], [[str(p) for p in t] for t in triples])

    def to_json(self) -> dict:
        return {"aspect": self.aspect, "sentence": self.sentence, "triples": [list(t) for t in self.triples]}


@dataclass
class RationaleRow:
    id: str
    rationales: List[Rationale] = field(default_factory=list)
    sub_summaries: List[str] = field(default_factory=list)
    summary: str = ""
    rouge: Optional[dict] = None
    score: Optional[float] = None
    keep: Optional[bool] = None  # selection's verdict; None when the row does not say
    error: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)  # provenance and anything else, written back as is
    line: Optional[int] = None  # 1-based line of the file it was read from (not written)

    FIELDS = ("id", "rationales", "sub_summaries", "summary", "rouge", "score", "keep", "error")

    @property
    def ok(self) -> bool:
        """Finished without error (it may still have been rejected by selection: see ``keep``)."""
        return self.error is None

    @classmethod
    def from_json(cls, obj: Any, where: str = "row") -> "RationaleRow":
        """Validate a decoded JSON row; an :class:`InputError` names ``where`` and the bad field."""
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if obj.get("id") is None:
            raise InputError(f"{where}: field 'id' is missing")
        rationales = obj.get("rationales") or []
        if not isinstance(rationales, list):
            raise InputError(f"{where}: field 'rationales' must be a list, got {type(rationales).__name__}")
        subs = obj.get("sub_summaries") or []
        if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
            raise InputError(f"{where}: field 'sub_summaries' must be a list of strings")
        summary = obj.get("summary") or ""
        if not isinstance(summary, str):
            raise InputError(f"{where}: field 'summary' must be a string, got {type(summary).__name__}")
        rouge = obj.get("rouge")
        if rouge is not None and not isinstance(rouge, dict):
            raise InputError(f"{where}: field 'rouge' must be an object, got {type(rouge).__name__}")
        score = obj.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise InputError(f"{where}: field 'score' must be a number, got {score!r}")
        keep = obj.get("keep")
        if keep is not None and not isinstance(keep, bool):
            raise InputError(f"{where}: field 'keep' must be true or false, got {keep!r}")
        error = obj.get("error")
        if error is not None and not isinstance(error, str):
            error = str(error)
        return cls(
            id=str(obj["id"]),
            rationales=[Rationale.from_json(r, f"{where}: rationales[{k}]") for k, r in enumerate(rationales)],
            sub_summaries=list(subs), summary=summary, rouge=rouge,
            score=None if score is None else float(score), keep=keep, error=error,
            extra={k: v for k, v in obj.items() if k not in cls.FIELDS},
        )

    def to_json(self) -> dict:
        out = {"id": self.id, "rationales": [r.to_json() for r in self.rationales],
               "sub_summaries": list(self.sub_summaries),
               "summary": self.summary, "rouge": self.rouge, "score": self.score, "keep": self.keep,
               "error": self.error}
        out.update(self.extra)
        return out

    def view_texts(self) -> Dict[str, Optional[str]]:
        """The text each view's target is encoded from: EA = the aspects, AS = the associated
        sentences, TER = ``"s # r # o"`` triples, each list joined with ``" | "``. Empty parts are
        left out; a view with nothing left (or a failed row) is ``None``, and its loss is masked."""
        if not self.ok:
            return {v: None for v in VIEWS}
        return view_texts(self.rationales)


def view_texts(rationales: List[Rationale]) -> Dict[str, Optional[str]]:
    """EA/AS/TER texts of a list of :class:`Rationale` (see :meth:`RationaleRow.view_texts`)."""
    aspects = [r.aspect.strip() for r in rationales if r.aspect.strip()]
    sentences = [r.sentence.strip() for r in rationales if r.sentence.strip()]
    triples = []
    for r in rationales:
        for t in r.triples:
            parts = [p.strip() for p in t]
            if len(parts) == 3 and all(parts):
                triples.append(TRIPLE_SEPARATOR.join(parts))

    def join(xs):
        return RATIONALE_SEPARATOR.join(xs) if xs else None

    return {"ea": join(aspects), "as": join(sentences), "ter": join(triples)}
