"""A real byte-level BPE vocabulary for small BART models built from a config.

``facebook/bart-*`` checkpoints bring their own tokenizer. Offline, the demo, the default run and
the tests train a BART-style (GPT-2 byte-level) BPE on the training text instead; it round-trips
through ``save_pretrained``/``AutoTokenizer.from_pretrained`` like any hub tokenizer.
"""

from typing import Iterable

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # BART's ids 0..3, then <mask>


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2):
    """Train a byte-level BPE with BART's special tokens; returns a ``BartTokenizer`` (fast)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False)
    vocab = bpe.get_vocab()
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in _merges(bpe)]
    return BartTokenizer(vocab=vocab, merges=merges)


def _merges(bpe):
    import json

    return json.loads(bpe._tokenizer.to_str())["model"]["merges"]
