"""Scoring systems, the results table (the paper's Table 2) and the files under ``--output_dir``.

Per system: ``scores.jsonl`` (one row per example), ``metrics.json`` (``rouge1``, ``rouge2``,
``rougeL``, ``rougeLsum`` as F1 x 100 and, when computed, ``bertscore_precision``,
``bertscore_recall``, ``bertscore_f1``; nothing else) and ``report.json`` (95% bootstrap intervals,
where every number came from, generation speed). For all systems together: ``results.md`` and
``results.json``, with paired bootstrap significance against the baseline. Everything is computed
before anything is written, and every file is written atomically.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..io import InputError, write_json_atomic, write_jsonl_atomic
from .bertscore import BERTSCORE_KEYS, BertScorer, resolve_model
from .inputs import Examples, check_same_ids, pair_all, read_examples
from .rouge import ROUGE_KEYS, rouge_scores, rouge_settings
from .stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, paired_bootstrap

COLUMNS = {"rouge1": "R-1", "rouge2": "R-2", "rougeL": "R-L", "rougeLsum": "R-Lsum", "bertscore_f1": "BS-F1"}
# The paper's (and BRIO's) R-L is the summary-level ROUGE-L: our rougeLsum, sentences on separate lines.
PAPER_RL = "rougeLsum"
HEADERS = {**COLUMNS, PAPER_RL: "R-Lsum (paper's R-L)"}
# The paper does not name its BERTScore model. Its scores (0.85-0.93) are in the range of bert_score's English
# default (roberta-large, layer 17, no idf, not rescaled), so that setting is inferred, not stated.
PAPER_BERTSCORE = {"model": "roberta-large", "num_layers": 17, "idf": False, "rescale_with_baseline": False}


def bertscore_comparable(info: dict) -> bool:
    """Whether BERTScore ran in the setting inferred for the paper (see ``PAPER_BERTSCORE``)."""
    return all(info.get(k) == v for k, v in PAPER_BERTSCORE.items())


@dataclass
class ScoringOptions:
    use_stemmer: bool = True
    rouge_workers: Optional[int] = None
    rouge_tokenizer: str = "default"
    bertscore: bool = True
    bertscore_model: Optional[str] = None
    bertscore_num_layers: Optional[int] = None
    bertscore_batch_size: int = 64
    bertscore_idf: bool = False
    bertscore_rescale_with_baseline: bool = False
    bertscore_baseline_path: Optional[str] = None
    bertscore_lang: str = "en"
    device: Optional[str] = None
    bootstrap_resamples: int = DEFAULT_RESAMPLES
    confidence: float = 0.95
    seed: int = DEFAULT_SEED
    significance_level: float = 0.05
    progress: bool = True


@dataclass
class SystemResult:
    name: str
    ids: List[str]
    predictions: List[str]
    references: List[str]
    scores: Dict[str, np.ndarray]
    ci: Dict[str, Dict[str, float]]
    sources: Dict[str, str] = field(default_factory=dict)
    extra: Dict[str, object] = field(default_factory=dict)  # e.g. generation speed
    per_example: Dict[str, Sequence[float]] = field(default_factory=dict)  # e.g. latency_s

    @property
    def metrics(self) -> Dict[str, float]:
        return {k: float(np.mean(v)) for k, v in self.scores.items()}


def score_systems(
    systems: Mapping[str, Sequence[str]],
    ids: Sequence[str],
    references: Sequence[str],
    options: ScoringOptions,
    sources: Optional[Mapping[str, Mapping[str, str]]] = None,
    log=print,
) -> List[SystemResult]:
    """Score several systems' predictions (aligned with ``ids``/``references``)."""
    if not systems:
        raise InputError("nothing to score: give --predictions and/or --model_name_or_path")
    empty = {name: sum(1 for p in preds if not p.strip()) for name, preds in systems.items()}
    for name, n in empty.items():
        if n:
            log(f"warning: {name}: {n} of {len(ids)} predictions are empty (they score 0)")
    scorer = None
    if options.bertscore:
        model = resolve_model(options.bertscore_model, options.bertscore_num_layers)
        log(f"BERTScore model: {model.source}; layer {model.num_layers} ({model.layer_choice})")
        scorer = BertScorer(
            model,
            batch_size=options.bertscore_batch_size,
            device=options.device,
            idf_sentences=references if options.bertscore_idf else None,
            rescale_with_baseline=options.bertscore_rescale_with_baseline,
            baseline_path=options.bertscore_baseline_path,
            lang=options.bertscore_lang,
        )
    settings = rouge_settings(options.use_stemmer, tokenizer=options.rouge_tokenizer)
    log(f"ROUGE-Lsum sentences: {settings['lsum_sentence_splitter']}")
    results = []
    for name, predictions in systems.items():
        scores = rouge_scores(predictions, references, use_stemmer=options.use_stemmer,
                              num_workers=options.rouge_workers,
                              progress=options.progress, tokenizer=options.rouge_tokenizer)
        info = {"rouge": settings}
        if scorer is not None:
            scores.update(scorer(predictions, references, progress=options.progress))
            info["bertscore"] = {**scorer.model.as_dict(), "idf": options.bertscore_idf,
                                 "rescale_with_baseline": options.bertscore_rescale_with_baseline}
            info["bertscore"]["comparable_with_paper"] = bertscore_comparable(info["bertscore"])
        info = {"scoring": info}
        ci = bootstrap_ci(scores, options.confidence, options.bootstrap_resamples, options.seed)
        results.append(SystemResult(name, list(ids), list(predictions), list(references), scores, ci,
                                    dict((sources or {}).get(name, {})), info))
    return results


