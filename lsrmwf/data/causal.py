"""Causal (decoder-only) students: the prompt, the tokenized examples and their batches.

An example is ``prompt + summary + eos`` in one sequence. The prompt is ``--prompt_template`` with
the document filled in (default: the logit-KD study's own format, ``"Summarize:\\n{document}\\n\\nSummary:"``),
or, with ``--use_chat_template``, that text as the user turn of the tokenizer's chat template
followed by the generation prompt. Only the summary tokens (and the closing eos) carry a loss: the
prompt's labels, and padding, are ``-100``.

Fields of a tokenized example:

* ``input_ids`` / ``labels``: prompt + summary, labels masked over the prompt;
* ``prompt_input_ids``: the prompt alone (eval/predict: what generation starts from);
* ``teacher_top_ids`` / ``teacher_top_logprobs``: ``[len(input_ids), K]`` per position, the served
  teacher's top-K ids (student ids, ``-1`` where the teacher said nothing: prompt, eos, ragged K)
  and their log-probs, aligned with ``labels`` (sparse top-K KD, :mod:`lsrmwf.distill.sparse_kd`); the collator
  pads a narrower K and the positions past an example's end with ids ``-1`` and log-probs ``-inf`` (no alternative);
* ``teacher_aligned``: ``[len(input_ids)]``, 1 where a label has a teacher row of another tokenizer
  (``--kd_alignment text``, :mod:`lsrmwf.distill.text_alignment`); ``teacher_top_ids`` then holds the student
  ids of the alternatives both vocabularies share (``-1`` elsewhere);
* ``teacher_input_ids`` / ``teacher_rows``: a white-box teacher of another tokenizer: its own tokens of the
  prompt and target, and per student position the teacher position aligned with it (``-1``: none).

:class:`CausalCollator` right-pads the training fields and left-pads the prompt (generation
continues from the last prompt token of every row).
"""

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from ..io import InputError

logger = logging.getLogger("lsrmwf.train")

DEFAULT_PROMPT_TEMPLATE = "Summarize:\n{document}\n\nSummary:"


def check_template(template: str) -> None:
    if template.count("{document}") != 1:
        raise InputError(f"--prompt_template must contain '{{document}}' exactly once, got {template!r}")
    try:
        template.format(document="")
    except (KeyError, IndexError, ValueError) as e:
        raise InputError(f"--prompt_template {template!r}: only the field {{document}} may appear in braces "
                         f"(write literal braces as {{{{ and }}}}): {e}") from None


def prompt_text(document: str, tokenizer, template: str, use_chat_template: bool) -> str:
    """The text the model continues with the summary."""
    user = template.format(document=document)
    if not use_chat_template:
        return user
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("--use_chat_template: this tokenizer has no chat template; leave the flag out to use "
                         "--prompt_template as plain text")
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True)


def truncate_document(document: str, tokenizer, max_tokens: Optional[int]) -> str:
    """The document cut to its first ``max_tokens`` tokens (the prompt around it is never cut)."""
    if max_tokens is None:
        return document
    ids = tokenizer(document, add_special_tokens=False)["input_ids"]
    return document if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def encode_prompt(document: str, tokenizer, template: str, use_chat_template: bool,
                  max_source_length: Optional[int]) -> List[int]:
    text = prompt_text(truncate_document(document, tokenizer, max_source_length), tokenizer, template,
                       use_chat_template)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos) and not use_chat_template:
        ids = [bos] + ids
    return ids


def summary_text(summary: str, use_chat_template: bool) -> str:
    """The summary as it follows the prompt: after a plain template ("...Summary:") it continues with a
    space; after a chat turn it starts the assistant's answer. (A served teacher scores the reference
    as this text after the plain template: ``generate_rationales.py --logprobs_target reference``.)"""
    return summary.strip() if use_chat_template else " " + summary.strip()


def encode_summary(summary: str, tokenizer, use_chat_template: bool, max_target_length: Optional[int]) -> List[int]:
    """Summary tokens + eos (the text of :func:`summary_text`)."""
    text = summary_text(summary, use_chat_template)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if max_target_length is not None:
        ids = ids[: max(0, max_target_length - 1)]
    return ids + [tokenizer.eos_token_id]


