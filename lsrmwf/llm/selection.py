"""Best-rationale selection (paper step 2): score the LLM's summaries against the gold summary.

Convention (the paper is ambiguous on units and direction; this is what ``generate_rationales.py``
does):

* ROUGE-1, ROUGE-2 and ROUGE-L are computed with ``rouge_score`` (Porter stemming) between the
  LLM's summary and the gold summary S*, as **fractions in [0, 1]** (F1 by default;
  ``--rouge_measure recall`` follows the paper's Eq. 6 literally). The LLM summary is the total
  summary S^tol by default (``--score_on total``); ``--score_on sub_summaries`` scores the
  concatenated sub-summaries S^mul instead. Both ROUGE triples are stored in the row.
* Scores are **losses, lower is better**:
  ``score1 = 1 - R1*R2/(R1+R2)`` (CNN/DM preset; 1 when R1+R2 = 0) and
  ``score2 = 1 - (R1+R2+RL)/3`` (XSum preset; the paper prints ROUGE_3, which we read as ROUGE-L).
* A row is **kept iff score <= threshold**; the paper's thresholds "85" and "65" are 0.85 (score1)
  and 0.65 (score2). The paper kept 71% of CNN/DM and 62% of XSum; the run prints its kept fraction.
* Failed rows have ``score: null`` and ``keep: false``.
"""

from functools import lru_cache
from typing import Dict, List

SCORES = ("score1", "score2")
SCORE_ON = ("total", "sub_summaries")
ROUGE_MEASURES = ("fmeasure", "recall", "precision")


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(prediction: str, reference: str, measure: str = "fmeasure") -> Dict[str, float]:
    """ROUGE-1/2/L of ``prediction`` against ``reference`` as fractions."""
    if measure not in ROUGE_MEASURES:
        raise ValueError(f"rouge_measure must be one of {ROUGE_MEASURES}, not {measure!r}")
    scores = _scorer().score(reference, prediction)
    return {k: round(float(getattr(v, measure)), 6) for k, v in scores.items()}


def score1(r: Dict[str, float]) -> float:
    """1 - R1*R2/(R1+R2): a loss in [0, 1], 1 when nothing overlaps."""
    total = r["rouge1"] + r["rouge2"]
    return 1.0 if total == 0 else 1.0 - r["rouge1"] * r["rouge2"] / total


def score2(r: Dict[str, float]) -> float:
    """1 - (R1+R2+RL)/3: a loss in [0, 1]."""
    return 1.0 - (r["rouge1"] + r["rouge2"] + r["rougeL"]) / 3.0


def select(sub_summaries: List[str], summary: str, reference: str, score: str, threshold: float,
           score_on: str = "total", rouge_measure: str = "fmeasure") -> dict:
    """``{"rouge", "rouge_by_summary", "score", "keep"}`` for one example (see module docstring)."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, not {score!r}")
    if score_on not in SCORE_ON:
        raise ValueError(f"score_on must be one of {SCORE_ON}, not {score_on!r}")
    by = {
        "total": rouge(summary, reference, rouge_measure),
        "sub_summaries": rouge(" ".join(sub_summaries), reference, rouge_measure),
    }
    r = by[score_on]
    value = round(score1(r) if score == "score1" else score2(r), 6)
    return {"rouge": r, "rouge_by_summary": by, "score": value, "keep": value <= threshold}
