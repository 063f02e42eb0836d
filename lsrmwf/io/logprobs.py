"""The binary record of a teacher's summary with its top-K log-probabilities (one per document).

``generate_rationales.py --task teacher_logprobs`` writes it as the payload of a
:class:`~lsrmwf.io.store.ResultStore` row; ``train.py --teacher_logprobs_file`` reads it back.
Arrays (:func:`~lsrmwf.io.store.pack_arrays`), for ``N`` generated tokens and ``K`` alternatives:

==================  =========  ================================================================
``token_ids``       int32 N    the generated token's id in the served model's vocabulary (-1: the
                               server gave no ids)
``token_logprobs``  float16 N  its log-probability
``top_ids``         int32 N×K  the K most probable tokens' ids at that position (-1: none / no id)
``top_logprobs``    float16 N×K their log-probabilities (temperature 1, as the server reports them)
``token_bytes``     uint8      the generated tokens' bytes, concatenated (= the summary's UTF-8)
``token_offsets``   int32 N+1  where each token's bytes start
``top_bytes``       uint8      only when the server gave no ids: the alternatives' bytes ...
``top_offsets``     int32 N·K+1 ... and their offsets, row-major
==================  =========  ================================================================

With ids the record costs ``4 + 2 + K·6`` bytes per token plus the text (about 66 bytes at K=10).

The same record holds either the teacher's own summary (a row without ``target``, or
``target: "teacher_summary"``) or the reference summary's tokens as the teacher scored them
(``target: "reference"``, ``generate_rationales.py --logprobs_target reference``).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import InputError, iter_jsonl
from .store import pack_arrays, unpack_arrays

TARGETS = ("teacher_summary", "reference")  # whose tokens a row scores


@dataclass
class TeacherTokens:
    token_ids: np.ndarray
    token_logprobs: np.ndarray
    top_ids: np.ndarray
    top_logprobs: np.ndarray
    token_bytes: List[bytes]
    top_bytes: Optional[List[List[bytes]]] = None

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def has_ids(self) -> bool:
        return bool(len(self)) and bool((self.token_ids >= 0).all())


def _concat(chunks: List[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(chunks) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(c) for c in chunks], dtype=np.int64)
    return np.frombuffer(b"".join(chunks), dtype=np.uint8).copy(), offsets


def _split(data: np.ndarray, offsets: np.ndarray) -> List[bytes]:
    raw = data.tobytes()
    return [raw[offsets[i]: offsets[i + 1]] for i in range(len(offsets) - 1)]


def pack_teacher_tokens(t: TeacherTokens) -> bytes:
    arrays = dict(token_ids=np.asarray(t.token_ids, np.int32), token_logprobs=np.asarray(t.token_logprobs, np.float16),
                  top_ids=np.asarray(t.top_ids, np.int32), top_logprobs=np.asarray(t.top_logprobs, np.float16))
    arrays["token_bytes"], arrays["token_offsets"] = _concat(list(t.token_bytes))
    if t.top_bytes is not None:
        arrays["top_bytes"], arrays["top_offsets"] = _concat([b for row in t.top_bytes for b in row])
    return pack_arrays(**arrays)


def unpack_teacher_tokens(data: bytes) -> TeacherTokens:
    a = unpack_arrays(data)
    top_bytes = None
    if "top_bytes" in a:
        flat = _split(a["top_bytes"], a["top_offsets"])
        k = a["top_ids"].shape[1] if a["top_ids"].ndim == 2 else 0
        top_bytes = [flat[i * k:(i + 1) * k] for i in range(a["top_ids"].shape[0])]
    return TeacherTokens(a["token_ids"], a["token_logprobs"], a["top_ids"], a["top_logprobs"],
                         _split(a["token_bytes"], a["token_offsets"]), top_bytes)


def read_teacher_logprobs(path: str) -> Dict[str, Tuple[dict, TeacherTokens]]:
    """``{id: (row, tokens)}`` for every finished row of a teacher-logprobs file (failed rows skipped)."""
    import os

    bin_path = path + ".bin"
    out = {}
    rows = [(line, row) for line, row in iter_jsonl(path, tolerate_torn_tail=True)]
    if rows and not os.path.exists(bin_path):
        raise InputError(f"{path}: its payload file {bin_path} is missing (token ids and log-probs live there)")
    with open(bin_path, "rb") if rows else open(os.devnull, "rb") as f:
        for line, row in rows:
            if row.get("task") != "teacher_logprobs":
                raise InputError(f"{path}:{line}: not a teacher-logprobs row (task "
                                 f"{row.get('task')!r}); write it with generate_rationales.py --task teacher_logprobs")
            if row.get("error") is not None:
                continue
            if row.get("target", "teacher_summary") not in TARGETS:
                raise InputError(f"{path}:{line}: row {row.get('id')!r} "
                                 f"has target {row.get('target')!r}; known targets are {', '.join(TARGETS)}")
            p = row.get("payload")
            if not p:
                raise InputError(f"{path}:{line}: row {row.get('id')!r} has no payload")
            f.seek(int(p["offset"]))
            data = f.read(int(p["length"]))
            if len(data) != int(p["length"]):
                raise InputError(f"{bin_path}: row {row.get('id')!r} (line {line}) points past the end of the file")
            out[str(row["id"])] = (row, unpack_teacher_tokens(data))
    return out
