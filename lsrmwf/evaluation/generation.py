"""Summaries from any seq2seq checkpoint (LSR-MWF or plain BART), with response-time figures.

The model is loaded with ``AutoModelForSeq2SeqLM``; importing any ``lsrmwf`` module registers the
``lsrmwf`` model type, so LSR-MWF checkpoints and baselines take exactly the same path. Beam
search settings come from the arguments, then the preset, then the checkpoint's own generation
config, and the report records the values actually used.

Documents are batched longest first (less padding) and the output is put back in input order.
Latency per document is the wall time of its batch (tokenize + generate + decode, with the device
synchronized) divided by the batch size; with ``batch_size=1`` it is each document's own response
time.
"""

import copy
import os
import time
from dataclasses import dataclass, field, fields
from typing import Callable, List, Optional, Sequence

from ..data.tokenization import fit_model_max_length
from ..io import InputError

DTYPES = ("float32", "float16", "bfloat16", "auto")  # auto: the checkpoint's own dtype


def torch_dtype(name: str):
    """``from_pretrained``'s ``dtype`` for a ``--dtype`` value: ``"auto"`` (the checkpoint's) or a torch dtype."""
    import torch

    return "auto" if name == "auto" else getattr(torch, name)


@dataclass
class BeamSearchArguments:
    """Decoding settings, shared by ``train.py`` (its predict step) and ``evaluate.py``. ``None`` means
    "from the preset" (see :func:`lsrmwf.presets.fill_from_preset`), else the checkpoint's own config."""

    num_beams: Optional[int] = field(default=None, metadata={"help": "Beam size (preset: 4 / 8)."})
    length_penalty: Optional[float] = field(default=None,
                                            metadata={"help": "Beam length penalty (preset: 2.0 / 0.6)."})
    min_length: Optional[int] = field(default=None, metadata={"help": "Minimum summary tokens (preset: 55 / 11)."})
    max_length: Optional[int] = field(default=None, metadata={"help": "Maximum summary tokens (preset: 140 / 62)."})
    no_repeat_ngram_size: Optional[int] = field(default=None, metadata={"help": "Preset: 3."})


GENERATION_FIELDS = tuple(f.name for f in fields(BeamSearchArguments))


@dataclass
class GenerationSettings(BeamSearchArguments):
    max_source_length: Optional[int] = field(default=None,
                                             metadata={"help": "Document tokens kept (preset: 1024 / 512)."})
    batch_size: int = field(default=16,
                            metadata={"help": "Documents per generation batch (1 = per-document latency)."})
    device: str = field(default="auto", metadata={"help": "auto (CUDA if available), cpu, cuda or cuda:N."})
    dtype: str = field(default="float32",
                       metadata={"help": "Model weights dtype (auto: the checkpoint's own; default float32).",
                                 "choices": list(DTYPES)})
    prompt_template: str = field(
        default="Summarize:\n{document}\n\nSummary:",
        metadata={"help": "Causal checkpoints: the prompt the summary continues ({document} is replaced)."})
    use_chat_template: bool = field(
        default=False,
        metadata={"help": "Causal checkpoints: put the prompt in a user turn of the tokenizer's chat template."})


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    return device


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_model_path(path: str) -> None:
    """Fail early, naming the path, for local checkpoints that cannot be loaded."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise InputError(f"--model_name_or_path {path}: directory has no config.json (not a "
                             "save_pretrained checkpoint)")
        if not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHT_FILES):
            raise InputError(f"--model_name_or_path {path}: directory has no weights (none of "
                             f"{', '.join(WEIGHT_FILES)})")
    elif os.path.exists(path):
        raise InputError(f"--model_name_or_path {path}: is a file; give the checkpoint directory")
    elif path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise InputError(f"--model_name_or_path {path}: no such directory")


def load_model(model_name_or_path: str, device: str = "auto", dtype: str = "float32", cache_dir: Optional[str] = None):
    """``(model in eval mode on the device, tokenizer)``; the lsrmwf model type is registered first.

    The tokenizer's ``model_max_length`` is capped at the model's positions (see
    :func:`lsrmwf.data.tokenization.fit_model_max_length`): a checkpoint saved with a tokenizer trained
    from scratch (no limit, ~1e30) still truncates long documents."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype}: choose one of {list(DTYPES)}")
    check_model_path(model_name_or_path)
    device = resolve_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, cache_dir=cache_dir)
        if is_causal(model_name_or_path, cache_dir):
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(model_name_or_path, cache_dir=cache_dir,
                                                         dtype=torch_dtype(dtype))
            tokenizer.padding_side = "left"  # generation continues every prompt from its last token
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
        else:
            model = AutoModelForSeq2SeqLM.from_pretrained(model_name_or_path, cache_dir=cache_dir,
                                                          dtype=torch_dtype(dtype))
    except OSError as e:
        raise InputError(f"--model_name_or_path {model_name_or_path}: not a local checkpoint and could not be loaded "
                         f"from the hub ({e})") from None
    fit_model_max_length(tokenizer, getattr(model.config, "max_position_embeddings", None))
    model.to(device).eval()
    return model, tokenizer


