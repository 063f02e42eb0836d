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
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                            show_progress=False)
    vocab = bpe.get_vocab()
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in _merges(bpe)]
    return BartTokenizer(vocab=vocab, merges=merges)


def _merges(bpe):
    import json

    return json.loads(bpe._tokenizer.to_str())["model"]["merges"]


def fit_model_max_length(tokenizer, max_positions) -> None:
    """Cap ``tokenizer.model_max_length`` at the model's ``max_position_embeddings``.

    A tokenizer trained here (or loaded from a checkpoint that saved one) has no limit of its own:
    ``model_max_length`` is about 1e30, so ``truncation=True`` keeps every token and a long document
    indexes past the model's position table. For BART (and LSR-MWF) the config value is the usable
    length (the learned table has two more rows for its offset). A tokenizer that already allows no
    more than the model (a hub BART's 1024) is left as it is; without a known number of positions
    nothing changes. Set before ``save_pretrained``, the limit is saved with the checkpoint.
    """
    if not max_positions:
        return
    current = getattr(tokenizer, "model_max_length", None)
    if current is None or current > max_positions:
        tokenizer.model_max_length = int(max_positions)
