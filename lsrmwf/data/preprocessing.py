"""Preparing documents for training: the training targets and tokenization (documents, summaries and
each view's rationale text)."""

import logging

from ..io import InputError

logger = logging.getLogger("lsrmwf.train")


def apply_target(train, args, table):
    """``--target``: gold summaries, the LLM's total summaries (sequence-level KD), or both.

    ``args``: ``target``, ``rationale_file`` and ``on_duplicate`` (LSR-MWF's arguments); ``table``: the rationale
    file as :func:`lsrmwf.data.rationales.rationale_table` built it.
    """
    if args.target == "gold":
        return train
    import datasets

    from .rationales import llm_summaries

    llm = llm_summaries(train, args.rationale_file, table, args.on_duplicate)
    if len(llm) == 0:
        raise InputError(f"{args.rationale_file}: no kept, error-free row with a non-empty "
                         f"'summary' matches a training example; --target {args.target} has nothing to train on")
    logger.info("--target %s: %d of %d training documents have an LLM summary", args.target, len(llm), len(train))
    return llm if args.target == "llm_summary" else datasets.concatenate_datasets([train, llm])


def tokenize_dataset(ds, tokenizer, data_args, views=(), desc="tokenizing", num_proc=None, max_rationale_length=256):
    """input_ids/attention_mask/labels, plus ``{v}_input_ids``/``{v}_attention_mask`` per view with text
    (``data_args``: the source and target lengths; ``max_rationale_length``: a view text's)."""
    views = [v for v in views if f"{v}_text" in ds.column_names]

    def encode(batch):
        enc = tokenizer(batch["document"], max_length=data_args.max_source_length, truncation=True)
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
               "labels": tokenizer(batch["summary"], max_length=data_args.max_target_length,
                                   truncation=True)["input_ids"]}
        for v in views:
            texts = batch[f"{v}_text"]
            have = [k for k, t in enumerate(texts) if t]
            ids, masks = [[] for _ in texts], [[] for _ in texts]
            if have:
                r = tokenizer([texts[k] for k in have], max_length=max_rationale_length, truncation=True)
                for j, k in enumerate(have):
                    ids[k], masks[k] = r["input_ids"][j], r["attention_mask"][j]
            out[f"{v}_input_ids"], out[f"{v}_attention_mask"] = ids, masks
        return out

    return ds.map(encode, batched=True, remove_columns=ds.column_names, num_proc=num_proc, desc=desc)
