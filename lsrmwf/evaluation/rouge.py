"""ROUGE-1/2/L/Lsum F1 with ``rouge_score``, on all cores for test-set sizes.

Each number is exactly what ``rouge_score.rouge_scorer.RougeScorer(..., use_stemmer=True)``
returns for the same pair: ROUGE-1/2/L on the texts as given, ROUGE-Lsum on the texts split into
sentences by NLTK's Punkt (see :mod:`.sentences`) and joined with newlines. Corpus scores are the
mean of the per-example F1 values, times 100. (The ``evaluate`` library's ``rouge`` metric wraps the
same scorer: called with ``use_stemmer=True``, ``use_aggregator=False`` and newline-joined Punkt
sentences, as the Hugging Face summarization examples do, its per-example values are these / 100.)

Tokens (``tokenizer``, ``--rouge_tokenizer``): ``default`` is rouge_score's own tokenizer, which
lowercases and keeps only runs of ``[a-z0-9]``: every other character (accents, Cyrillic, Chinese...)
is dropped, so ROUGE of Chinese text is 0. ``whitespace`` lowercases and splits on whitespace
(punctuation stays attached to its word; the Porter stemmer only touches tokens of ASCII letters longer
than 3, as the default does). ``char`` makes every non-space character one token, for Chinese,
Japanese and Korean, where words are not separated by spaces; nothing is stemmed. When most of the
references' characters would be dropped by ``default`` a WARNING says so, naming ``char``.

Work is split into chunks scored by a process pool; chunk order is kept, so the numbers do not
depend on the number of workers.
"""

import functools
import logging
import multiprocessing
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.sentences import lsum_text, punkt_tokenizer

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_TOKENIZERS = ("default", "whitespace", "char")
# Above this share of the references' non-space characters dropped by the default tokenizer, warn.
DROPPED_WARNING_SHARE = 0.5

logger = logging.getLogger("lsrmwf.rouge")
_KEPT_BY_DEFAULT = re.compile(r"[a-z0-9]")
_SPACE = re.compile(r"\s")
_ASCII_WORD = re.compile(r"^[a-z]+$")
_warned = set()
# Below this many pairs starting worker processes costs more than it saves.
MIN_PAIRS_PER_WORKER = 500

_scorers = {}


class _MemoStemmer:
    """NLTK's Porter stemmer (what rouge_score uses) with a cache: stemming is most of ROUGE's time
    and a test set repeats a small vocabulary. ``stem`` is a pure function of the word."""

    def __init__(self):
        from nltk.stem import porter

        self.stem = functools.lru_cache(maxsize=1 << 18)(porter.PorterStemmer().stem)


def _tokenize_whitespace(text: str, stemmer) -> List[str]:
    tokens = text.lower().split()
    if stemmer is not None:
        tokens = [stemmer.stem(t) if len(t) > 3 and _ASCII_WORD.match(t) else t for t in tokens]
    return tokens


def _tokenize_char(text: str, stemmer) -> List[str]:
    return [c for c in text.lower() if not c.isspace()]


def _scorers_for(use_stemmer: bool, tokenizer: str = "default"):
    if tokenizer not in ROUGE_TOKENIZERS:
        raise ValueError(f"rouge tokenizer {tokenizer!r}: choose one of {list(ROUGE_TOKENIZERS)}")
    if (use_stemmer, tokenizer) not in _scorers:
        from rouge_score import rouge_scorer, tokenize, tokenizers

        stemmer = _MemoStemmer() if use_stemmer and tokenizer != "char" else None
        split = {"default": tokenize.tokenize, "whitespace": _tokenize_whitespace, "char": _tokenize_char}[tokenizer]

        class Tokenizer(tokenizers.Tokenizer):
            """rouge_score's default tokenizer (same function) or one of ours, sharing the cached stemmer."""

            def tokenize(self, text):
                return split(text, stemmer)

        tok = Tokenizer()
        _scorers[use_stemmer, tokenizer] = (
            rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tok),
            rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=tok),
        )
    return _scorers[use_stemmer, tokenizer]