def _p(p: float, resamples: int) -> str:
    # A p-value of 0 only says that no resample crossed zero.
    return f"<{1 / resamples:.2g}" if p == 0 else f"{p:.3f}"


def _fmt(key: str, value: float) -> str:
    return f"{value:.4f}" if key.startswith("bertscore") else f"{value:.2f}"


def results_table(results: Sequence[SystemResult], baseline: Optional[str], options: ScoringOptions) -> dict:
    """The comparison as JSON-ready data: metrics, intervals and (with a baseline) paired tests."""
    names = [r.name for r in results]
    if baseline is not None and baseline not in names:
        raise InputError(f"--baseline {baseline!r} is not one of the systems {names}")
    check_same_ids([(r.name, r.ids) for r in results])
    base = next((r for r in results if r.name == baseline), None)
    systems = []
    for r in results:
        row = {"name": r.name, "n": len(r.ids), "metrics": r.metrics, "ci": r.ci, "sources": r.sources}
        if base is not None and r is not base:
            row["vs_baseline"] = paired_bootstrap(r.scores, base.scores, options.confidence,
                                                  options.bootstrap_resamples, options.seed)
        systems.append(row)
    return {
        "scoring": results[0].extra.get("scoring", {}),
        "baseline": baseline,
        "confidence": options.confidence,
        "bootstrap_resamples": options.bootstrap_resamples,
        "significance_level": options.significance_level,
        "seed": options.seed,
        "systems": systems,
    }


