"""ROUGE-1/2/L/Lsum F1 with ``rouge_score``, on all cores for test-set sizes.

Each number is exactly what ``rouge_score.rouge_scorer.RougeScorer(..., use_stemmer=True)``
returns for the same pair: ROUGE-1/2/L on the texts as given, ROUGE-Lsum on the texts split into
sentences by NLTK's Punkt (see :mod:`.sentences`) and joined with newlines. Corpus scores are the
mean of the per-example F1 values, times 100. (The ``evaluate`` library's ``rouge`` metric wraps the
same scorer: called with ``use_stemmer=True``, ``use_aggregator=False`` and newline-joined Punkt
sentences, as the Hugging Face summarization examples do, its per-example values are these / 100.)

Work is split into chunks scored by a process pool; chunk order is kept, so the numbers do not
depend on the number of workers.
"""

import functools
import multiprocessing
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.sentences import lsum_text, punkt_tokenizer

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# Below this many pairs starting worker processes costs more than it saves.
MIN_PAIRS_PER_WORKER = 500

_scorers = {}


class _MemoStemmer:
    """NLTK's Porter stemmer (what rouge_score uses) with a cache: stemming is most of ROUGE's time
    and a test set repeats a small vocabulary. ``stem`` is a pure function of the word."""

    def __init__(self):
        from nltk.stem import porter

        self.stem = functools.lru_cache(maxsize=1 << 18)(porter.PorterStemmer().stem)


def _scorers_for(use_stemmer: bool):
    if use_stemmer not in _scorers:
        from rouge_score import rouge_scorer, tokenize, tokenizers

        stemmer = _MemoStemmer() if use_stemmer else None

        class Tokenizer(tokenizers.Tokenizer):
            """rouge_score's default tokenizer (same function), sharing the cached stemmer."""

            def tokenize(self, text):
                return tokenize.tokenize(text, stemmer)

        tok = Tokenizer()
        _scorers[use_stemmer] = (
            rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tok),
            rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=tok),
        )
    return _scorers[use_stemmer]


def _score_chunk(args) -> List[Tuple[float, float, float, float]]:
    pairs, use_stemmer, language = args
    plain, lsum = _scorers_for(use_stemmer)
    out = []
    for prediction, reference in pairs:
        s = plain.score(reference, prediction)
        l = lsum.score(lsum_text(reference, language), lsum_text(prediction, language))
        out.append((s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure, l["rougeLsum"].fmeasure))
    return out


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool_context():
    # Workers only run pure-Python scoring, so forking (no re-import of torch/transformers in every
    # worker) is safe where it exists; elsewhere the platform's default start method is used.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def rouge_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    use_stemmer: bool = True,
    language: str = "english",
    num_workers: Optional[int] = None,
    chunk_size: int = 256,
    progress: bool = True,
) -> Dict[str, np.ndarray]:
    """Per-example F1 ×100 for each of :data:`ROUGE_KEYS`, in input order.

    ``num_workers=None`` uses every available core when there are enough pairs to pay for the
    processes; ``num_workers=1`` scores in this process.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    punkt_tokenizer(language)  # load (or fail) once here, before forking
    pairs = list(zip(predictions, references))
    if num_workers is None:
        num_workers = max(1, min(available_cores(), len(pairs) // MIN_PAIRS_PER_WORKER))
    chunks = [(pairs[i : i + chunk_size], use_stemmer, language) for i in range(0, len(pairs), chunk_size)]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(pairs), desc=f"ROUGE ({num_workers} process{'es' if num_workers > 1 else ''})", unit="pair", disable=not progress)
    rows: List[Tuple[float, float, float, float]] = []
    if num_workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            rows.extend(_score_chunk(chunk))
            bar.update(len(chunk[0]))
    else:
        with _pool_context().Pool(num_workers) as pool:
            for chunk, result in zip(chunks, pool.imap(_score_chunk, chunks)):
                rows.extend(result)
                bar.update(len(chunk[0]))
    bar.close()
    table = np.asarray(rows, dtype=np.float64).reshape(len(pairs), len(ROUGE_KEYS)) * 100.0
    return {key: table[:, j] for j, key in enumerate(ROUGE_KEYS)}


def rouge_settings(use_stemmer: bool = True, language: str = "english") -> dict:
    """What the scores depend on, for the report."""
    from importlib.metadata import version

    return {
        "implementation": f"rouge_score {version('rouge_score')}",
        "use_stemmer": use_stemmer,
        "score": "F1 x 100, mean over examples",
        "lsum_sentence_splitter": punkt_tokenizer(language)[1],
    }
