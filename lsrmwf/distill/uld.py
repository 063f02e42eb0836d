"""The KD loss across tokenizers on text-aligned positions (``--kd_alignment text``): ULD, an optional KL over the
tokens both vocabularies share, and CE on the student's own tokens.

**ULD** (Universal Logit Distillation, Boizard et al. 2024, arXiv 2402.12030) compares the two distributions
without matching their tokens: the L1 distance between the sorted probability vectors, the shorter zero-padded.
A served teacher gives only its top K probabilities ``p_(1) >= ... >= p_(K)``, so at an aligned position

    ULD = sum_{k<=K} |q_(k) - p_(k)| + |(1 - sum_{k<=K} q_(k)) - (1 - sum_{k<=K} p_(k))|

with ``q_(k)`` the student's K largest probabilities (softmax over its whole vocabulary). The missing tail is one
term: the difference of the two tails' masses. That is a lower bound of the exact tail distance
``sum_{k>K} |q_(k) - p_(k)|`` (equal when every tail difference has one sign, e.g. when the teacher's K covers
its vocabulary, which is the exact zero-padded ULD). Where the server gave fewer than K alternatives, K is that count.
ULD is taken at temperature 1 (the served values exist at T=1, and the paper uses the plain distributions); it is
not T^2-scaled.

**Shared-vocabulary KL** (``--kd_shared_vocab_weight w``): at the same positions, the teacher's alternatives whose
bytes are also a student token (the exact string match of the two vocabularies) are compared with ``--kd_loss``'s
divergence as sparse top-K KD does (:func:`lsrmwf.distill.sparse_kd.sparse_kd_loss`: those tokens plus one tail
class holding everything else on both sides, temperature T, T^2-scaled). Approximate: the teacher's probability
of a string is compared with the student's probability of the same string as one token, while either model may
also spell it with several tokens.

The loss is ``alpha * CE + (1 - alpha) * (ULD + w * T^2 * D_shared)``, CE the mean over label tokens, ULD the mean
over the label tokens that have a teacher row (:mod:`lsrmwf.distill.text_alignment`) and ``D_shared`` the mean over
those of them that have at least one shared alternative.
"""

from typing import Optional, Tuple

import torch

from .sparse_kd import sparse_kd_loss


def uld_distance(log_q: torch.Tensor, teacher_logprobs: torch.Tensor) -> torch.Tensor:
    """Per row: ULD between the student's log-probs ``log_q [N, V]`` and the teacher's top-K log-probs
    ``[N, K]`` (any order; ``-inf`` = no alternative there), with the tail term of this module's docstring."""
    t = teacher_logprobs.float()
    valid = torch.isfinite(t)
    p = torch.where(valid, t.exp(), torch.zeros_like(t)).sort(-1, descending=True).values
    n_valid = valid.sum(-1, keepdim=True)
    k = min(p.shape[-1], log_q.shape[-1])
    q = log_q.topk(k, dim=-1).values.exp()
    if k < p.shape[-1]:  # a teacher row longer than the student's vocabulary: the student's side is zero-padded
        q = torch.nn.functional.pad(q, (0, p.shape[-1] - k))
    keep = torch.arange(p.shape[-1], device=p.device).unsqueeze(0) < n_valid
    q, p = torch.where(keep, q, torch.zeros_like(q)), torch.where(keep, p, torch.zeros_like(p))
    q_tail = (1.0 - q.sum(-1)).clamp(min=0.0)
    p_tail = (1.0 - p.sum(-1)).clamp(min=0.0)
    return (q - p).abs().sum(-1) + (q_tail - p_tail).abs()