def markdown_table(table: dict) -> str:
    """Markdown for :func:`results_table`: mean [95% CI], with ▲/▼ for significant differences."""
    keys = [k for k in COLUMNS if all(k in s["metrics"] for s in table["systems"])]
    alpha = table["significance_level"]
    pct = round(100 * table["confidence"])
    lines = [
        "| System | n | " + " | ".join(HEADERS[k] for k in keys) + " |",
        "|---|---:|" + "---:|" * len(keys),
    ]
    for s in table["systems"]:
        cells = []
        for k in keys:
            ci = s["ci"][k]
            cell = f"{_fmt(k, s['metrics'][k])} [{_fmt(k, ci['low'])}, {_fmt(k, ci['high'])}]"
            test = s.get("vs_baseline", {}).get(k)
            if test is not None and test["p_value"] < alpha:
                cell += " ▲" if test["delta"] > 0 else " ▼"
            cells.append(cell)
        name = s["name"] + (" (baseline)" if s["name"] == table["baseline"] else "")
        lines.append(f"| {name} | {s['n']} | " + " | ".join(cells) + " |")
    rouge = table.get("scoring", {}).get("rouge", {})
    how = ["rouge_score"] + (["stemmed"] if rouge.get("use_stemmer", True) else []) \
        + ([f"{rouge['tokenizer']} tokens"] if rouge.get("tokenizer", "default") != "default" else [])
    notes = [f"ROUGE: F1 x 100 ({', '.join(how)}); BS: BERTScore F1. Brackets: {pct}% bootstrap CI "
             f"({table['bootstrap_resamples']} resamples)."]
    if PAPER_RL in keys:
        notes.append("R-Lsum is the paper's R-L: summary-level ROUGE-L over the summary's sentences, "
                     "one per line (as BRIO reports it); R-L is ROUGE-L over the whole text as one sequence.")
    compared = [s for s in table["systems"] if "vs_baseline" in s]
    if compared:
        notes.append(f"▲/▼: better/worse than the baseline, paired bootstrap p < {alpha:g}.")
        lines += ["", *notes, "", f"| System vs {table['baseline']} | "
                  + " | ".join(f"Δ{COLUMNS[k]} (p)" for k in keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        for s in compared:
            cells = [f"{s['vs_baseline'][k]['delta']:+.{4 if k.startswith('bertscore') else 2}f} "
                     f"({_p(s['vs_baseline'][k]['p_value'], table['bootstrap_resamples'])})" for k in keys]
            lines.append(f"| {s['name']} | " + " | ".join(cells) + " |")
    else:
        lines += ["", *notes]
    scoring = table.get("scoring", {})
    if "bertscore" in scoring:
        bs = scoring["bertscore"]
        verdict = ("the paper's inferred setting (roberta-large, layer 17, not rescaled; the paper names no model, "
                   "its 0.85-0.93 fit this one), comparable with its scores"
                   if bs.get("comparable_with_paper") else
                   "NOT the paper's inferred setting: its BS (0.85-0.93) fits roberta-large, layer 17, without "
                   "baseline rescaling (--bertscore_model roberta-large); the paper names no model")
        lines += ["", f"BERTScore: {bs['source']}, layer {bs['num_layers']}"
                      f"{', rescaled with baseline' if bs.get('rescale_with_baseline') else ''}; {verdict}."]
    if "rouge" in scoring:
        lines += ["", f"ROUGE-Lsum sentences: {scoring['rouge']['lsum_sentence_splitter']}."]
    return "\n".join(lines) + "\n"


def write_outputs(results: Sequence[SystemResult], table: dict, output_dir: str) -> Dict[str, str]:
    """Write every file; per-system files go in ``output_dir`` itself when there is one system,
    else in ``output_dir/<system>/``."""
    os.makedirs(output_dir, exist_ok=True)
    written = {}
    for r in results:
        target = output_dir if len(results) == 1 else os.path.join(output_dir, _safe(r.name))
        os.makedirs(target, exist_ok=True)
        rows = []
        for k, i in enumerate(r.ids):
            row = {"id": i}
            row.update({key: float(v[k]) for key, v in r.scores.items()})
            row.update({key: float(v[k]) for key, v in r.per_example.items()})
            rows.append(row)
        write_jsonl_atomic(os.path.join(target, "scores.jsonl"), rows)
        metrics = {k: r.metrics[k] for k in (*ROUGE_KEYS, *BERTSCORE_KEYS) if k in r.scores}
        write_json_atomic(os.path.join(target, "metrics.json"), metrics)
        detail = {"system": r.name, "n": len(r.ids), "metrics": metrics,
                  "ci95" if table["confidence"] == 0.95 else "ci": r.ci, "sources": r.sources, **r.extra}
        write_json_atomic(os.path.join(target, "report.json"), detail)
        written[r.name] = target
    write_json_atomic(os.path.join(output_dir, "results.json"), table)
    md = markdown_table(table)
    tmp = os.path.join(output_dir, f"results.md.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(md)
    os.replace(tmp, os.path.join(output_dir, "results.md"))
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "system"


def system_name(path: str) -> str:
    """A short name for a prediction file: its stem, or its directory for ``predictions.*``."""
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    if stem in ("predictions", "generated_predictions") and os.path.dirname(os.path.abspath(path)):
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return stem


def compare(
    systems: Mapping[str, Union[str, Sequence[str]]],
    references: Union[str, Sequence[str], Examples, None] = None,
    baseline: Optional[str] = None,
    output_dir: Optional[str] = None,
    options: Optional[ScoringOptions] = None,
    reference_field: str = "reference",
    prediction_field: str = "prediction",
    print_table: bool = True,
    log=print,
) -> dict:
    """Score several systems against the same references and build the Table-2 style comparison.

    ``systems`` maps a name to a predictions file (``.jsonl``/``.txt``) or to a list of summaries
    in reference order. ``references`` is a file, a list of strings, :class:`Examples`, or None to
    use the ``reference`` field of the (first) ``.jsonl`` predictions file. Prints the markdown
    table, writes everything under ``output_dir`` when given, and returns :func:`results_table`'s
    data with ``"markdown"`` added.
    """
    options = options or ScoringOptions()
    loaded = {}
    for name, value in systems.items():
        if isinstance(value, str):
            loaded[name] = read_examples(value, prediction_field, "prediction", allow_empty=True)
        else:
            loaded[name] = Examples(f"<{name}>", list(value), None, list(range(1, len(value) + 1)))
    if references is None:
        first = next(iter(loaded.values()))
        refs = first.own_references()
    elif isinstance(references, Examples):
        refs = references
    elif isinstance(references, str):
        refs = read_examples(references, reference_field, "reference")
    else:
        refs = Examples("<references>", list(references), None, list(range(1, len(references) + 1)))
    ids, aligned, ref_texts = pair_all(loaded, refs)
    results = score_systems(aligned, ids, ref_texts, options, log=log)
    table = results_table(results, baseline, options)
    md = markdown_table(table)
    if output_dir is not None:
        write_outputs(results, table, output_dir)
    if print_table:
        log(md)
    return {**table, "markdown": md}

