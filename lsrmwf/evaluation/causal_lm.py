"""Causal LMs for evaluation: loading (local directory, hub name or GGUF) and the BRD paper's
teacher-student cross-entropy (Table 5).

Cross-entropy (:func:`teacher_student_ce`)
    For N texts, ``CE = - sum_i pbar_i * log(qbar_i)`` where ``pbar_i`` (teacher) and ``qbar_i``
    (student) are the *average per-token probability* of text ``i`` under each model with its own
    tokenizer (the paper: "sequence-level probabilities averaged over y and y'", so the two token
    sequences may differ in length). ``average="arithmetic"`` (default) is the mean of the per-token
    probabilities; ``"geometric"`` is ``exp`` of the mean per-token log-probability. Each text is
    scored from the tokens the tokenizer puts in front of a text (else ``bos``/``eos``), so its first
    token has a context. The value is a sum over texts (Table 5's 10-1000), not a per-token CE.

    ``evaluate.py --task teacher_student_ce`` never holds both models: :func:`cached_probabilities` scores
    every text with the teacher, drops it and frees its memory, then does the same with the student;
    each text's value is appended to a :class:`lsrmwf.io.store.ResultStore` as it finishes, so a killed
    run resumes without rescoring (a model whose texts are all cached is not even loaded).

    A teacher served over HTTP can take part only where the endpoint scores given text (vLLM's
    ``prompt_logprobs``); llama.cpp's server ignores ``echo`` and returns no prompt log-probs, so
    with it the teacher must be loaded here as an HF model (``--gguf_file`` reads its GGUF).
"""

import gc
import hashlib
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..io import InputError
from .generation import DTYPES, resolve_device, torch_dtype
from .multiple_choice import encode_pair

AVERAGES = ("arithmetic", "geometric")


def check_causal_lm(model_name_or_path: str, dtype: str = "float32", gguf_file: Optional[str] = None,
                    flag: str = "--model_name_or_path") -> None:
    """What :func:`load_causal_lm` can refuse without loading: the dtype, a missing path or config, the GGUF file."""
    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype}: choose one of {list(DTYPES)}")
    if not model_name_or_path:
        raise InputError(f"{flag} is required (a causal LM: local directory or hub name)")
    folder = os.path.isdir(model_name_or_path)
    if gguf_file is None and folder and not os.path.isfile(os.path.join(model_name_or_path, "config.json")):
        raise InputError(f"{flag} {model_name_or_path}: directory has no config.json (give --gguf_file for a GGUF "
                         "inside it)")
    if gguf_file is not None and folder and not os.path.isfile(os.path.join(model_name_or_path, gguf_file)):
        raise InputError(f"--gguf_file {gguf_file}: not found in {model_name_or_path}")


