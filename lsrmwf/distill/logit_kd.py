"""Task-specific logit KD: ``alpha * CE + (1 - alpha) * T^2 * KL(teacher_T || student_T)`` over the
summary tokens, with a frozen white-box teacher (:func:`kd_loss`, :func:`load_teacher`).
"""

import contextlib
import logging
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..io import InputError

logger = logging.getLogger(__name__)

BART_MODEL_TYPES = ("bart", "lsrmwf")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    ce: Optional[torch.Tensor] = None,
    ignore_index: int = -100,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * CE + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))``, mean over label tokens.

    ``student_logits``/``teacher_logits``: ``[B, L, V]`` on the same decoder inputs; ``labels``:
    ``[B, L]`` with ``ignore_index`` at padding, which is left out of both terms. ``ce`` may be
    passed when the model already computed it (e.g. with label smoothing). Returns
    ``(loss, ce, kl)``; the teacher side carries no gradient.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ")
    mask = labels.ne(ignore_index)
    s = student_logits[mask].float()
    t = teacher_logits[mask].detach().float()
    if ce is None:
        ce = F.cross_entropy(s, labels[mask])
    if s.shape[0] == 0:
        kl = s.sum() * 0.0
    else:
        kl = F.kl_div(
            F.log_softmax(s / temperature, dim=-1), F.log_softmax(t / temperature, dim=-1), log_target=True, reduction="batchmean"
        )
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


def load_teacher(path: str, student, tokenizer=None, device=None, cache_dir: Optional[str] = None, revision: str = "main"):
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
        raise InputError(f"{what}: the teacher's tokenizer has {len(teacher_tok)} tokens, the student's {len(student_tok)}; "
                         f"logit KD needs one shared tokenizer (use --tokenizer_name {what.split()[-1]} for the student)")
    for key in ("eos_token_id", "bos_token_id"):
        if getattr(teacher_tok, key) != getattr(student_tok, key):
            raise InputError(f"{what}: {key} is {getattr(teacher_tok, key)} for the teacher, {getattr(student_tok, key)} for "
                             f"the student; they must share one tokenizer")
    for text in sample_texts:
        a = student_tok(text, add_special_tokens=False)["input_ids"]
        b = teacher_tok(text, add_special_tokens=False)["input_ids"]
        if a != b:
            i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            raise InputError(
                f"{what}: the teacher tokenizes the training text differently from the student (text {text[:60]!r}..., "
                f"token {i}: student {student_tok.convert_ids_to_tokens(a[i:i + 1])} = id {a[i:i + 1]}, teacher "
                f"{teacher_tok.convert_ids_to_tokens(b[i:i + 1])} = id {b[i:i + 1]}); logit KD compares distributions over "
                f"one shared vocabulary")


def load_causal_teacher(path: str, student, tokenizer, sample_texts=(), dtype: str = "auto", device_map: Optional[str] = None,
                        device=None, cache_dir: Optional[str] = None, revision: str = "main"):
    """A frozen decoder-only KD teacher sharing the student's tokenizer (checked on ``sample_texts``).

    ``dtype``: ``auto`` (the checkpoint's), ``float32``, ``bfloat16`` or ``float16``. ``device_map``
    (e.g. ``auto``) splits a teacher too large for one device over all visible devices (accelerate);
    without it the teacher goes whole to ``device``.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    what = f"--teacher_model_name_or_path {path}"
    config = AutoConfig.from_pretrained(path, cache_dir=cache_dir, revision=revision)
    if getattr(config, "is_encoder_decoder", False):
        raise InputError(f"{what}: a seq2seq ({config.model_type}) teacher cannot teach a decoder-only student; "
                         f"use a causal LM teacher")
    t_vocab, s_vocab = getattr(config, "vocab_size", None), student.config.vocab_size
    if t_vocab != s_vocab:
        raise InputError(f"{what}: vocabulary size {t_vocab} differs from the student's {s_vocab}; logit KD needs the "
                         f"same vocabulary (or use a served teacher: --teacher_logprobs_file)")
    try:
        teacher_tok = AutoTokenizer.from_pretrained(path, cache_dir=cache_dir, revision=revision)
    except (OSError, ValueError):
        teacher_tok = None
        logger.warning("teacher %s ships no tokenizer; checked the vocabulary size only", path)
    if teacher_tok is not None:
        check_same_tokenizer(tokenizer, teacher_tok, list(sample_texts), what)
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
