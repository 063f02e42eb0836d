"""Evaluation for LSR-MWF: ROUGE and BERTScore with bootstrap intervals, system comparison with
paired significance (the paper's Table 2), generation with response times, gate plots (Figure 4)
and an HTML case view (Figure 3). ``evaluate.py`` is the command line over this package.
"""

from ..data.sentences import split_sentences
from .bertscore import BERTSCORE_KEYS, BertScorer, resolve_model
from .cases import render_cases
from .gates import plot_gates, read_gates
from .generation import GenerationSettings, generate_summaries, load_model
from .inputs import Examples, pair, read_examples
from .report import ScoringOptions, compare, markdown_table, results_table, score_systems, write_outputs
from .rouge import ROUGE_KEYS, rouge_scores
from .stats import bootstrap_ci, paired_bootstrap

__all__ = [
    "BERTSCORE_KEYS",
    "BertScorer",
    "Examples",
    "GenerationSettings",
    "ROUGE_KEYS",
    "ScoringOptions",
    "bootstrap_ci",
    "compare",
    "generate_summaries",
    "load_model",
    "markdown_table",
    "pair",
    "paired_bootstrap",
    "plot_gates",
    "read_examples",
    "read_gates",
    "render_cases",
    "resolve_model",
    "results_table",
    "rouge_scores",
    "score_systems",
    "split_sentences",
    "write_outputs",
]
