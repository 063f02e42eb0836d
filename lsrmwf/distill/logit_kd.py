"""Task-specific logit KD: ``alpha * CE + (1 - alpha) * T^2 * D(teacher_T, student_T)`` over the summary tokens,
with a frozen white-box teacher (:func:`kd_loss`, :func:`load_teacher`) and one of four divergences ``D``
(:data:`KD_LOSSES`, :func:`divergence`), ``p`` the teacher's and ``q`` the student's distribution at temperature T:

* ``forward_kl``: ``KL(p || q)``, the study's KD and the default (Hinton's T^2 scaling is the package's choice);
* ``reverse_kl``: ``KL(q || p)``, MiniLLM's objective;
* ``jsd``: generalised Jensen-Shannon, ``beta * KL(p || m) + (1 - beta) * KL(q || m)`` with
  ``m = beta * p + (1 - beta) * q`` (GKD's; beta in (0, 1));
* ``skew_kl``: ``KL(p || beta * p + (1 - beta) * q)`` (DistiLLM's skew KL with alpha = beta; beta in [0, 1),
  0 is forward KL).

Every divergence is scaled by T^2 like forward KL.
"""

import contextlib
import logging
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..io import InputError

logger = logging.getLogger(__name__)

BART_MODEL_TYPES = ("bart", "lsrmwf")
KD_LOSSES = ("forward_kl", "reverse_kl", "jsd", "skew_kl")
# --kd_beta's meaning, range and default per loss: (what it is, lowest, highest, default, range as printed)
KD_BETA = {"jsd": ("JSD's beta", 0.0, 1.0, 0.5, "(0, 1)"), "skew_kl": ("skew KL's alpha", 0.0, 1.0, 0.1, "[0, 1)")}


def check_kd_loss(kd_loss: str, beta: Optional[float]) -> float:
    """``beta`` for ``kd_loss`` (its default when None); an :class:`InputError` for an unknown loss or a beta
    outside the loss's range, or given to a loss without one."""
    if kd_loss not in KD_LOSSES:
        raise InputError(f"--kd_loss must be one of {list(KD_LOSSES)}, got {kd_loss!r}")
    if kd_loss not in KD_BETA:
        if beta is not None:
            raise InputError(f"--kd_beta {beta}: {kd_loss} takes no beta (it sets JSD's beta or skew KL's alpha)")
        return 0.0
    what, low, high, default, shown = KD_BETA[kd_loss]
    if beta is None:
        return default
    ok = low < beta < high if kd_loss == "jsd" else low <= beta < high
    if not ok:
        raise InputError(f"--kd_beta {beta}: {what} must lie in {shown} for --kd_loss {kd_loss}")
    return float(beta)


def _kl(log_a: torch.Tensor, log_b: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """``sum_c a_c (log a_c - log b_c)`` over the classes where ``on`` and ``a_c > 0``, per row."""
    on = on & torch.isfinite(log_a)
    la, lb = torch.where(on, log_a, 0.0), torch.where(on, log_b, 0.0)
    return torch.where(on, la.exp() * (la - lb), 0.0).sum(-1)


def divergence(log_p: torch.Tensor, log_q: torch.Tensor, kind: str = "forward_kl", beta: float = 0.0,
               present: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``D(p, q)`` per row of normalised log-probs ``[N, C]`` (teacher ``p``, student ``q``). ``present`` marks
    the classes that exist (default all); elsewhere both sides are ignored. ``-inf`` (a zero probability) is
    allowed on the teacher's side; the student's must be finite where the divergence reads it."""
    if kind not in KD_LOSSES:
        raise ValueError(f"unknown KD loss {kind!r}; one of {list(KD_LOSSES)}")
    if present is None and bool(torch.isfinite(log_p).all()):  # dense and finite (white-box): no masking needed
        def kl(log_a, log_b):
            return (log_a.exp() * (log_a - log_b)).sum(-1)
    else:
        on = torch.ones_like(log_p, dtype=torch.bool) if present is None else present
        log_p, log_q = torch.where(on, log_p, 0.0), torch.where(on, log_q, 0.0)

        def kl(log_a, log_b):
            return _kl(log_a, log_b, on)
    if kind == "forward_kl":
        return kl(log_p, log_q)
    if kind == "reverse_kl":
        return kl(log_q, log_p)
    if kind == "skew_kl" and beta == 0:
        return kl(log_p, log_q)
    log_m = torch.logaddexp(log_p + math.log(beta), log_q + math.log1p(-beta))
    if kind == "jsd":
        return beta * kl(log_p, log_m) + (1.0 - beta) * kl(log_q, log_m)
    return kl(log_p, log_m)  # skew_kl


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    ce: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
    loss_type: str = "forward_kl",
    beta: float = 0.0,
    vocab_size: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * CE + (1 - alpha) * T^2 * D(softmax(t/T), softmax(s/T))``, mean over label tokens.

    ``student_logits``/``teacher_logits``: ``[B, L, V]`` on the same decoder inputs; ``labels``:
    ``[B, L]`` with ``ignore_index`` at padding, which is left out of both terms. ``vocab_size``: compare (and
    take CE) over the first ``vocab_size`` ids only, the shared tokenizer's, when the two embeddings are
    padded to different sizes. ``ce`` may be passed when the model already computed it (e.g. with label
    smoothing). Returns ``(loss, ce, divergence)``; the teacher side carries no gradient.
    """
    if vocab_size is not None:
        student_logits, teacher_logits = student_logits[..., :vocab_size], teacher_logits[..., :vocab_size]
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ")
    mask = labels.ne(ignore_index)
    s = student_logits[mask].float()
    t = teacher_logits[mask].detach().float()
    if ce is None:
        ce = F.cross_entropy(s, labels[mask])
    if s.shape[0] == 0:
        kl = s.sum() * 0.0
    elif loss_type == "forward_kl":
        kl = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.log_softmax(t / temperature, dim=-1),
                      log_target=True, reduction="batchmean")
    else:
        kl = divergence(F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1), loss_type, beta).mean()
    loss = alpha * ce + (1.0 - alpha) * temperature**2 * kl
    return loss, ce, kl


