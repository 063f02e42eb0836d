"""Batching for LSR-MWF: the document, the labels and each view's rationale input or cached target."""

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from ..io.schema import VIEWS


def pad_sequences(seqs: List[List[int]], value: int, multiple: Optional[int]) -> torch.Tensor:
    length = max((len(s) for s in seqs), default=0)
    length = max(length, 1)  # a view missing from the whole batch still gets a [B, 1] all-masked tensor
    if multiple:
        length = -(-length // multiple) * multiple
    out = torch.full((len(seqs), length), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


@dataclass
class LsrMwfCollator:
    """Right-pads every sequence field of a batch of tokenized examples.

    Fields (all optional except ``input_ids``): ``input_ids`` / ``attention_mask`` (padded with the
    tokenizer's pad id / 0), ``labels`` (padded with -100, ignored by the loss), for each view ``v``
    either ``{v}_input_ids`` / ``{v}_attention_mask`` (an empty list = no rationale: an all-zero mask,
    which the model masks out of that view's loss) or ``{v}_target`` (a pre-encoded ``[d_model]``
    vector; all zeros = no rationale). Any other field is refused so that a typo cannot silently
    drop a model input.
    """

    pad_token_id: int
    pad_to_multiple_of: Optional[int] = None
    label_pad_token_id: int = -100

    def __call__(self, features: List[Dict]) -> Dict[str, torch.Tensor]:
        if not features:
            raise ValueError("empty batch")
        keys = set(features[0])
        for k, f in enumerate(features):
            if set(f) != keys:
                raise ValueError(f"batch example {k} has fields {sorted(f)}, example 0 has {sorted(keys)}")
        known = {"input_ids", "attention_mask", "labels"}
        for v in VIEWS:
            known |= {f"{v}_input_ids", f"{v}_attention_mask", f"{v}_target"}
        unknown = keys - known
        if unknown:
            raise ValueError(f"unexpected example fields {sorted(unknown)}; the collator knows {sorted(known)}")

        m = self.pad_to_multiple_of
        batch = {"input_ids": pad_sequences([f["input_ids"] for f in features], self.pad_token_id, m)}
        if "attention_mask" in keys:
            batch["attention_mask"] = pad_sequences([f["attention_mask"] for f in features], 0, m)
        else:
            batch["attention_mask"] = (batch["input_ids"] != self.pad_token_id).long()
        if "labels" in keys:
            batch["labels"] = pad_sequences([f["labels"] for f in features], self.label_pad_token_id, m)
        for v in VIEWS:
            if f"{v}_input_ids" in keys:
                ids = [f[f"{v}_input_ids"] or [] for f in features]
                batch[f"{v}_input_ids"] = pad_sequences(ids, self.pad_token_id, m)
                if f"{v}_attention_mask" in keys:
                    batch[f"{v}_attention_mask"] = pad_sequences(
                        [f[f"{v}_attention_mask"] or [] for f in features], 0, m)
                else:
                    batch[f"{v}_attention_mask"] = pad_sequences([[1] * len(s) for s in ids], 0, m)
            if f"{v}_target" in keys:
                batch[f"{v}_target"] = torch.stack([torch.as_tensor(f[f"{v}_target"], dtype=torch.float32)
                                                    for f in features])
        return batch


def view_present(batch: Dict[str, torch.Tensor], view: str) -> torch.Tensor:
    """Boolean [B]: which examples of ``batch`` carry a rationale for ``view``."""
    if f"{view}_target" in batch:
        return batch[f"{view}_target"].ne(0).any(dim=-1)
    if f"{view}_attention_mask" in batch:
        return batch[f"{view}_attention_mask"].ne(0).any(dim=-1)
    return torch.zeros(batch["input_ids"].shape[0], dtype=torch.bool, device=batch["input_ids"].device)