def uld_kd_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    aligned: torch.Tensor,
    top_logprobs: torch.Tensor,
    alpha: float,
    temperature: float = 1.0,
    shared_ids: Optional[torch.Tensor] = None,
    shared_weight: float = 0.0,
    ignore_index: int = -100,
    loss_type: str = "forward_kl",
    beta: float = 0.0,
    vocab_size: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * CE + (1 - alpha) * (ULD + w * T^2 * D_shared)``; returns ``(loss, ce, uld, d_shared)``.

    ``student_logits [B, L, V]`` predict ``labels [B, L]`` (position i's logits predict ``labels[:, i]``);
    ``aligned [B, L]`` marks the labels with a teacher row, ``top_logprobs [B, L, K]`` holds it; ``shared_ids
    [B, L, K]`` names the student id of each alternative whose string both vocabularies share (``-1``: none).
    ``vocab_size``: the student's distribution over its first ``vocab_size`` ids only.
    """
    if vocab_size is not None:
        student_logits = student_logits[..., :vocab_size]
    mask = labels.ne(ignore_index)
    log_q = torch.log_softmax(student_logits[mask].float(), -1)  # one pass serves CE and ULD
    ce = torch.nn.functional.nll_loss(log_q, labels[mask]) if log_q.shape[0] else log_q.sum() * 0.0
    has = aligned[mask].bool()
    zero = student_logits.sum() * 0.0
    uld = uld_distance(log_q[has], top_logprobs[mask][has]).mean() if bool(has.any()) else zero
    shared = zero
    if shared_weight > 0 and shared_ids is not None:
        on = mask & aligned.bool() & shared_ids.ge(0).any(-1)
        if bool(on.any()):
            _, _, shared = sparse_kd_loss(student_logits[on], labels[on], shared_ids[on], top_logprobs[on], 0.0,
                                          temperature, ignore_index, loss_type, beta)
    kd = uld + shared_weight * temperature**2 * shared
    return alpha * ce + (1.0 - alpha) * kd, ce, uld, shared


def teacher_top_k_rows(teacher_logits: torch.Tensor, rows: torch.Tensor, k: int, vocab_size: Optional[int] = None,
                       shared_map: Optional[torch.Tensor] = None) -> dict:
    """A white-box teacher's rows at text-aligned positions, shaped as a served teacher's
    (``teacher_aligned``, ``teacher_top_logprobs``, ``teacher_top_ids``): ``teacher_logits [B, Lt, Vt]`` on the
    teacher's own tokens, ``rows [B, L]`` the teacher position per student position (``-1``: none); the K most
    probable teacher tokens' log-probs (softmax over the first ``vocab_size`` ids) and, with ``shared_map [Vt]``
    (teacher id -> student id with the same bytes, ``-1``), their student ids."""
    sel = rows.ge(0)
    b, pos = sel.nonzero(as_tuple=True)
    dev = teacher_logits.device  # a teacher split over devices answers on its last one
    logits = teacher_logits[b.to(dev), rows[sel].to(dev)].float()
    if vocab_size is not None:
        logits = logits[..., :vocab_size]
    k = min(k, logits.shape[-1])
    top = torch.log_softmax(logits, -1).topk(k, dim=-1)
    shape = (*rows.shape, k)
    top_lp = torch.zeros(shape, dtype=torch.float32, device=rows.device)
    top_ids = torch.full(shape, -1, dtype=torch.long, device=rows.device)
    top_lp[b, pos] = top.values.to(rows.device)
    if shared_map is not None:
        mapped = shared_map.to(rows.device)[top.indices.to(rows.device)]
        # two teacher tokens with the same bytes (e.g. 'T' and the byte token <0x54>) map to one student id:
        # it counts once, as on the served path
        same = mapped.unsqueeze(-1).eq(mapped.unsqueeze(-2)) & mapped.ge(0).unsqueeze(-1)
        earlier = torch.ones(k, k, dtype=torch.bool, device=rows.device).tril(-1)
        top_ids[b, pos] = mapped.masked_fill((same & earlier).any(-1), -1)
    return {"teacher_aligned": sel.long(), "teacher_top_logprobs": top_lp, "teacher_top_ids": top_ids}
