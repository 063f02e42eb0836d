"""Best-rationale selection (paper step 2): score the LLM's summaries against the gold summary.

Convention (the paper is ambiguous on units, measure and direction; this is what
``generate_rationales.py`` does):

* ROUGE-1, -2, -3 and -L are computed with ``rouge_score`` (Porter stemming) between the LLM's
  summary and the gold summary S*, as **fractions in [0, 1]**. Every new row stores precision,
  recall and F1 of all four for both LLM summaries (``rouge_prf_by_summary``), so every reading
  below can be applied later without the LLM (``generate_rationales.py --rescore``).
* Two choices make four readings of Eq. (6)-(8):
  the **measure** (``--rouge_measure``): F1 (``fmeasure``, the default) or recall, which is what
  Eq. (6) defines; and Score2's **third term** (``--score2_terms``): ROUGE-L (the default) or
  ROUGE-3, which is what Eq. (8) prints. Score1 uses ROUGE-1 and -2 only, so it has two readings.
  ``generate_rationales.py --rescore --compare`` prints how many rows each reading keeps.
* The paper computes ROUGE "for S^mul and S^tol" and then one score per example, without saying
  how the two combine. The LLM summary scored is the total summary S^tol by default
  (``--score_on total``); ``--score_on sub_summaries`` scores the concatenated sub-summaries S^mul
  instead, and ``--score_on both`` keeps a row only if **both** pass: its ``score`` is the worse
  (larger) of the two.
* Scores are **losses, lower is better**:
  ``score1 = 1 - R1*R2/(R1+R2)`` (CNN/DM preset; 1 when R1+R2 = 0) and
  ``score2 = 1 - (R1+R2+R3)/3`` with R3 = ROUGE-L or ROUGE-3 (XSum preset).
* A row is **kept iff score <= threshold**; the paper's thresholds "85" and "65" are 0.85 (score1)
  and 0.65 (score2). The paper kept 71% of CNN/DM and 62% of XSum; the run prints its kept fraction.
* Failed rows have ``score: null`` and ``keep: false``.
"""

from functools import lru_cache
from typing import Dict, List, Optional

SCORES = ("score1", "score2")
SCORE_ON = ("total", "sub_summaries", "both")
SUMMARIES = ("total", "sub_summaries")
ROUGE_MEASURES = ("fmeasure", "recall", "precision")
ROUGE_TYPES = ("rouge1", "rouge2", "rouge3", "rougeL")
SCORE2_TERMS = ("rougeL", "rouge3")  # Score2's third term: our default reading, and Eq. (8) as printed
PAPER_KEPT = {"CNN/DM": 0.71, "XSum": 0.62}  # Table 1: 203K of 287K and 126K of 203K training examples


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_prf(prediction: str, reference: str) -> Dict[str, Dict[str, float]]:
    """Precision, recall and F1 of ROUGE-1/2/3/L of ``prediction`` against ``reference`` (fractions)."""
    scores = _scorer().score(reference, prediction)
    return {k: {m: round(float(getattr(scores[k], m)), 6) for m in ROUGE_MEASURES} for k in ROUGE_TYPES}


def measure_of(prf: Dict[str, Dict[str, float]], measure: str) -> Dict[str, float]:
    """One measure of a :func:`rouge_prf` result: ``{"rouge1": …, "rouge2": …, "rouge3": …, "rougeL": …}``."""
    if measure not in ROUGE_MEASURES:
        raise ValueError(f"rouge_measure must be one of {ROUGE_MEASURES}, not {measure!r}")
    return {k: v[measure] for k, v in prf.items()}


def rouge(prediction: str, reference: str, measure: str = "fmeasure") -> Dict[str, float]:
    """ROUGE-1/2/3/L of ``prediction`` against ``reference`` as fractions, in one measure."""
    if measure not in ROUGE_MEASURES:
        raise ValueError(f"rouge_measure must be one of {ROUGE_MEASURES}, not {measure!r}")
    return measure_of(rouge_prf(prediction, reference), measure)


def score1(r: Dict[str, float]) -> float:
    """1 - R1*R2/(R1+R2): a loss in [0, 1], 1 when nothing overlaps."""
    total = r["rouge1"] + r["rouge2"]
    return 1.0 if total == 0 else 1.0 - r["rouge1"] * r["rouge2"] / total


def score2(r: Dict[str, float], terms: str = "rougeL") -> float:
    """1 - (R1+R2+R3)/3, R3 being ``terms`` (ROUGE-L or ROUGE-3): a loss in [0, 1]."""
    if terms not in SCORE2_TERMS:
        raise ValueError(f"score2_terms must be one of {SCORE2_TERMS}, not {terms!r}")
    return 1.0 - (r["rouge1"] + r["rouge2"] + r[terms]) / 3.0