def dropped_by_default(texts: Sequence[str]) -> float:
    """The share of ``texts``' non-space characters that rouge_score's default tokenizer drops (not
    ``[a-z0-9]`` after lowercasing); 0 for no text."""
    total = kept = 0
    for text in texts:
        total += len(text) - len(_SPACE.findall(text))
        kept += len(_KEPT_BY_DEFAULT.findall(text.lower()))
    return max(0.0, 1.0 - kept / total) if total else 0.0


def warn_if_default_drops_most(references: Sequence[str], tokenizer: str) -> Optional[float]:
    """With the default tokenizer, a WARNING (once per set of references) when most of the references'
    characters are dropped; returns the dropped share when it warned."""
    if tokenizer != "default" or not references:
        return None
    key = (len(references), hash(tuple(references)))
    if key in _warned:
        return None
    share = dropped_by_default(references)
    if share <= DROPPED_WARNING_SHARE:
        return None
    _warned.add(key)
    logger.warning("ROUGE: %.0f%% of the references' non-space characters are not a-z/0-9, and rouge_score's default "
                   "tokenizer drops them (ROUGE of such text is near 0 and means nothing). Use --rouge_tokenizer char "
                   "for Chinese, Japanese or Korean, --rouge_tokenizer whitespace for other space-separated scripts",
                   100 * share)
    return share


def _score_chunk(args) -> List[Tuple[float, float, float, float]]:
    pairs, use_stemmer, language, tokenizer = args
    plain, lsum = _scorers_for(use_stemmer, tokenizer)
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
    # Not "fork": forking a process whose other threads (torch's, tokenizers', a logging handler's) hold a
    # lock can leave a worker waiting on that lock forever (seen once in CI). A forkserver starts workers
    # from a clean single-threaded process; they import only this module's scoring code.
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()


def rouge_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    use_stemmer: bool = True,
    language: str = "english",
    num_workers: Optional[int] = None,
    chunk_size: int = 256,
    progress: bool = True,
    tokenizer: str = "default",
) -> Dict[str, np.ndarray]:
    """Per-example F1 ×100 for each of :data:`ROUGE_KEYS`, in input order.

    ``num_workers=None`` uses every available core when there are enough pairs to pay for the
    processes; ``num_workers=1`` scores in this process. ``tokenizer``: one of :data:`ROUGE_TOKENIZERS`
    (see the module's docstring).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    _scorers_for(use_stemmer, tokenizer)  # an unknown tokenizer fails here, before any worker starts
    warn_if_default_drops_most(references, tokenizer)
    punkt_tokenizer(language)  # load (or fail) once here, before forking
    pairs = list(zip(predictions, references))
    if num_workers is None:
        num_workers = max(1, min(available_cores(), len(pairs) // MIN_PAIRS_PER_WORKER))
    chunks = [(pairs[i : i + chunk_size], use_stemmer, language, tokenizer) for i in range(0, len(pairs), chunk_size)]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(pairs), desc=f"ROUGE ({num_workers} process{'es' if num_workers > 1 else ''})", unit="pair",
               disable=not progress)
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


TOKENIZER_DESCRIPTIONS = {
    "default": "rouge_score's: lowercased runs of a-z0-9, everything else dropped",
    "whitespace": "lowercased, split on whitespace",
    "char": "every non-space character one token",
}


def rouge_settings(use_stemmer: bool = True, language: str = "english", tokenizer: str = "default") -> dict:
    """What the scores depend on, for the report."""
    from importlib.metadata import version

    return {
        "implementation": f"rouge_score {version('rouge_score')}",
        "tokenizer": tokenizer,
        "tokens": TOKENIZER_DESCRIPTIONS[tokenizer],
        "use_stemmer": use_stemmer and tokenizer != "char",
        "score": "F1 x 100, mean over examples",
        "lsum_sentence_splitter": punkt_tokenizer(language)[1],
    }