def load_causal_lm(model_name_or_path: str, device: str = "auto", dtype: str = "float32",
                   cache_dir: Optional[str] = None, gguf_file: Optional[str] = None,
                   flag: str = "--model_name_or_path", device_map: Optional[str] = None):
    """``(AutoModelForCausalLM in eval mode on the device, tokenizer)``; a GGUF is dequantized by transformers.
    ``dtype="auto"``: the checkpoint's dtype; ``device_map="auto"``: accelerate spreads the weights over the GPUs
    (and CPU) and ``device`` is not used."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_causal_lm(model_name_or_path, dtype, gguf_file, flag)
    kwargs = {"cache_dir": cache_dir}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    placement = {"device_map": device_map} if device_map else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(model_name_or_path, dtype=torch_dtype(dtype), **placement,
                                                     **kwargs)
    except OSError as e:
        raise InputError(f"{flag} {model_name_or_path}: not a local checkpoint and could not be loaded from the hub "
                         f"({e})") from None
    except ImportError as e:  # reading a GGUF needs the gguf package
        raise InputError(f"{flag} {model_name_or_path}: {' '.join(str(e).split())[:300]} (for --gguf_file: pip "
                         "install gguf)") from None
    except ValueError as e:
        raise InputError(f"{flag} {model_name_or_path}: not a causal LM ({' '.join(str(e).split())[:300]})") from None
    if not device_map:
        model.to(resolve_device(device))
    model.eval()
    return model, tokenizer


@torch.inference_mode()
def average_token_probabilities(model, tokenizer, texts: Sequence[str], average: str = "arithmetic",
                                batch_size: int = 8, device=None) -> List[float]:
    """Per text, the average per-token probability under ``model`` (see the module docstring)."""
    if average not in AVERAGES:
        raise InputError(f"unknown average {average!r}; use one of {', '.join(AVERAGES)}")
    if device is None:
        device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    cfg = getattr(model, "config", None)
    positions = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    seqs = []
    for i, text in enumerate(texts):
        if not text.strip():
            raise InputError(f"text {i} is empty")
        ids, n_ctx = encode_pair(tokenizer, "", text)
        if isinstance(positions, int) and len(ids) - 1 > positions:
            ids = ids[:positions + 1]  # a text longer than the model reads is scored on its beginning
        seqs.append((ids, n_ctx))
    out = [0.0] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda s: -len(seqs[s][0]))
    for b in range(0, len(order), batch_size):
        chunk = [seqs[s] for s in order[b:b + batch_size]]
        width = max(len(ids) - 1 for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, (ids, _) in enumerate(chunk):
            input_ids[r, :len(ids) - 1] = torch.tensor(ids[:-1])
            mask[r, :len(ids) - 1] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        for r, (ids, n_ctx) in enumerate(chunk):
            target = torch.tensor(ids[n_ctx:], device=logits.device)
            lp = torch.log_softmax(logits[r, n_ctx - 1:len(ids) - 1].float(), -1).gather(-1, target[:, None]).double()
            out[order[b + r]] = float(lp.exp().mean()) if average == "arithmetic" else math.exp(float(lp.mean()))
    return out


def cross_entropy(p: Sequence[float], q: Sequence[float]) -> float:
    """``-sum_i p_i * log(q_i)``."""
    if len(p) != len(q):
        raise ValueError(f"{len(p)} teacher values for {len(q)} student values")
    return -sum(pi * math.log(max(qi, 1e-300)) for pi, qi in zip(p, q))


def teacher_student_ce(teacher, teacher_tokenizer, student, student_tokenizer, texts: Sequence[str],
                       average: str = "arithmetic", batch_size: int = 8) -> dict:
    """``{"ce", "n", "teacher_mean_p", "student_mean_q"}`` over ``texts`` (see the module docstring)."""
    p = average_token_probabilities(teacher, teacher_tokenizer, texts, average, batch_size)
    q = average_token_probabilities(student, student_tokenizer, texts, average, batch_size)
    return ce_entry(p, q)


def text_id(role: str, task: str, index: int, text: str) -> str:
    """A text's cache id: whose score, which task and row, and a hash of the text (an edited text is rescored)."""
    return f"{role}/{task}/{index}/{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def free_accelerator_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def cached_probabilities(load: Callable[[], Tuple[object, object]], items: Sequence[Tuple[str, str]], store,
                         average: str = "arithmetic", batch_size: int = 8, progress: bool = True,
                         desc: str = "scoring") -> Dict[str, float]:
    """``{id: average per-token probability}`` of ``items`` (``(id, text)``): read from ``store`` (an open
    :class:`lsrmwf.io.store.ResultStore`) where finished, else scored with the model ``load()`` returns, a
    batch at a time, each value appended as it finishes. The model is loaded only when a text is missing and
    released (memory freed) before returning."""
    todo = sorted((it for it in items if it[0] not in store.done), key=lambda it: -len(it[1]))
    if todo:
        model, tokenizer = load()
        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=desc, unit="text", disable=not progress)
        try:
            for b in range(0, len(todo), batch_size):
                chunk = todo[b:b + batch_size]
                values = average_token_probabilities(model, tokenizer, [t for _, t in chunk], average, batch_size)
                for (i, _), v in zip(chunk, values):
                    store.append({"id": i, "p": v, "error": None})
                bar.update(len(chunk))
        finally:
            bar.close()
            del model, tokenizer
            free_accelerator_memory()
    return {i: store.done[i]["p"] for i, _ in items}


def ce_entry(p: Sequence[float], q: Sequence[float]) -> dict:
    """A task's CE entry from the teacher's and the student's per-text values."""
    return {"ce": cross_entropy(p, q), "n": len(p), "teacher_mean_p": sum(p) / len(p),
            "student_mean_q": sum(q) / len(q)}