def tokenize_causal(ds, tokenizer, template: str, use_chat_template: bool, max_source_length: Optional[int],
                    max_target_length: Optional[int], with_prompt: bool, desc: str = "tokenizing", num_proc=None):
    """``input_ids``/``labels`` (and ``prompt_input_ids`` when ``with_prompt``) for each document/summary."""
    if tokenizer.eos_token_id is None:
        raise InputError("a causal student needs a tokenizer with an eos token (it ends every summary)")

    def encode(batch):
        out = {"input_ids": [], "labels": []}
        if with_prompt:
            out["prompt_input_ids"] = []
        for doc, summ in zip(batch["document"], batch["summary"]):
            prompt = encode_prompt(doc, tokenizer, template, use_chat_template, max_source_length)
            target = encode_summary(summ or "", tokenizer, use_chat_template, max_target_length)
            out["input_ids"].append(prompt + target)
            out["labels"].append([-100] * len(prompt) + target)
            if with_prompt:
                out["prompt_input_ids"].append(prompt)
        return out

    return ds.map(encode, batched=True, remove_columns=ds.column_names, num_proc=num_proc, desc=desc)


def _pad(seqs: Sequence[Sequence], value, left: bool = False, dtype=torch.long) -> torch.Tensor:
    length = max(1, max(len(s) for s in seqs))
    out = torch.full((len(seqs), length), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if len(s):
            t = torch.as_tensor(s, dtype=dtype)
            if left:
                out[i, length - len(s):] = t
            else:
                out[i, : len(s)] = t
    return out


def _pad_topk(rows: Sequence[Sequence[Sequence]], length: int, value, dtype) -> torch.Tensor:
    k = max((len(r[0]) for r in rows if len(r)), default=1)
    out = torch.full((len(rows), length, k), value, dtype=dtype)
    for i, r in enumerate(rows):
        if len(r):
            t = torch.as_tensor(r, dtype=dtype)
            out[i, : t.shape[0], : t.shape[1]] = t
    return out


@dataclass
class CausalCollator:
    """Batches causal examples: training fields right-padded, ``prompt_input_ids`` left-padded."""

    pad_token_id: int
    label_pad_token_id: int = -100

    FIELDS = ("input_ids", "labels", "prompt_input_ids", "teacher_top_ids", "teacher_top_logprobs", "document_index",
              "teacher_aligned", "teacher_input_ids", "teacher_rows")

    def __call__(self, features: List[Dict]) -> Dict[str, torch.Tensor]:
        if not features:
            raise ValueError("empty batch")
        keys = set(features[0])
        unknown = keys - set(self.FIELDS)
        if unknown:
            raise ValueError(f"unexpected example fields {sorted(unknown)}; the causal "
                             f"collator knows {list(self.FIELDS)}")
        ids = [f["input_ids"] for f in features]
        batch = {"input_ids": _pad(ids, self.pad_token_id),
                 "attention_mask": _pad([[1] * len(s) for s in ids], 0)}
        if "labels" in keys:
            batch["labels"] = _pad([f["labels"] for f in features], self.label_pad_token_id)
        if "prompt_input_ids" in keys:
            prompts = [f["prompt_input_ids"] for f in features]
            batch["prompt_input_ids"] = _pad(prompts, self.pad_token_id, left=True)
            batch["prompt_attention_mask"] = _pad([[1] * len(s) for s in prompts], 0, left=True)
        if "teacher_top_ids" in keys:
            length = batch["input_ids"].shape[1]
            batch["teacher_top_ids"] = _pad_topk([f["teacher_top_ids"] for f in features], length, -1, torch.long)
            # a padded slot is no alternative: -inf (log-prob 0 would be a certain token to ULD, which reads no ids)
            batch["teacher_top_logprobs"] = _pad_topk([f["teacher_top_logprobs"] for f in features], length,
                                                      float("-inf"), torch.float32)
        if "document_index" in keys:  # which training document each example continues (a served teacher's prompt)
            batch["document_index"] = torch.tensor([f["document_index"] for f in features], dtype=torch.long)
        if "teacher_aligned" in keys:
            batch["teacher_aligned"] = _pad([f["teacher_aligned"] for f in features], 0)
        if "teacher_input_ids" in keys:  # the teacher's own tokens (any id pads: the mask hides it)
            t_ids = [f["teacher_input_ids"] for f in features]
            batch["teacher_input_ids"] = _pad(t_ids, 0)
            batch["teacher_attention_mask"] = _pad([[1] * len(s) for s in t_ids], 0)
            batch["teacher_rows"] = _pad([f["teacher_rows"] for f in features], -1)
        return batch
