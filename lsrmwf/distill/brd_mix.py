"""Basic Reading Distillation, the training data of a causal student: the D_ORI/D_NER/D_QRA mix, packed.

``train.py --stage basic_reading`` with a causal ``--model_name_or_path`` reads the passage files of
``compose_brd.py`` (``ori.jsonl``, ``ner.jsonl``, ``qra.jsonl`` in ``--brd_passages_dir``; rows
``{id, text, n_sentences, partial}``, only ``text`` is required) and, in this order:

1. ``--max_passages N``: keeps N passages of each file (a seeded random choice, in file order; the
   choice for a smaller N is a subset of the one for a larger N, so Figure 2's curve grows nested data);
2. ``--brd_drop_qra_pattern REGEX`` (Table 10's -SentData): removes from each QRA passage every
   question/answer segment in which the pattern is found (``re.search``, case-insensitive); the
   sentence it belongs to stays. Segments are the passage split at ``--brd_sep`` (compose_brd.py's
   ``--sep``): in a complete passage (``2 * n_sentences`` segments) the odd positions are the answers;
   in a partial one, where positions do not tell, a segment counts as an answer when it starts with
   ``Question:`` (the few-shot QRA format);
3. ``--brd_mix ori=1,ner=1,qra=1``: a weight per file. Weight 0 leaves the file out (it need not
   exist: ``qra=0`` is the -QRA ablation); the integer part of a weight repeats every passage that
   many times, the fractional part adds a seeded random share of the passages once more (``ori=0.5``:
   half of D_ORI; ``ner=1.5``: all of D_NER plus half of it again);
4. shuffles the mix (seeded) and packs it: each passage tokenized without special tokens and followed by
   eos, all concatenated and cut into blocks of ``--block_size`` tokens (default
   ``--max_source_length``), the last incomplete block left out; labels are the input ids. Attention
   crosses the eos separators, as in the usual packed LM training, so no position is padding.
"""

import logging
import random
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..io import InputError, iter_jsonl
from .brd_compose import DEFAULT_SEP

logger = logging.getLogger("lsrmwf.distill")

SOURCES = ("ori", "ner", "qra")
DEFAULT_MIX = "ori=1,ner=1,qra=1"


def parse_mix(spec: str) -> Dict[str, float]:
    """``"ori=1,ner=0.5"`` -> ``{"ori": 1.0, "ner": 0.5, "qra": 0.0}``: a source left out has weight 0."""
    weights = {s: 0.0 for s in SOURCES}
    seen = set()
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if name not in SOURCES:
            raise InputError(f"--brd_mix {spec!r}: unknown source {name!r}; known: {', '.join(SOURCES)} "
                             f"(e.g. {DEFAULT_MIX})")
        if not eq:
            raise InputError(f"--brd_mix {spec!r}: {name!r} has no weight; write {name}=1")
        if name in seen:
            raise InputError(f"--brd_mix {spec!r}: {name!r} is given twice")
        try:
            w = float(value)
        except ValueError:
            raise InputError(f"--brd_mix {spec!r}: the weight of {name!r} is not a number: {value!r}") from None
        if not (w >= 0 and np.isfinite(w)):
            raise InputError(f"--brd_mix {spec!r}: the weight of {name!r} must be a finite number >= 0, got {value!r}")
        weights[name] = w
        seen.add(name)
    if not any(weights.values()):
        raise InputError(f"--brd_mix {spec!r}: every weight is 0, nothing to train on")
    return weights


def read_passages(path: str) -> List[dict]:
    """The rows of one passage file; a row without a non-empty string ``text`` is an error naming file and row."""
    rows = []
    for line, row in iter_jsonl(path):
        text = row.get("text")
        if text is None:
            raise InputError(f"{path}:{line}: passage row has no 'text' field (rows of compose_brd.py are "
                             f"{{id, text, n_sentences, partial}})")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{line}: 'text' is empty or not a string")
        n = row.get("n_sentences")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise InputError(f"{path}:{line}: 'n_sentences' must be a positive integer, got {n!r}")
        rows.append({"id": str(row.get("id", line)), "text": text, "n_sentences": n,
                     "partial": bool(row.get("partial", False)), "line": line})
    if not rows:
        raise InputError(f"{path}: no passages")
    return rows


def cap_passages(rows: List[dict], max_passages: Optional[int], seed: int, name: str) -> List[dict]:
    """At most ``max_passages`` rows: a seeded random choice kept in file order (nested for growing N)."""
    if max_passages is None or len(rows) <= max_passages:
        return rows
    order = list(range(len(rows)))
    random.Random(f"{seed}:max_passages:{name}").shuffle(order)
    return [rows[i] for i in sorted(order[:max_passages])]


def _answer_positions(segments: List[str], row: dict) -> List[int]:
    if row["n_sentences"] is not None and len(segments) == 2 * row["n_sentences"] and not row["partial"]:
        return list(range(1, len(segments), 2))
    return [i for i, s in enumerate(segments) if s.lstrip().lower().startswith("question:")]


def drop_qra_pairs(rows: List[dict], pattern: str, sep: str = DEFAULT_SEP) -> Tuple[List[dict], int]:
    """Remove the question/answer segments matching ``pattern`` (case-insensitive ``re.search``);
    returns ``(rows, pairs_removed)``. A passage left with its sentences only is kept."""
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise InputError(f"--brd_drop_qra_pattern {pattern!r}: not a valid regular expression ({e})") from None
    out, removed = [], 0
    for row in rows:
        segments = row["text"].split(sep)
        drop = {i for i in _answer_positions(segments, row) if rx.search(segments[i])}
        if drop:
            removed += len(drop)
            row = dict(row, text=sep.join(s for i, s in enumerate(segments) if i not in drop))
        out.append(row)
    return out, removed


