"""Aligning a served teacher's rows with a student of another tokenizer through the bytes of the same text
(``--kd_alignment text``).

A stored teacher record (:mod:`lsrmwf.io.logprobs`) holds, per teacher token, its bytes and its top-K
log-probabilities. The target text is those bytes joined; the student tokenizes the same text with its own
tokenizer. Both tokenizations cut the text's bytes into spans, and the rule is:

* a student token and a teacher token whose spans coincide exactly (same first and last byte) are **aligned**
  1:1: the teacher's row there is the student position's KD target;
* where the boundaries differ, the smallest run of teacher tokens and run of student tokens that cover the same
  bytes form a *group* (its first byte and its last byte are boundaries of both tokenizations). The group's
  **first** student token takes the group's **first** teacher row (**merged**): both predict what follows the
  same text prefix, in their own vocabularies. The group's other student tokens get no teacher row
  (**skipped**: CE only), and the group's other teacher rows are unused.

:func:`align_spans` finds the groups, :func:`text_aligned_targets` turns one record into the student's labels,
the teacher row of each label and the counts (aligned / merged / skipped student positions, unused teacher rows)
that the run logs and writes to ``run_summary.json`` under ``kd_alignment``.

Approximate: a merged position compares distributions over different events (the teacher's next token may span
more or fewer bytes than the student's); a skipped position's prefix ends inside a teacher token, for which the
record holds no distribution. The student must tokenize the text back byte for byte (byte-level BPE, or
SentencePiece without a dummy prefix); a tokenizer that does not is refused with the text it spelled.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.causal import encode_prompt, summary_text
from ..io import InputError
from ..io.logprobs import TeacherTokens
from .sparse_kd import token_bytes_table

COUNT_KEYS = ("aligned", "merged", "skipped", "teacher_rows_unused")


def align_spans(teacher_lengths: Sequence[int], student_lengths: Sequence[int]) -> List[Tuple[int, int, int, int]]:
    """The groups ``(t_start, t_end, s_start, s_end)`` (token index ranges, end exclusive) of two tokenizations
    of the same bytes, given each token's length in bytes (no zero lengths). A group of one teacher and one
    student token is an exact match; every group starts and ends at a boundary of both."""
    t_ends = np.cumsum(teacher_lengths).tolist()
    s_ends = np.cumsum(student_lengths).tolist()
    if (t_ends[-1] if t_ends else 0) != (s_ends[-1] if s_ends else 0):
        raise ValueError(f"the two tokenizations cover {t_ends[-1] if t_ends else 0} and "
                         f"{s_ends[-1] if s_ends else 0} bytes")
    groups = []
    i = j = t0 = s0 = 0
    while i < len(t_ends) and j < len(s_ends):
        if t_ends[i] == s_ends[j]:
            groups.append((t0, i + 1, s0, j + 1))
            i, j = i + 1, j + 1
            t0, s0 = i, j
        elif t_ends[i] < s_ends[j]:
            i += 1
        else:
            j += 1
    return groups


def empty_counts() -> Dict[str, int]:
    return {k: 0 for k in COUNT_KEYS}


def _spelled_text(tokens, where: str, what: str) -> str:
    if len(tokens) and not any(tokens.token_bytes):
        raise InputError(f"{where}: {what} has {len(tokens)} teacher tokens but no token text (bytes/offsets); "
                         f"--kd_alignment text aligns on the tokens' bytes: collect the file again with a server "
                         f"that reports them")
    raw = b"".join(tokens.token_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: the teacher's tokens of {what} spell bytes that are not UTF-8 text (byte "
                         f"{e.start}: {raw[max(0, e.start - 10): e.start + 10]!r})") from None


def _alternative_bytes(tokens, row: int, teacher_table: Optional[List[Optional[bytes]]]) -> List[Optional[bytes]]:
    if tokens.top_bytes is not None:
        return [b or None for b in tokens.top_bytes[row]]
    out = []
    for tid in tokens.top_ids[row].tolist():
        out.append(teacher_table[tid] if 0 <= tid < len(teacher_table) else None)
    return out


def text_aligned_targets(tokens, tokenizer, table: List[Optional[bytes]], where: str, what: str,
                         expected: Optional[str] = None, max_tokens: Optional[int] = None,
                         shared_lookup: Optional[Dict[bytes, int]] = None,
                         teacher_table: Optional[List[Optional[bytes]]] = None):
    """One record's student targets under the rule of this module.

    ``tokens``: the teacher's :class:`~lsrmwf.io.logprobs.TeacherTokens`; ``tokenizer``/``table``: the student's
    tokenizer and its bytes per id (:func:`lsrmwf.distill.sparse_kd.token_bytes_table`); ``where``/``what`` name
    the row and its target in errors; ``expected``: the text the tokens must spell (``None``: no check);
    ``max_tokens``: keep the first student tokens only. ``shared_lookup`` (student bytes -> id) asks for the
    alternatives that both vocabularies share: their strings come from the record's ``top_bytes`` or, for a record
    with ids only, from ``teacher_table`` (the teacher tokenizer's bytes per id).

    Returns ``(labels, rows, top_logprobs, shared_ids, counts)``: the student's ids of the text, per label the
    teacher row it takes (``-1``: none), ``[n, K]`` the teacher's log-probs at that row (``-inf`` where the server
    gave fewer than K alternatives, 0 where there is no row), ``[n, K]`` the student id of each alternative whose
    bytes are a student token (``-1`` otherwise, and everywhere without ``shared_lookup``), and the counts.
    """
    text = _spelled_text(tokens, where, what)
    if len(tokens) and tokens.top_bytes is None and not bool((tokens.top_ids >= 0).any()):
        raise InputError(f"{where}: the record has neither the alternatives' ids nor their bytes, so its top-K rows "
                         f"cannot be told from padding")
    if expected is not None and text != expected:
        at = next((i for i, (a, b) in enumerate(zip(text, expected)) if a != b), min(len(text), len(expected)))
        raise InputError(f"{where}: the teacher's tokens spell {text[max(0, at - 20): at + 20]!r} where {what} has "
                         f"{expected[max(0, at - 20): at + 20]!r} (character {at}); the record does not belong to "
                         f"this text")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    pieces = [table[i] if 0 <= i < len(table) else None for i in ids]
    if any(p is None for p in pieces) or b"".join(pieces) != text.encode("utf-8"):
        spelled = b"".join(p or b"" for p in pieces)
        raise InputError(f"{where}: the student's tokenizer does not give {what}'s text back byte for byte (it "
                         f"spells {spelled[:60]!r} for {text[:60]!r}); --kd_alignment text needs a byte-level BPE or "
                         f"a SentencePiece tokenizer without a dummy prefix")
    kept = [k for k, b in enumerate(tokens.token_bytes) if b]  # a zero-length teacher token spells nothing
    rows = np.full(len(ids), -1, dtype=np.int64)
    kind = ["skipped"] * len(ids)
    if ids:
        for t0, t1, s0, s1 in align_spans([len(tokens.token_bytes[k]) for k in kept], [len(p) for p in pieces]):
            rows[s0] = kept[t0]
            kind[s0] = "aligned" if t1 - t0 == 1 and s1 - s0 == 1 else "merged"
    if max_tokens is not None and len(ids) > max_tokens:  # positions cut off count as nothing
        ids, rows, kind = ids[:max_tokens], rows[:max_tokens], kind[:max_tokens]
    counts = empty_counts()
    for x in kind:
        counts[x] += 1
    counts["teacher_rows_unused"] = len(tokens) - int((rows >= 0).sum())
    k = tokens.top_logprobs.shape[1] if tokens.top_logprobs.ndim == 2 else 0
    top_lp = np.zeros((len(ids), k), dtype=np.float32)
    shared = np.full((len(ids), k), -1, dtype=np.int64)
    for s, r in enumerate(rows.tolist()):
        if r < 0:
            continue
        named = tokens.top_bytes is not None or teacher_table
        alts = _alternative_bytes(tokens, r, teacher_table) if named else None
        if tokens.top_bytes is None:
            valid = tokens.top_ids[r] >= 0
        else:
            valid = np.array([bool(b) for b in tokens.top_bytes[r]])
        top_lp[s] = np.where(valid, tokens.top_logprobs[r].astype(np.float32), -np.inf)
        if shared_lookup is not None and alts is not None:
            seen = set()
            for j, b in enumerate(alts):
                sid = shared_lookup.get(b) if (b and valid[j]) else None
                if sid is not None and sid not in seen:
                    shared[s, j] = sid
                    seen.add(sid)
    return list(ids), rows, top_lp, shared, counts


def student_lookup(table: List[Optional[bytes]]) -> Dict[bytes, int]:
    """Bytes -> the first student id with those bytes (the shared-vocabulary map)."""
    out: Dict[bytes, int] = {}
    for i, b in enumerate(table):
        if b is not None and b not in out:
            out[b] = i
    return out


class TextAligner:
    """One file's ``--kd_alignment text`` targets: the student's tokenizer and bytes, the shared-vocabulary map
    (``shared_vocab``; the alternatives' strings from the records' bytes or ``teacher_tokenizer``, a path or hub
    name) and the counts summed over the file's rows."""

    def __init__(self, tokenizer, table: List[Optional[bytes]], shared_vocab: bool = False,
                 teacher_tokenizer: Optional[str] = None):
        self.tokenizer, self.table = tokenizer, table
        self.lookup = student_lookup(table) if shared_vocab else None
        self.teacher_table = None
        if shared_vocab and teacher_tokenizer:
            from transformers import AutoTokenizer

            try:
                self.teacher_table = token_bytes_table(AutoTokenizer.from_pretrained(teacher_tokenizer))
            except (OSError, ValueError) as e:
                raise InputError(f"--kd_teacher_tokenizer {teacher_tokenizer}: cannot load it ({e})") from None
        self.counts = empty_counts()

    def __call__(self, tokens, row: dict, expected: Optional[str], where: str, what: str, max_tokens: int):
        """``(labels, top_ids, top_logprobs, aligned)`` as lists for one record; ``expected``: the text a reference
        row must spell (``None`` for the teacher's own summary, checked against the row's ``summary``)."""
        if self.lookup is not None and self.teacher_table is None and tokens.top_bytes is None and len(tokens):
            raise InputError(f"{where}: --kd_shared_vocab_weight needs the strings of the teacher's alternatives; the "
                             f"file holds their ids only: give the served teacher's tokenizer "
                             f"(--kd_teacher_tokenizer)")
        spelled = b"".join(tokens.token_bytes).decode("utf-8", "replace").strip()
        if expected is None and row.get("summary") and spelled != row["summary"].strip():
            raise InputError(f"{where}: the teacher's tokens do not spell the row's summary "
                             f"{row['summary'][:60]!r}; the record is damaged")
        labels, rows, lp, top, c = text_aligned_targets(tokens, self.tokenizer, self.table, where, what, expected,
                                                        max_tokens, self.lookup, self.teacher_table)
        for key in COUNT_KEYS:
            self.counts[key] += c[key]
        return labels, top.tolist(), lp.tolist(), [int(r >= 0) for r in rows]

    def describe(self) -> str:
        return describe_counts(self.counts)


