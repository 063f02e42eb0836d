"""Multiple-choice candidates scored against one pass over their shared prompt (``--mc_scoring shared_prefix``).

The full path (:func:`lsrmwf.evaluation.multiple_choice.score_sequences`) runs every (prompt, candidate)
sequence on its own, so a prompt of P tokens with C candidates costs C passes over P tokens. Here the
candidates of one example share the prompt's key/value cache:

1. the example's sequences are the full path's (:func:`~lsrmwf.evaluation.multiple_choice.encode_pair`:
   same tokenization at the boundary, same left truncation); their shared prefix is the longest common
   prefix of the model inputs, cut so that every position whose logits score a candidate token lies
   after it (a BPE merge across the boundary, or a truncation that differs between candidates, only
   shortens the shared part);
2. one forward over the prefixes of ``batch_size`` examples (left-padded, with explicit position ids,
   so every real token sits at the position it has in the full path) fills the cache;
3. the cache is expanded over the candidates (one row per candidate) and one forward over the
   candidates' remaining tokens (right-padded; positions continue after their own prefix) gives the
   logits of every candidate token.

Padding never enters a real token's attention (attention mask), so the log-probabilities equal the
full path's up to floating-point summation order (the equality test: within 1e-4 per candidate in
float32). Models whose ``forward`` takes no ``past_key_values``/``position_ids`` cannot use this path;
``--mc_scoring full`` keeps the full path for them.
"""

import inspect
from typing import List, Sequence, Tuple

import torch

Sequences = Sequence[Tuple[List[int], int]]


def _forward_params(model) -> Tuple[str, ...]:
    try:
        return tuple(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return ()


def _cache_arg(model) -> str:
    """The name ``forward`` takes the key/value cache by (``cache`` since transformers 5.2x, else
    ``past_key_values``), or "" when it takes none."""
    params = _forward_params(model)
    return next((name for name in ("cache", "past_key_values") if name in params), "")


def supports_shared_prefix(model) -> bool:
    """Whether ``model.forward`` takes a key/value cache and explicit positions."""
    return bool(_cache_arg(model)) and "position_ids" in _forward_params(model)


def shared_prefix_length(seqs: Sequences) -> int:
    """How many leading model inputs (``ids[:-1]``) all of ``seqs`` share and no candidate token needs the
    logits of: the longest common prefix, at most ``min(n_ctx) - 1``."""
    first = seqs[0][0]
    limit = min(n_ctx for _, n_ctx in seqs) - 1
    n = 0
    while n < limit and all(ids[n] == first[n] for ids, _ in seqs):
        n += 1
    return n


def _prefix_pass(model, prefixes: List[List[int]], device, pad_id: int):
    """Left-padded forward over the prefixes: its cache, the padded prefix mask and the width."""
    width = max(len(p) for p in prefixes)
    ids = torch.full((len(prefixes), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for r, p in enumerate(prefixes):
        if p:
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs = {"logits_to_keep": 1} if "logits_to_keep" in _forward_params(model) else {}
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                use_cache=True, **kwargs)
    cache = getattr(out, "cache", None)
    return (cache if cache is not None else out.past_key_values), mask, width


@torch.inference_mode()
def score_examples_shared_prefix(model, examples: Sequence[Sequences], batch_size: int = 8, device=None,
                                 pad_id: int = 0) -> List[List[float]]:
    """Per example, the sum of log-probabilities of each candidate's ``ids[n_ctx:]`` given ``ids[:n_ctx]``
    (the numbers of :func:`~lsrmwf.evaluation.multiple_choice.score_sequences`), with ``batch_size``
    prompts per prefix forward and all their candidates in one forward after it."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is None:
        device = next(model.parameters()).device
    out: List[List[float]] = [[0.0] * len(seqs) for seqs in examples]
    order = sorted(range(len(examples)), key=lambda e: -len(examples[e][0][0]))  # similar lengths together
    for b in range(0, len(order), batch_size):
        chunk = order[b:b + batch_size]
        shared = [shared_prefix_length(examples[e]) for e in chunk]
        rows = [(k, j) for k, e in enumerate(chunk) for j in range(len(examples[e]))]
        suffixes = [examples[chunk[k]][j][0][shared[k]:-1] for k, j in rows]
        width = max(len(s) for s in suffixes)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, s in enumerate(suffixes):
            ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, :len(s)] = 1
        positions = (torch.tensor([shared[k] for k, _ in rows])[:, None] + torch.arange(width)[None, :]) * mask
        kwargs = {}
        if max(shared) > 0:
            cache, prefix_mask, _ = _prefix_pass(model, [examples[e][0][0][:n] for e, n in zip(chunk, shared)],
                                                 device, pad_id)
            owner = torch.tensor([k for k, _ in rows], device=device)
            cache.batch_select_indices(owner)
            kwargs[_cache_arg(model)] = cache
            mask = torch.cat([prefix_mask[owner.cpu()], mask], dim=1)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                       use_cache=bool(kwargs), **kwargs).logits
        for r, (k, j) in enumerate(rows):
            seq, n_ctx = examples[chunk[k]][j]
            lo, hi = n_ctx - 1 - shared[k], len(seq) - 1 - shared[k]
            target = torch.tensor(seq[n_ctx:], dtype=torch.long, device=logits.device)
            lp = torch.log_softmax(logits[r, lo:hi].float(), dim=-1).gather(-1, target[:, None]).double().sum()
            out[chunk[k]][j] = float(lp)
    return out