@contextlib.contextmanager
def _outside_zero3():
    """Load a model normally even when a ZeRO-3 training config is active.

    transformers partitions every model created while a ZeRO-3 ``TrainingArguments`` is alive
    (``zero.Init``); the teacher is not a trainee and must stay whole on its device.
    """
    from transformers.integrations import deepspeed as hf_ds

    ref = hf_ds._hf_deepspeed_config_weak_ref
    hf_ds.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_ds._hf_deepspeed_config_weak_ref = ref


def check_bart_checkpoint(path: str, config, what: str = "--model_name_or_path") -> None:
    if config.model_type not in BART_MODEL_TYPES:
        raise InputError(
            f"{what} {path}: model_type {config.model_type!r} is not BART; LSR-MWF, --baseline and the KD student/"
            f"teacher need a BART-family seq2seq checkpoint (model_type 'bart' or 'lsrmwf', e.g. facebook/bart-large)"
        )


def load_teacher(path: str, student, tokenizer=None, device=None, cache_dir: Optional[str] = None,
                 revision: str = "main"):
    """Load a frozen KD teacher (eval mode, no gradient) and check it shares the student's vocabulary.

    The teacher must be a BART-family checkpoint whose vocabulary size, special ids and (when it ships
    a tokenizer) token-to-id mapping equal the student's; anything else is refused here, before
    training, with both sides named.
    """
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer


    config = AutoConfig.from_pretrained(path, cache_dir=cache_dir, revision=revision)
    check_bart_checkpoint(path, config, "--teacher_model_name_or_path")
    sc = student.config
    if config.vocab_size != sc.vocab_size:
        raise InputError(
            f"--teacher_model_name_or_path {path}: vocabulary size {config.vocab_size} differs from the student's "
            f"{sc.vocab_size}; logit KD needs teacher and student to share one tokenizer (use the teacher's tokenizer "
            f"for the student: --tokenizer_name {path})"
        )
    for key in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
        if getattr(config, key, None) != getattr(sc, key, None):
            raise InputError(
                f"--teacher_model_name_or_path {path}: {key} is {getattr(config, key, None)} in the teacher but "
                f"{getattr(sc, key, None)} in the student; they must share one tokenizer"
            )
    if tokenizer is not None:
        try:
            teacher_tok = AutoTokenizer.from_pretrained(path, cache_dir=cache_dir, revision=revision)
        except (OSError, ValueError):
            teacher_tok = None
            logger.info("teacher %s ships no tokenizer; checked vocabulary size and special ids only", path)
        if teacher_tok is not None and teacher_tok.get_vocab() != tokenizer.get_vocab():
            tv, sv = teacher_tok.get_vocab(), tokenizer.get_vocab()
            diff = next((t for t in sorted(set(tv) | set(sv)) if tv.get(t) != sv.get(t)), None)
            raise InputError(
                f"--teacher_model_name_or_path {path}: the teacher's tokenizer differs from the student's (token "
                f"{diff!r}: id {tv.get(diff)} in the teacher, {sv.get(diff)} in the student); logit KD compares "
                f"distributions over the same vocabulary (use --tokenizer_name {path} for the student)"
            )
    with _outside_zero3():
        teacher = AutoModelForSeq2SeqLM.from_pretrained(path, cache_dir=cache_dir, revision=revision)
    teacher.eval()
    teacher.requires_grad_(False)
    if device is not None:
        teacher.to(device)
    return teacher


# ----------------------------------------------------------------------------------------------
# Causal (decoder-only) teachers
# ----------------------------------------------------------------------------------------------

