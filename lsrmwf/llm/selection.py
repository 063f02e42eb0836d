"""Best-rationale selection (paper step 2): score the LLM's summaries against the gold summary.

Convention (the paper is ambiguous on units and direction; this is what ``generate_rationales.py``
does):

* ROUGE-1, ROUGE-2 and ROUGE-L are computed with ``rouge_score`` (Porter stemming) between the
  LLM's summary and the gold summary S*, as **fractions in [0, 1]** (F1 by default;
  ``--rouge_measure recall`` follows the paper's Eq. 6 literally). The paper computes ROUGE "for
  S^mul and S^tol" and then one score per example, without saying how the two combine. The LLM
  summary scored is the total summary S^tol by default (``--score_on total``);
  ``--score_on sub_summaries`` scores the concatenated sub-summaries S^mul instead, and
  ``--score_on both`` keeps a row only if **both** pass: its ``score`` is the worse (larger) of the
  two. Both ROUGE triples and both scores are stored in the row (``rouge_by_summary``,
  ``score_by_summary``), so any rule and threshold can be applied later without the LLM
  (``generate_rationales.py --rescore``).
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
SCORE_ON = ("total", "sub_summaries", "both")
SUMMARIES = ("total", "sub_summaries")
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


def score_value(score: str, r: Dict[str, float]) -> float:
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, not {score!r}")
    return round(score1(r) if score == "score1" else score2(r), 6)


def decide(by: Dict[str, Dict[str, float]], score: str, threshold: float, score_on: str) -> dict:
    """``{"rouge", "score_by_summary", "score", "keep"}`` from the ROUGE triples of both LLM summaries."""
    if score_on not in SCORE_ON:
        raise ValueError(f"score_on must be one of {SCORE_ON}, not {score_on!r}")
    per = {k: score_value(score, by[k]) for k in SUMMARIES}
    value = max(per.values()) if score_on == "both" else per[score_on]  # both: the worse one must pass too
    rouge_of = "total" if score_on == "both" else score_on
    return {"rouge": by[rouge_of], "score_by_summary": per, "score": value, "keep": value <= threshold}


def select(sub_summaries: List[str], summary: str, reference: str, score: str, threshold: float,
           score_on: str = "total", rouge_measure: str = "fmeasure") -> dict:
    """``{"rouge", "rouge_by_summary", "score_by_summary", "score", "keep"}`` for one example (see module docstring)."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, not {score!r}")
    if score_on not in SCORE_ON:
        raise ValueError(f"score_on must be one of {SCORE_ON}, not {score_on!r}")
    by = {
        "total": rouge(summary, reference, rouge_measure),
        "sub_summaries": rouge(" ".join(sub_summaries), reference, rouge_measure),
    }
    return {"rouge_by_summary": by, **decide(by, score, threshold, score_on)}


def score_report(rows: List[dict], score: str, threshold: float, score_on: str) -> dict:
    """How the finished rows score, and how many each rule keeps at ``threshold``.

    Uses the stored ``rouge_by_summary`` of every finished row (failed rows have none).
    """
    scored = [r for r in rows if r.get("error") is None and r.get("rouge_by_summary")]
    per = {k: [score_value(score, r["rouge_by_summary"][k]) for r in scored] for k in SUMMARIES}
    per["both"] = [max(a, b) for a, b in zip(per["total"], per["sub_summaries"])]
    n = len(scored)

    def quantiles(values):
        if not values:
            return None
        v = sorted(values)
        return {f"p{q}": v[min(n - 1, int(round(q / 100 * (n - 1))))] for q in (10, 25, 50, 75, 90)}

    return {
        "rows": n, "score": score, "threshold": threshold, "score_on": score_on,
        "kept": {rule: sum(1 for x in per[rule] if x <= threshold) for rule in SCORE_ON},
        "quantiles": {rule: quantiles(per[rule]) for rule in SCORE_ON},
        "scores": per,
    }


def format_score_report(report: dict, plot: str = None) -> str:
    n = report["rows"]
    if not n:
        return "selection: no finished rows to score"
    kept = ", ".join(f"{rule} {k} ({100 * k / n:.1f}%)" for rule, k in report["kept"].items())
    q = report["quantiles"][report["score_on"]]
    line = (f"selection: {report['score']} <= {report['threshold']} on {n} rows keeps {kept}; this file uses "
            f"--score_on {report['score_on']}, whose scores run p10 {q['p10']:.3f}, p25 {q['p25']:.3f}, median "
            f"{q['p50']:.3f}, p75 {q['p75']:.3f}, p90 {q['p90']:.3f} (paper: 71% kept on CNN/DM, 62% on XSum)")
    return line + (f"; histogram: {plot}" if plot else "")


def plot_score_report(report: dict, path: str) -> str:
    """A histogram of the scores of S^tol and S^mul with the threshold, written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [i / 40 for i in range(41)]
    for rule, label in (("total", "S^tol (total summary)"), ("sub_summaries", "S^mul (sub-summaries)")):
        ax.hist(report["scores"][rule], bins=bins, alpha=0.5, label=f"{label}: {report['kept'][rule]} kept")
    ax.axvline(report["threshold"], color="black", linestyle="--", label=f"threshold {report['threshold']} "
                                                                       f"(both: {report['kept']['both']} kept)")
    ax.set_xlabel(f"{report['score']} (a loss: lower is better; kept iff <= threshold)")
    ax.set_ylabel("rows")
    ax.set_title(f"Rationale selection scores, {report['rows']} rows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