def mix_passages(sources: Dict[str, List[dict]], weights: Dict[str, float],
                 seed: int) -> Tuple[List[Tuple[str, str]], Dict[str, int]]:
    """``([(source, text), ...] shuffled, {source: count})`` following the weights (see the module's step 3)."""
    mixed: List[Tuple[str, str]] = []
    counts = {}
    for name in SOURCES:
        w = weights.get(name, 0.0)
        rows = sources.get(name) or []
        if w <= 0 or not rows:
            continue
        whole, frac = int(w), w - int(w)
        picked = [r["text"] for r in rows] * whole
        extra = int(round(frac * len(rows)))
        if extra:
            idx = sorted(random.Random(f"{seed}:mix:{name}").sample(range(len(rows)), extra))
            picked += [rows[i]["text"] for i in idx]
        mixed += [(name, t) for t in picked]
        counts[name] = len(picked)
    random.Random(f"{seed}:shuffle").shuffle(mixed)
    return mixed, counts


def load_brd_mix(passages_dir: str, mix: str = DEFAULT_MIX, max_passages: Optional[int] = None,
                 drop_qra_pattern: Optional[str] = None, sep: str = DEFAULT_SEP,
                 seed: int = 42) -> Tuple[List[str], dict]:
    """Steps 1-3 of the module on ``passages_dir/{ori,ner,qra}.jsonl``: ``(texts in training order, counts)``."""
    import os

    weights = parse_mix(mix)
    if max_passages is not None and max_passages < 1:
        raise InputError(f"--max_passages must be >= 1 (leave it out to use every passage), got {max_passages}")
    if drop_qra_pattern and not weights["qra"]:
        raise InputError("--brd_drop_qra_pattern filters D_QRA, but --brd_mix gives qra weight 0")
    sources, stats = {}, {"mix": weights, "files": {}, "passages_read": {}, "passages_kept": {}}
    for name in SOURCES:
        if not weights[name]:
            continue
        path = os.path.join(passages_dir, f"{name}.jsonl")
        if not os.path.isfile(path):
            raise InputError(f"--brd_passages_dir {passages_dir}: no {name}.jsonl (compose_brd.py writes "
                             f"ori/ner/qra.jsonl); give --brd_mix {name}=0 to train without it")
        rows = read_passages(path)
        stats["files"][name], stats["passages_read"][name] = path, len(rows)
        rows = cap_passages(rows, max_passages, seed, name)
        if name == "qra" and drop_qra_pattern:
            rows, removed = drop_qra_pairs(rows, drop_qra_pattern, sep)
            stats["qra_pairs_dropped"] = removed
            logger.info("--brd_drop_qra_pattern %r: removed %d question/answer pairs from %s", drop_qra_pattern,
                        removed, path)
        sources[name] = rows
        stats["passages_kept"][name] = len(rows)
    mixed, counts = mix_passages(sources, weights, seed)
    stats["mixed"] = counts
    kept = stats["passages_kept"]
    logger.info("BRD mix: %s", ", ".join(f"{n} {counts.get(n, 0)} (weight {weights[n]:g}, of {kept.get(n, 0)})"
                                          for n in SOURCES))
    return [t for _, t in mixed], stats


def pack_token_ids(token_lists: Iterable[Sequence[int]], eos_token_id: int, block_size: int) -> Tuple[np.ndarray, int]:
    """Each list followed by eos, all concatenated, cut into rows of ``block_size``: ``(blocks, tokens_left_out)``."""
    if block_size < 2:
        raise InputError(f"--block_size must be >= 2, got {block_size}")
    parts = [np.asarray(list(t) + [eos_token_id], dtype=np.int64) for t in token_lists]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    n = len(flat) // block_size
    return flat[: n * block_size].reshape(n, block_size), len(flat) - n * block_size


def packed_dataset(texts: List[str], tokenizer, block_size: int, num_proc: Optional[int] = None):
    """The packed training set (``input_ids`` = ``labels``, blocks of ``block_size``) and its counts."""
    import datasets

    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no eos token to separate packed passages")
    ds = datasets.Dataset.from_dict({"text": texts})
    tokenized = ds.map(lambda b: {"ids": tokenizer(b["text"], add_special_tokens=False)["input_ids"]}, batched=True,
                       remove_columns=["text"], num_proc=num_proc, desc="tokenizing BRD passages")
    chunks, total, tail = [], 0, np.zeros(0, dtype=np.int64)
    eos = tokenizer.eos_token_id
    for batch in tokenized.iter(batch_size=10000):
        flat = np.concatenate([tail] + [np.asarray(list(t) + [eos], dtype=np.int64) for t in batch["ids"]])
        total += len(flat) - len(tail)
        n = len(flat) // block_size
        chunks.append(flat[: n * block_size].astype(np.int32))
        tail = flat[n * block_size:]
    flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    n_blocks = len(flat) // block_size
    if n_blocks == 0:
        raise InputError(f"the BRD mix has {total} tokens, fewer than one block of --block_size {block_size}; give "
                         "more passages or a smaller --block_size")
    import pyarrow as pa
    from datasets.table import InMemoryTable

    column = pa.FixedSizeListArray.from_arrays(pa.array(flat), block_size)
    table = pa.table({"input_ids": column, "labels": column})  # the same buffers: labels == input ids
    counts = {"passages": len(texts), "tokens": int(total), "block_size": block_size, "blocks": n_blocks,
              "tokens_left_out": int(len(tail))}
    logger.info("packed %d passages (%d tokens with eos separators) into %d blocks of %d; %d tail tokens left out",
                len(texts), total, n_blocks, block_size, len(tail))
    return datasets.Dataset(InMemoryTable(table)), counts