TEACHER_DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_same_tokenizer(student_tok, teacher_tok, sample_texts, what: str) -> None:
    """Refuse a teacher whose tokenizer is not the student's: size, special ids, then token by token on samples."""
    if len(teacher_tok) != len(student_tok):
        raise InputError(f"{what}: the teacher's tokenizer has {len(teacher_tok)} tokens, the student's "
                         f"{len(student_tok)}; logit KD needs one shared tokenizer (use --tokenizer_name "
                         f"{what.split()[-1]} for the student)")
    for key in ("eos_token_id", "bos_token_id"):
        if getattr(teacher_tok, key) != getattr(student_tok, key):
            raise InputError(f"{what}: {key} is {getattr(teacher_tok, key)} for the teacher, "
                             f"{getattr(student_tok, key)} for the student; they must share one tokenizer")
    for text in sample_texts:
        a = student_tok(text, add_special_tokens=False)["input_ids"]
        b = teacher_tok(text, add_special_tokens=False)["input_ids"]
        if a != b:
            i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            raise InputError(
                f"{what}: the teacher tokenizes the training text differently from the student (text "
                f"{text[:60]!r}..., token {i}: student {student_tok.convert_ids_to_tokens(a[i:i + 1])} = id "
                f"{a[i:i + 1]}, teacher {teacher_tok.convert_ids_to_tokens(b[i:i + 1])} = id {b[i:i + 1]}); logit KD "
                "compares distributions over one shared vocabulary")


def load_causal_teacher(path: str, student, tokenizer, sample_texts=(), dtype: str = "auto",
                        device_map: Optional[str] = None, device=None, cache_dir: Optional[str] = None,
                        revision: str = "main",
                        same_tokenizer: bool = True):
    """A frozen decoder-only KD teacher sharing the student's tokenizer (checked on ``sample_texts``).

    Embedding sizes may differ (padded vocabularies, e.g. Qwen2.5-7B's 152,064 rows and 0.5B's 151,936 over one
    tokenizer): KD then compares the distributions over the tokenizer's ids, which the log says. Without a
    teacher tokenizer to compare, the embedding sizes must match.

    ``dtype``: ``auto`` (the checkpoint's), ``float32``, ``bfloat16`` or ``float16``. ``device_map``
    (e.g. ``auto``) splits a teacher too large for one device over all visible devices (accelerate);
    without it the teacher goes whole to ``device``. ``same_tokenizer=False`` (``--kd_alignment text``): a teacher
    of another tokenizer, whose tokenizer is not compared (it must ship one).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    what = f"--teacher_model_name_or_path {path}"
    config = AutoConfig.from_pretrained(path, cache_dir=cache_dir, revision=revision)
    if getattr(config, "is_encoder_decoder", False):
        raise InputError(f"{what}: a seq2seq ({config.model_type}) teacher cannot teach a decoder-only student; "
                         f"use a causal LM teacher")
    t_vocab, s_vocab = getattr(config, "vocab_size", None), student.config.vocab_size
    try:
        teacher_tok = AutoTokenizer.from_pretrained(path, cache_dir=cache_dir, revision=revision)
    except (OSError, ValueError):
        teacher_tok = None
    if not same_tokenizer:
        if teacher_tok is None:
            raise InputError(f"{what}: --kd_alignment text needs the teacher's tokenizer; the checkpoint ships none")
    elif teacher_tok is None:
        if t_vocab != s_vocab:  # nothing to compare but the sizes
            raise InputError(f"{what}: vocabulary size {t_vocab} differs from the student's {s_vocab} and the teacher "
                             f"ships no tokenizer to show they share one; logit KD needs the same tokenizer (or use a "
                             f"served teacher: --teacher_logprobs_file)")
        logger.warning("teacher %s ships no tokenizer; checked the vocabulary size only", path)
    else:
        check_same_tokenizer(tokenizer, teacher_tok, list(sample_texts), what)
    n = len(tokenizer if same_tokenizer else teacher_tok)
    if t_vocab is None or t_vocab < n:
        raise InputError(f"{what}: its embedding has {t_vocab} rows, fewer than the tokenizer's {n} tokens")
    if t_vocab != s_vocab and same_tokenizer:
        logger.info("teacher embedding %d rows, student %d, one tokenizer of %d tokens: KD compares the two "
                    "distributions over the tokenizer's %d ids (the padded rows are left out on both sides)",
                    t_vocab, s_vocab, n, n)
    if dtype not in TEACHER_DTYPES:
        raise InputError(f"--teacher_dtype must be one of {list(TEACHER_DTYPES)}, got {dtype!r}")
    kwargs = dict(cache_dir=cache_dir, revision=revision, dtype=dtype if dtype == "auto" else getattr(torch, dtype))
    if device_map:
        kwargs["device_map"] = device_map
    with _outside_zero3():
        teacher = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    teacher.eval()
    teacher.requires_grad_(False)
    if device is not None and not device_map:
        teacher.to(device)
    return teacher
