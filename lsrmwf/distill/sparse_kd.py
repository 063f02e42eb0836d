"""Sparse top-K logit KD from stored teacher log-probabilities (a served teacher, no weights needed).

A served teacher reports, at each generated position, the log-probabilities ``log p_1..log p_K``
of its K most probable tokens (at temperature 1). The rest of its distribution is unknown, so
:func:`sparse_kd_loss` compares distributions over K+1 classes: the K teacher tokens and one
*tail* bucket holding everything else, ``p_tail = 1 - sum_k p_k``. The student's K+1 classes are
its own probabilities of the same K tokens (softmax over its whole vocabulary) and the rest of its
mass, ``1 - sum_k q_k`` (in float32; one softmax pass serves CE and KD, so the sparse step costs
about what a CE step does).

Temperature: the teacher's values exist only at T=1, so T is applied to the (K+1)-class
distributions of both sides, ``q_T(c) ∝ q(c)^(1/T)`` (log-probs divided by T and renormalised over
the K+1 classes), and the loss is ``alpha * CE + (1 - alpha) * T^2 * D(teacher_T, student_T)`` with ``D`` one of
:data:`lsrmwf.distill.logit_kd.KD_LOSSES` computed over those K+1 classes, the tail being one class on both
sides. A teacher whose K values already sum to 1 (fp16 rounding) has no tail class (it holds 0 mass); the
student's tail still counts in its normalisation for forward KL, JSD and skew KL (they push the student's tail
mass towards 0), while reverse KL, which reads log p where the student has mass, compares over the K tokens
alone there (the student renormalised over them). When K covers the whole vocabulary neither side has a tail
and every loss equals its white-box value. At T=1 forward KL is the exact KL between the two bucketed
distributions; for T>1 it is the bucketed analogue of Hinton's softened targets (the tail is softened as one
class, not token by token). Every minimum is the student matching the teacher's K probabilities and tail mass.

Tokens: a server names its tokens by id (llama.cpp, vLLM) and/or by their bytes (the OpenAI API).
:func:`map_teacher_tokens` turns them into student ids: ids are used as they are after checking,
token by token, that each generated token's bytes are the student's bytes for that id; bytes
alone are looked up in the student's vocabulary. Any mismatch is an :class:`InputError` with an example.
"""

import re
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ..io import InputError
from .logit_kd import divergence