def describe_counts(c: Dict[str, int]) -> str:
    """The log line of the alignment counts."""
    return (f"--kd_alignment text: {c['aligned']} student positions aligned 1:1 with a teacher row, {c['merged']} "
            f"merged (the first token of a group of differing spans), {c['skipped']} skipped (CE only); "
            f"{c['teacher_rows_unused']} teacher rows unused")


class WhiteBoxTextRows:
    """A white-box teacher of another tokenizer (``--kd_alignment text`` with ``--teacher_model_name_or_path``):
    per training example, the student's ``input_ids``/``labels`` (prompt + its tokens of the reference + eos), the
    teacher's own ``teacher_input_ids`` (its prompt + its tokens of the same text) and ``teacher_rows``: per student
    position, the teacher position whose logits predict the teacher token aligned with that label (``-1``: none),
    by the rule of this module. The teacher's top-K there is computed during training
    (:func:`lsrmwf.distill.uld.teacher_top_k_rows`). Counts add up in ``counts``. An error names the example
    (``where``: the training file, row and field)."""

    def __init__(self, tokenizer, teacher_tokenizer, template: str, use_chat_template: bool,
                 max_source_length: Optional[int], max_target_length: Optional[int]):
        if tokenizer.eos_token_id is None:
            raise InputError(f"{getattr(tokenizer, 'name_or_path', '') or 'the student'}: a causal student needs a "
                             f"tokenizer with an eos token (it ends every summary)")
        self.tok, self.teacher_tok = tokenizer, teacher_tokenizer
        self.table, self.teacher_table = token_bytes_table(tokenizer), token_bytes_table(teacher_tokenizer)
        self.template, self.chat = template, use_chat_template
        self.max_source, self.max_target = max_source_length, max_target_length
        self.counts = empty_counts()

    def __call__(self, document: str, summary: str, where: str) -> dict:
        text = summary_text(summary or "", self.chat)
        t_ids = self.teacher_tok(text, add_special_tokens=False)["input_ids"] if text else []
        pieces = [self.teacher_table[i] if 0 <= i < len(self.teacher_table) else None for i in t_ids]
        if any(p is None for p in pieces):
            raise InputError(f"{where}: the teacher's tokenizer turns the reference summary into a special token "
                             f"(id {t_ids[pieces.index(None)]}); --kd_alignment text aligns on the tokens' bytes")
        n = len(t_ids)
        rows = TeacherTokens(np.array(t_ids, np.int32), np.zeros(n, np.float16), np.zeros((n, 1), np.int32),
                             np.zeros((n, 1), np.float16), pieces)
        cut = None if self.max_target is None else max(0, self.max_target - 1)
        labels, aligned, _, _, c = text_aligned_targets(rows, self.tok, self.table, where, "the reference summary",
                                                        text, cut)
        for key in COUNT_KEYS:
            self.counts[key] += c[key]
        prompt = encode_prompt(document, self.tok, self.template, self.chat, self.max_source)
        t_prompt = encode_prompt(document, self.teacher_tok, self.template, self.chat, self.max_source)
        used = int(aligned.max()) + 1 if len(aligned) and aligned.max() >= 0 else 0
        t_rows = [len(t_prompt) + r - 1 if r >= 0 else -1 for r in aligned.tolist()]
        labels = labels + [self.tok.eos_token_id]
        return {"input_ids": prompt + labels, "labels": [-100] * len(prompt) + labels,
                "teacher_input_ids": t_prompt + t_ids[:used], "teacher_rows": [-1] * len(prompt) + t_rows + [-1]}

    def dataset(self, ds, source: str = "the training data"):
        """:meth:`__call__` over a dataset of ``id``/``document``/``summary``; ``source`` (the training file, or the
        hub dataset and split) is named in errors with the row's id and the field."""
        import datasets

        cols = {"input_ids": [], "labels": [], "teacher_input_ids": [], "teacher_rows": []}
        for rid, doc, summ in zip(ds["id"], ds["document"], ds["summary"]):
            ex = self(doc, summ, f"{source}, row {rid!r}, field 'summary'")
            for key in cols:
                cols[key].append(ex[key])
        return datasets.Dataset.from_dict(cols)

    def describe(self) -> str:
        return describe_counts(self.counts)


def shared_id_map(teacher_table: List[Optional[bytes]], table: List[Optional[bytes]]):
    """``[len(teacher_table)]`` long tensor: per teacher id the student id with the same bytes, or ``-1``."""
    import torch

    lookup = student_lookup(table)
    return torch.tensor([lookup.get(b, -1) if b is not None else -1 for b in teacher_table], dtype=torch.long)
