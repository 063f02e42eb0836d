"""Documents and summaries (:mod:`.loading`), the rationale join (:mod:`.rationales`), tokenization for
training (:mod:`.preprocessing`), sentence splitting (:mod:`.sentences`) and BPE tokenizers (:mod:`.tokenization`)."""
