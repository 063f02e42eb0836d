"""``generate_rationales.py --rescore [--compare]``: re-apply a selection reading to a finished rationale file
without the LLM, and print how many rows each reading of Eq. (6)-(8) keeps (:mod:`lsrmwf.llm.selection`)."""

import sys
from typing import List, Optional

from .pipeline import Selection, rescore_file
from .selection import compare_readings, format_compare


def rescore_and_compare(output: str, selection: Selection, data=None, compare: bool = False) -> List[dict]:
    """Rescore ``output`` under ``selection``; ``data`` (a ``DatasetSplitArguments`` of the file's split), when
    given, supplies the documents and references from which every row's P/R/F of ROUGE-1/2/3/L and Table 1's
    word counts are recomputed (older files need it for a new measure, ROUGE-3 or ``compare``). With
    ``compare`` the table of readings goes to stderr. Returns the rewritten rows."""
    references: Optional[dict] = None
    if data is not None:
        ds = data.load_split(require_summary=True)
        references = dict(zip(ds["id"], zip(ds["document"], ds["summary"])))
    rows = rescore_file(output, selection, references)
    if compare:
        report = compare_readings(rows, selection.score, selection.score_threshold, output)
        print(format_compare(report, (selection.rouge_measure, selection.score2_terms)), file=sys.stderr)
    return rows