def score_value(score: str, r: Dict[str, float], score2_terms: str = "rougeL") -> float:
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, not {score!r}")
    return round(score1(r) if score == "score1" else score2(r, score2_terms), 6)


def decide(by: Dict[str, Dict[str, float]], score: str, threshold: float, score_on: str,
           score2_terms: str = "rougeL") -> dict:
    """``{"rouge", "score_by_summary", "score", "keep"}`` from the ROUGE of both LLM summaries (one measure)."""
    if score_on not in SCORE_ON:
        raise ValueError(f"score_on must be one of {SCORE_ON}, not {score_on!r}")
    per = {k: score_value(score, by[k], score2_terms) for k in SUMMARIES}
    value = max(per.values()) if score_on == "both" else per[score_on]  # both: the worse one must pass too
    rouge_of = "total" if score_on == "both" else score_on
    return {"rouge": by[rouge_of], "score_by_summary": per, "score": value, "keep": value <= threshold}


def select(sub_summaries: List[str], summary: str, reference: str, score: str, threshold: float,
           score_on: str = "total", rouge_measure: str = "fmeasure", score2_terms: str = "rougeL") -> dict:
    """``{"rouge_prf_by_summary", "rouge_by_summary", "rouge", "score_by_summary", "score", "keep"}`` for one
    example (see the module docstring)."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, not {score!r}")
    if score_on not in SCORE_ON:
        raise ValueError(f"score_on must be one of {SCORE_ON}, not {score_on!r}")
    prf = {"total": rouge_prf(summary, reference), "sub_summaries": rouge_prf(" ".join(sub_summaries), reference)}
    by = {k: measure_of(v, rouge_measure) for k, v in prf.items()}
    return {"rouge_prf_by_summary": prf, "rouge_by_summary": by,
            **decide(by, score, threshold, score_on, score2_terms)}


def stored_rouge(row: dict, measure: str, score2_terms: str = "rougeL") -> Optional[Dict[str, Dict[str, float]]]:
    """The ROUGE of both LLM summaries of a finished ``row`` in ``measure``, or None when the row cannot give it
    (rows written before P/R/F of ROUGE-1/2/3/L were stored hold one measure of ROUGE-1/2/L only)."""
    prf = row.get("rouge_prf_by_summary")
    if prf:
        return {k: measure_of(v, measure) for k, v in prf.items()}
    by = row.get("rouge_by_summary")
    stored = (row.get("selection") or {}).get("rouge_measure", "fmeasure")
    if by and stored == measure and all(score2_terms in by[k] for k in SUMMARIES):
        return by
    return None


def score_report(rows: List[dict], score: str, threshold: float, score_on: str, score2_terms: str = "rougeL") -> dict:
    """How the finished rows score, and how many each rule keeps at ``threshold``.

    Uses the stored ``rouge_by_summary`` of every finished row (failed rows have none).
    """
    scored = [r for r in rows if r.get("error") is None and r.get("rouge_by_summary")]
    per = {k: [score_value(score, r["rouge_by_summary"][k], score2_terms) for r in scored] for k in SUMMARIES}
    per["both"] = [max(a, b) for a, b in zip(per["total"], per["sub_summaries"])]
    n = len(scored)

    def quantiles(values):
        if not values:
            return None
        v = sorted(values)
        return {f"p{q}": v[min(n - 1, int(round(q / 100 * (n - 1))))] for q in (10, 25, 50, 75, 90)}

    return {
        "rows": n, "score": score, "threshold": threshold, "score_on": score_on, "score2_terms": score2_terms,
        "kept": {rule: sum(1 for x in per[rule] if x <= threshold) for rule in SCORE_ON},
        "quantiles": {rule: quantiles(per[rule]) for rule in SCORE_ON},
        "table1": table1(rows),
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
    line += f"; histogram: {plot}" if plot else ""
    return line + ("\n" + format_table1(report["table1"]) if report.get("table1") else "")


# ------------------------------------------------------------------------------------------------
# The readings side by side (--rescore --compare)
# ------------------------------------------------------------------------------------------------

MEASURE_NAMES = {"fmeasure": "F1", "recall": "recall (Eq. 6)", "precision": "precision"}
TERM_NAMES = {"rougeL": "R3 = ROUGE-L", "rouge3": "R3 = ROUGE-3 (Eq. 8)"}


def readings(score: str) -> List[tuple]:
    """``(rouge_measure, score2_terms)`` of each reading of ``score``: F1 or recall, and for Score2 the third
    term ROUGE-L or ROUGE-3 (Score1 has no third term: its readings carry ``rougeL``, which it ignores)."""
    terms = SCORE2_TERMS if score == "score2" else ("rougeL",)
    return [(m, t) for m in ("fmeasure", "recall") for t in terms]


def compare_readings(rows: List[dict], score: str, threshold: float, where: str = "rows") -> dict:
    """Kept count of every reading of ``score`` × every ``--score_on`` at ``threshold``, from the stored
    P/R/F of the finished rows; a finished row without them raises :class:`~lsrmwf.io.InputError`."""
    from ..io import InputError

    finished = [(k, r) for k, r in enumerate(rows) if r.get("error") is None]
    table = []
    for measure, terms in readings(score):
        kept = dict.fromkeys(SCORE_ON, 0)
        for k, r in finished:
            by = stored_rouge(r, measure, terms)
            if by is None:
                raise InputError(f"{where}: row {k + 1} (id {r.get('id')!r}) stores no precision/recall/F1 of "
                                 f"ROUGE-1/2/3/L (written before they were); give the dataset (--dataset_name or "
                                 f"--data_file, --split) so --rescore recomputes them from the references")
            per = {s: score_value(score, by[s], terms) for s in SUMMARIES}
            per["both"] = max(per.values())
            for rule in SCORE_ON:
                kept[rule] += per[rule] <= threshold
        table.append({"rouge_measure": measure, "score2_terms": terms if score == "score2" else None, "kept": kept})
    return {"rows": len(finished), "score": score, "threshold": threshold, "readings": table,
            "paper_kept_fraction": PAPER_KEPT}


def format_compare(report: dict, current: tuple = None) -> str:
    """A Markdown table: one line per reading, the kept count and fraction under each ``--score_on``;
    ``current`` = ``(rouge_measure, score2_terms)`` marks this file's reading with ``*``."""
    n = report["rows"]
    paper = ", ".join(f"{100 * v:.0f}% of {k}" for k, v in report["paper_kept_fraction"].items())
    lines = [f"readings of {report['score']} <= {report['threshold']} on {n} finished rows (the paper kept {paper}; "
             f"* = this file's reading):",
             "| reading | " + " | ".join(f"--score_on {s}" for s in SCORE_ON) + " |", "|---|"
             + "---:|" * len(SCORE_ON)]
    for r in report["readings"]:
        name = MEASURE_NAMES[r["rouge_measure"]]
        if r["score2_terms"]:
            name += ", " + TERM_NAMES[r["score2_terms"]]
        mark = " *" if current and (r["rouge_measure"], r["score2_terms"] or current[1]) == tuple(current) else ""
        cells = [f"{k} ({100 * k / n:.1f}%)" if n else "0" for k in r["kept"].values()]
        lines.append(f"| {name}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Table 1: the data set after selection
# ------------------------------------------------------------------------------------------------


def _mean(values: List[float]) -> Optional[float]:
    return round(sum(values) / len(values), 1) if values else None


def table1(rows: List[dict]) -> dict:
    """Table 1's columns for one rationale file (one split): the rows kept, and the average words of documents
    and gold summaries over the kept rows and over all finished rows (rows store ``document_words`` and
    ``summary_words``; older files lack them until ``--rescore`` is given the dataset), plus, as an extension,
    EA/AS/TER per kept row and the words of S^tol over the kept rows."""
    finished = [r for r in rows if r.get("error") is None]
    kept = [r for r in finished if r.get("keep")]

    def count(r, part):
        items = r.get("rationales") or []
        if part == "triples":
            return sum(len(x.get("triples") or []) for x in items)
        return sum(1 for x in items if str(x.get(part) or "").strip())

    def words(group, key):
        return _mean([r[key] for r in group if r.get(key) is not None])

    return {"finished": len(finished), "kept": len(kept),
            "doc_words": words(kept, "document_words"), "summary_words": words(kept, "summary_words"),
            "doc_words_before": words(finished, "document_words"),
            "summary_words_before": words(finished, "summary_words"),
            "ea_per_row": _mean([count(r, "aspect") for r in kept]),
            "as_per_row": _mean([count(r, "sentence") for r in kept]),
            "ter_per_row": _mean([count(r, "triples") for r in kept]),
            "stol_words": _mean([len(str(r.get("summary") or "").split()) for r in kept])}


def format_table1(t: dict) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.1f}"

    line = f"Table 1 (this split after selection): {t['kept']} examples kept of {t['finished']} finished rows"
    if t["doc_words"] is not None or t["doc_words_before"] is not None:
        line += (f"; avg words: document {f(t['doc_words'])} (all finished rows {f(t['doc_words_before'])}), "
                 f"gold summary {f(t['summary_words'])} (all {f(t['summary_words_before'])})")
    else:
        line += "; avg words of documents and gold summaries: n/a (rows written before they were stored)"
    return line + (f"; per kept row: EA {f(t['ea_per_row'])}, AS {f(t['as_per_row'])}, TER {f(t['ter_per_row'])}, "
                   f"S^tol {f(t['stol_words'])} words")


def word_counts(document: str, summary: str) -> dict:
    """What a row stores for Table 1: whitespace words of its document and gold summary."""
    return {"document_words": len(document.split()), "summary_words": len(summary.split())}


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