def is_causal(model_name_or_path: str, cache_dir: Optional[str] = None) -> bool:
    """A decoder-only LM: summarized by continuing a prompt (``settings.prompt_template``)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = AutoConfig.from_pretrained(model_name_or_path, cache_dir=cache_dir)
    return not getattr(config, "is_encoder_decoder", False) \
        and config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES \
        and config.model_type not in ("bart", "lsrmwf")


def effective_generation_config(model, settings: GenerationSettings):
    """The checkpoint's generation config with every explicitly set field of ``settings`` applied."""
    config = copy.deepcopy(model.generation_config)
    for name in GENERATION_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            setattr(config, name, value)
    return config


def generate_summaries(
    model,
    tokenizer,
    documents: Sequence[str],
    settings: GenerationSettings,
    progress: bool = True,
    on_batch: Optional[Callable[[List[int], List[str], float], None]] = None,
):
    """Summaries of ``documents`` in input order, and timing.

    ``on_batch(indices, summaries, seconds)`` is called after each batch (used to save finished
    work as it is produced). Returns ``(summaries, latencies_s, stats)``.
    """
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    config, documents, max_source_length, causal = prepare_inputs(model, tokenizer, documents, settings)
    order = sorted(range(len(documents)), key=lambda k: len(documents[k]), reverse=True)
    summaries: List[Optional[str]] = [None] * len(documents)
    latencies = [0.0] * len(documents)
    total = 0.0

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    bar = tqdm(total=len(documents), desc=f"generating ({device.type}, beams={config.num_beams})", unit="doc",
               disable=not progress)
    for start in range(0, len(order), settings.batch_size):
        idx = order[start : start + settings.batch_size]
        sync()
        t0 = time.perf_counter()
        texts = generate_batch(model, tokenizer, [documents[k] for k in idx], config, causal, max_source_length)
        sync()
        seconds = time.perf_counter() - t0
        total += seconds
        for k, text in zip(idx, texts):
            summaries[k] = text
            latencies[k] = seconds / len(idx)
        if on_batch is not None:
            on_batch(idx, texts, seconds)
        bar.update(len(idx))
    bar.close()
    lengths = ("max_new_tokens", "min_new_tokens") if causal else ()
    stats = {
        "documents": len(documents),
        "seconds": total,
        "documents_per_second": len(documents) / total if total > 0 else None,
        "device": str(device),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "batch_size": settings.batch_size,
        "max_source_length": max_source_length,
        "generation": {name: getattr(config, name) for name in GENERATION_FIELDS + lengths},
    }
    return summaries, latencies, stats


def prepare_inputs(model, tokenizer, documents: Sequence[str], settings: GenerationSettings):
    """``(generation config, documents, source token limit, causal?)``: a causal model's documents become
    prompt token ids exactly as train.py builds them, and its lengths count new tokens."""
    config = effective_generation_config(model, settings)
    if config.min_length is not None and config.max_length is not None and config.min_length > config.max_length:
        raise InputError(f"min_length {config.min_length} is larger than max_length {config.max_length} "
                         "(a preset fills whichever is not given)")
    max_source_length = settings.max_source_length or getattr(tokenizer, "model_max_length", None)
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions and (not max_source_length or max_source_length > max_positions):
        max_source_length = max_positions
    causal = not getattr(model.config, "is_encoder_decoder", False)
    if causal:  # lengths count new tokens; the document is cut, never the prompt around it
        from ..data.causal import encode_prompt

        config.max_new_tokens, config.min_new_tokens = config.max_length, config.min_length or 0
        config.min_length = config.max_length = None  # unset, or transformers warns at every call that both are set
        model.generation_config.min_length = None
        if (config.num_beams or 1) == 1:
            config.length_penalty = None  # a beam setting: greedy search warns that it ignores it
        if config.pad_token_id is None:
            config.pad_token_id = tokenizer.pad_token_id
        documents = [encode_prompt(d, tokenizer, settings.prompt_template, settings.use_chat_template,
                                   settings.max_source_length) for d in documents]
        max_source_length = None
    return config, documents, max_source_length, causal


def generate_batch(model, tokenizer, batch, config, causal: bool, max_source_length: Optional[int]) -> List[str]:
    """The stripped summaries of one batch (documents, or prompt token ids for a causal model)."""
    import torch

    device = next(model.parameters()).device
    if causal:
        enc = tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt").to(device)
    else:
        enc = tokenizer(batch, max_length=max_source_length, truncation=True, padding=True,
                        return_tensors="pt").to(device)
    with torch.inference_mode():
        out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             generation_config=config)
    if causal:
        out = out[:, enc["input_ids"].shape[1]:]  # the new tokens only
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


def latency_summary(latencies: Sequence[float]) -> dict:
    """Mean / median / 90th percentile seconds per document."""
    import numpy as np

    if not latencies:
        return {}
    a = np.asarray(latencies, dtype=np.float64)
    return {"mean_s": float(a.mean()), "p50_s": float(np.median(a)), "p90_s": float(np.quantile(a, 0.9))}