def sparse_kd_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    top_ids: torch.Tensor,
    top_logprobs: torch.Tensor,
    alpha: float,
    temperature: float,
    ignore_index: int = -100,
    loss_type: str = "forward_kl",
    beta: float = 0.0,
    vocab_size: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * CE + (1 - alpha) * T^2 * D`` over the K teacher tokens + tail; returns ``(loss, ce, D)``.

    ``student_logits [B, L, V]`` predict ``labels [B, L]`` (already aligned: position i's logits
    predict ``labels[:, i]``); ``top_ids [B, L, K]`` (``-1`` = no teacher token there) and
    ``top_logprobs [B, L, K]`` are the teacher's, aligned the same way. CE is the mean over label
    tokens; D (``loss_type``, ``beta``: :func:`lsrmwf.distill.logit_kd.divergence`) the mean over label tokens
    that have teacher data. ``vocab_size``: the student's distribution over its first ``vocab_size`` ids only
    (the tokenizer's, when its embedding is padded beyond them).
    """
    if vocab_size is not None:
        student_logits = student_logits[..., :vocab_size]
    mask = labels.ne(ignore_index)
    log_q = torch.log_softmax(student_logits[mask].float(), -1)  # one pass over the vocabulary serves CE and KD
    ce = torch.nn.functional.nll_loss(log_q, labels[mask]) if log_q.shape[0] else log_q.sum() * 0.0
    ids = top_ids[mask]
    has = ids.ge(0).any(-1)
    log_q, ids, t_lp = log_q[has], ids[has], top_logprobs[mask][has].float()
    if log_q.shape[0] == 0:
        kl = student_logits.sum() * 0.0
        return alpha * ce + (1.0 - alpha) * temperature**2 * kl, ce, kl
    if int(ids.max()) >= log_q.shape[-1]:
        raise ValueError(f"teacher token id {int(ids.max())} is outside the student's vocabulary of {log_q.shape[-1]}")
    valid = ids.ge(0)  # ids of one position are distinct (map_teacher_tokens drops repeats)
    s_top = log_q.gather(-1, ids.clamp(min=0))  # [N, K] student log-probs of the teacher's tokens
    s_top_mass = torch.where(valid, s_top.exp(), torch.zeros_like(s_top)).sum(-1, keepdim=True)
    taken_all = valid.sum(-1, keepdim=True).ge(log_q.shape[-1])
    # the rest of the student's mass; none when K covers the vocabulary
    s_tail = torch.log((1.0 - s_top_mass).clamp(min=1e-30)).masked_fill(taken_all, float("-inf"))
    t_lp = t_lp.masked_fill(~valid, float("-inf"))
    tail_mass = 1.0 - t_lp.exp().sum(-1, keepdim=True)
    # fp16 rounding can make the K values sum to 1 or a hair above: no tail then (nor when K covers the vocabulary)
    has_tail = tail_mass.gt(0) & ~taken_all
    neg = torch.tensor(float("-inf"), device=log_q.device)
    t_tail = torch.where(has_tail, tail_mass.clamp(min=1e-30).log(), neg)
    # the student's tail is a class wherever it has mass; reverse KL reads log p there, so where the teacher
    # leaves no tail reverse KL compares over the K tokens alone (the student renormalised over them)
    s_has_tail = has_tail if loss_type == "reverse_kl" else ~taken_all
    t_cls = torch.cat([t_lp, t_tail], -1) / temperature
    s_cls = torch.cat([torch.where(valid, s_top, neg), torch.where(s_has_tail, s_tail, neg)], -1) / temperature
    t_cls = torch.log_softmax(t_cls, -1)
    s_cls = torch.log_softmax(s_cls, -1)
    present = torch.cat([valid, s_has_tail | has_tail], -1)
    kl = divergence(t_cls, s_cls, loss_type, beta, present).mean()
    loss = alpha * ce + (1.0 - alpha) * temperature**2 * kl
    return loss, ce, kl


# ----------------------------------------------------------------------------------------------
# Served token -> student id
# ----------------------------------------------------------------------------------------------

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _byte_level_decoder():
    """GPT-2's byte <-> printable-character table, inverted (character -> byte)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        return False
    import json

    decoder = json.loads(backend.to_str()).get("decoder") or {}
    kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders", []) or []}
    return "ByteLevel" in kinds


def token_bytes_table(tokenizer) -> List[Optional[bytes]]:
    """The bytes each student id stands for (``None`` for special tokens), byte-level BPE or SentencePiece."""
    vocab_size = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
    pieces = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    special = set(tokenizer.all_special_ids)
    byte_level = _is_byte_level(tokenizer)
    inverse = _byte_level_decoder() if byte_level else None
    table: List[Optional[bytes]] = []
    for i, piece in enumerate(pieces):
        if piece is None or i in special:
            table.append(None)
        elif byte_level:
            try:
                table.append(bytes(inverse[c] for c in piece))
            except KeyError:  # an added (non-byte-level) token
                table.append(piece.encode("utf-8"))
        else:
            m = _BYTE_TOKEN.match(piece)
            table.append(bytes([int(m.group(1), 16)]) if m else piece.replace("▁", " ").encode("utf-8"))
    return table


def special_token_bytes(tokenizer) -> Dict[bytes, int]:
    """The special tokens by their text (``b"</s>"`` -> eos id): a server that names its tokens by text names
    them so among the alternatives."""
    return {str(t).encode("utf-8"): i for t, i in zip(tokenizer.all_special_tokens, tokenizer.all_special_ids)}


def map_teacher_tokens(tokens, table: List[Optional[bytes]], where: str, what: str = "the teacher's summary",
                       specials: Optional[Dict[bytes, int]] = None) -> Tuple[List[int], np.ndarray, np.ndarray]:
    """``(labels, top_ids, top_logprobs)`` in student ids for one teacher record (``where`` names it and ``what``
    its tokens, the teacher's summary or the reference it scored, in errors). Tokens named by bytes alone are
    looked up in ``table``, then among ``specials`` (:func:`special_token_bytes`)."""
    n = len(tokens)
    if tokens.has_ids:
        for i in range(n):
            tid = int(tokens.token_ids[i])
            mine = table[tid] if tid < len(table) else None
            if mine != tokens.token_bytes[i]:
                raise InputError(
                    f"{where}: token {i} of {what} is id {tid} = {tokens.token_bytes[i]!r} in the served "
                    f"model, but the student's id {tid} is {mine!r}; the served teacher does not share the "
                    "student's tokenizer. Train a student with the teacher's tokenizer (--tokenizer_name), collect "
                    "from a server that reports tokens by their bytes only, or align by text (--kd_alignment text)"
                )
        top = tokens.top_ids.astype(np.int64)
        if top.size and int(top.max()) >= len(table):
            raise InputError(f"{where}: teacher token id {int(top.max())} is outside the student's vocabulary "
                             f"({len(table)} ids)")
        return [int(t) for t in tokens.token_ids], _drop_repeats(top), tokens.top_logprobs.astype(np.float32)
    lookup = {}
    for i, b in enumerate(table):
        if b is not None and b not in lookup:
            lookup[b] = i
    for b, i in (specials or {}).items():
        lookup.setdefault(b, i)

    def find(b: bytes, what: str) -> int:
        if b not in lookup:
            raise InputError(f"{where}: {what} {b!r} is not a token of the student's vocabulary; the served teacher's "
                             f"tokenizer differs from the student's (e.g. a different model family)")
        return lookup[b]

    labels = [find(b, f"token {i} of {what}") for i, b in enumerate(tokens.token_bytes)]
    top = np.full(tokens.top_ids.shape, -1, dtype=np.int64)
    if tokens.top_bytes is None:
        raise InputError(f"{where}: the record has neither token ids nor the alternatives' bytes")
    for i, row in enumerate(tokens.top_bytes):
        for k, b in enumerate(row):
            if b:
                top[i, k] = find(b, f"alternative {k} at token {i}")
    return labels, _drop_repeats(top), tokens.top_logprobs.astype(np.float32)


def _drop_repeats(top: np.ndarray) -> np.ndarray:
    """A student id listed twice at one position (two served tokens with the same bytes) counts once."""
    top = top.copy()
    for i in range(top.shape[0]):
        seen = set()
        for k in range(top.shape[1]):
            if top[i, k] in seen:
                top[i, k] = -1
            elif top[i, k] >= 0:
                seen.add(int(top[i, k]))
    return top
