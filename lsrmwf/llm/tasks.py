"""``generate_rationales.py``'s tasks, registered by name (:mod:`.registry`): ``rationales`` (LSR-MWF
steps 1-2, :class:`lsrmwf.llm.pipeline.RationaleTask`), ``basic_reading`` (BRD annotations,
:class:`~lsrmwf.llm.pipeline.FewShotReadingTask` / :class:`~lsrmwf.llm.pipeline.ReadingTask`) and
``teacher_logprobs`` (:class:`lsrmwf.llm.teacher_logprobs.TeacherLogprobsTask`). Each entry holds its
own arguments, the documents it needs and how its task object is built and checked."""

import os
import sys
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from ..io import InputError
from ..presets import HUB_DATASETS, fill_from_preset
from .arguments import RationaleDataArguments
from .registry import LLM_TASKS, LLMTaskBuilder, register_llm_task


@dataclass
class RationaleArguments:
    """How rationale rows are dug and which are kept (LSR-MWF steps 1-2)."""

    _argument_group_name = "rationales"

    preset: Optional[str] = field(
        default=None,
        metadata={"help": "cnndm or xsum: fills --rationales, --score, --score_threshold (implied by known hub "
                          "datasets)."})
    rationales: Optional[str] = field(
        default=None,
        metadata={"help": "per_sentence (one rationale per gold summary sentence, CNN/DM) or one (XSum).",
                  "choices": ["per_sentence", "one"]})
    max_rationales: int = field(
        default=8,
        metadata={"help": "Cap on rationales per document; extra summary sentences join the last one."})
    score: Optional[str] = field(
        default=None,
        metadata={"help": "score1 = 1-R1*R2/(R1+R2) (CNN/DM) or score2 = 1-(R1+R2+RL)/3 (XSum); lower is better.",
                  "choices": ["score1", "score2"]})
    score_threshold: Optional[float] = field(
        default=None,
        metadata={"help": "Keep a row iff score <= threshold (fractions: 0.85 CNN/DM, 0.65 XSum)."})
    score_on: str = field(
        default="total",
        metadata={"help": "Which LLM summary is scored against the gold one: total (S^tol), sub_summaries (S^mul, "
                          "concatenated), or both (kept only if both pass; the row's score is the worse one).",
                  "choices": ["total", "sub_summaries", "both"]})
    rescore: bool = field(
        default=False,
        metadata={"help": "Only re-apply --score/--score_threshold/--score_on to the finished rows of --output "
                          "from their stored ROUGE (no LLM, no dataset), then print the score report."})
    rouge_measure: str = field(
        default="fmeasure",
        metadata={"help": "ROUGE F1 (fmeasure) or recall (the paper's Eq. 6) or precision.",
                  "choices": ["fmeasure", "recall", "precision"]})
    score2_terms: Optional[str] = field(
        default=None,
        metadata={"help": "Score2's third term: rougeL (the presets' reading) or rouge3 (Eq. 8 as printed); "
                          "default: the preset's, else rougeL.",
                  "choices": ["rougeL", "rouge3"]})
    compare: bool = field(
        default=False,
        metadata={"help": "With --rescore: also print, for each reading (F1 or recall; for score2 ROUGE-L or "
                          "ROUGE-3) and each --score_on, how many rows it keeps. Older files need the dataset "
                          "flags to recompute P/R/F."})


@dataclass
class TeacherLogprobsArguments:
    """The teacher's top-K log-probs per token (sparse logit KD)."""

    _argument_group_name = "teacher_logprobs"

    top_logprobs: int = field(
        default=10,
        metadata={"help": "teacher_logprobs: K, the alternatives (with log-probs) kept per generated token."})
    prompt_template: str = field(
        default="Summarize:\n{document}\n\nSummary:",
        metadata={"help": "teacher_logprobs: the prompt ({document} is replaced); use the one train.py's student "
                          "gets."})
    logprobs_api: Optional[str] = field(
        default=None,
        metadata={"help": "teacher_logprobs: chat (/v1/chat/completions, logprobs+top_logprobs; the default for "
                          "--logprobs_target teacher_summary) or completions (/v1/completions, raw prompt; base "
                          "models; always for --logprobs_target reference).",
                  "choices": ["chat", "completions"]})
    logprobs_target: str = field(
        default="teacher_summary",
        metadata={"help": "teacher_logprobs: whose tokens get the teacher's top-K log-probs: teacher_summary (the "
                          "teacher's own summary, generated) or reference (the dataset's reference summary, "
                          "scored: the prompt + reference go to /v1/completions with echo=true and max_tokens=0; "
                          "needs a server that returns prompt log-probs, e.g. vLLM, not llama-server). train.py "
                          "--teacher_logprobs_file then trains on that text.",
                  "choices": ["teacher_summary", "reference"]})


@dataclass
class BasicReadingArguments:
    """Basic reading (BRD): which requests per sentence, and how a .txt splits into passages."""

    _argument_group_name = "basic_reading"

    txt_passages: str = field(
        default="line",
        metadata={"help": "basic_reading with a .txt --data_file: one passage per 'line' or per blank-line "
                          "separated 'paragraph'.",
                  "choices": ["line", "paragraph"]})
    brd_format: str = field(
        default="fewshot",
        metadata={"help": "basic_reading: fewshot (the BRD paper's: NER and QRA as separate few-shot plain-text "
                          "requests per sentence, one row per request; compose passages with compose_brd.py) or "
                          "json (the older form: one JSON request per sentence for entities and QA together, read "
                          "by the seq2seq --stage basic_reading).",
                  "choices": ["fewshot", "json"]})
    brd_behaviours: str = field(
        default="ner,qra",
        metadata={"help": "basic_reading --brd_format fewshot: which behaviours to request, comma-separated: ner "
                          "(named entity recognition), qra (question raising and answering)."})
    brd_api: str = field(
        default="chat",
        metadata={"help": "basic_reading --brd_format fewshot: chat (/v1/chat/completions, the few-shot prompt as "
                          "one user turn; chat models such as the paper's Vicuna) or completions (/v1/completions, "
                          "the prompt as raw text for a base model to continue, stopped at the blank line that "
                          "ends every example).",
                  "choices": ["chat", "completions"]})
    brd_fewshot_file: Optional[str] = field(
        default=None,
        metadata={"help": "basic_reading --brd_format fewshot: the few-shot prompt file (description, template "
                          "with {sentence} and {output}, examples per behaviour); default "
                          "lsrmwf/llm/brd_fewshot.json."})
    brd_context: str = field(
        default="sentence",
        metadata={"help": "basic_reading --brd_format json: show the model only the sentence (as in the BRD paper) "
                          "or its whole passage.",
                  "choices": ["sentence", "passage"]})


def selection_of(pipe: RationaleArguments, data: RationaleDataArguments, needed=("score", "score_threshold")):
    """The rationale selection settings (preset-filled), for a run or for ``--rescore``; every setting in
    ``needed`` must end up set."""
    from .pipeline import Selection

    preset = pipe.preset or HUB_DATASETS.get(data.dataset_name or "", {}).get("preset")
    fill_from_preset(pipe, preset, fields=("rationales", "score", "score_threshold", "score2_terms"))
    missing = [f"--{k}" for k in needed if getattr(pipe, k) is None]
    if missing:
        raise InputError(f"{', '.join(missing)} not set: give --preset cnndm|xsum or set them explicitly")
    return Selection(pipe.score, pipe.score_threshold, pipe.score_on, pipe.rouge_measure,
                     pipe.score2_terms or "rougeL")


def report_scores(rows, selection, output: str) -> dict:
    """The score report: a line on stderr and a histogram PNG beside ``output``."""
    from .selection import format_score_report, plot_score_report, score_report

    report = score_report(rows, selection.score, selection.score_threshold, selection.score_on,
                          selection.score2_terms)
    plot = None
    if report["rows"]:
        plot = plot_score_report(report, os.path.splitext(output)[0] + ".scores.png")
    print(format_score_report(report, plot), file=sys.stderr)
    return {k: v for k, v in report.items() if k != "scores"}


@register_llm_task("rationales")
class Rationales(LLMTaskBuilder):
    summary = "paper steps 1-2"
    arguments = (RationaleArguments,)

    def passages(self, args):
        return args[RationaleDataArguments].load_split(require_summary=True)

    def build(self, args):
        from .pipeline import RationaleTask

        pipe, shared = args[RationaleArguments], args[PipelineArguments]
        selection = selection_of(pipe, args[RationaleDataArguments], needed=("rationales", "score", "score_threshold"))
        return RationaleTask(selection, rationales=pipe.rationales, max_rationales=pipe.max_rationales,
                             max_document_words=shared.max_document_words)

    def report(self, task, args, summary: dict) -> None:
        from ..io import iter_jsonl

        output = args[PipelineArguments].output
        rows = [row for _, row in iter_jsonl(output, tolerate_torn_tail=True)]
        summary["selection"] = report_scores(rows, task.selection, output)

    def rescore(self, args) -> dict:
        """``--rescore``: the keep rule applied again to the finished rows of ``--output`` (no LLM; the dataset
        only for older rows without stored P/R/F), with ``--compare`` the kept counts of every reading."""
        from .rescoring import rescore_and_compare

        output = args[PipelineArguments].output
        if not output:
            raise InputError("--rescore needs --output (the finished rationale file)")
        pipe, data = args[RationaleArguments], args[RationaleDataArguments]
        selection = selection_of(pipe, data)
        rows = rescore_and_compare(output, selection, data if data.dataset_name or data.data_file else None,
                                   pipe.compare)
        return {"rescored": sum(1 for r in rows if r.get("error") is None),
                "selection": report_scores(rows, selection, output)}


@register_llm_task("basic_reading")
class BasicReading(LLMTaskBuilder):
    summary = "BRD: per sentence, named entities and a question with its answer"
    arguments = (BasicReadingArguments,)

    def passages(self, args):
        """Passages; a .txt --data_file is read as passages too (no summaries needed)."""
        from ..data.loading import load_txt_passages

        data, brd = args[RationaleDataArguments], args[BasicReadingArguments]
        if data.data_file and data.data_file.lower().endswith(".txt"):
            return load_txt_passages(data.data_file, brd.txt_passages, data.max_examples)
        return data.load_split(require_summary=False)

    def build(self, args):
        from . import brd_prompts
        from .pipeline import FewShotReadingTask, ReadingTask

        brd = args[BasicReadingArguments]
        if brd.brd_format == "json":
            return ReadingTask(context=brd.brd_context, max_document_words=args[PipelineArguments].max_document_words)
        path = brd.brd_fewshot_file or brd_prompts.DEFAULT_FEWSHOT_FILE
        fewshot = brd_prompts.load_fewshot(path)
        return FewShotReadingTask(fewshot, tuple(brd_prompts.select_behaviours(fewshot, brd.brd_behaviours, path)),
                                  api=brd.brd_api)


@register_llm_task("teacher_logprobs")
class TeacherLogprobs(LLMTaskBuilder):
    summary = "the teacher's summary with top-K log-probs per token, for train.py --teacher_logprobs_file"
    arguments = (TeacherLogprobsArguments,)

    def passages(self, args):
        # the teacher writes its own summary, unless it scores the reference
        reference = args[TeacherLogprobsArguments].logprobs_target == "reference"
        return args[RationaleDataArguments].load_split(require_summary=reference)

    def build(self, args):
        from ..data.causal import check_template
        from .teacher_logprobs import TeacherLogprobsTask

        tl = args[TeacherLogprobsArguments]
        if tl.top_logprobs < 1:
            raise InputError(f"--top_logprobs must be at least 1, got {tl.top_logprobs}")
        check_template(tl.prompt_template)
        reference = tl.logprobs_target == "reference"
        api = tl.logprobs_api or ("completions" if reference else "chat")
        if reference and api != "completions":
            raise InputError("--logprobs_target reference scores given text through /v1/completions (echo=true); "
                             "--logprobs_api chat cannot: leave --logprobs_api out or give completions")
        return TeacherLogprobsTask(top_logprobs=tl.top_logprobs, prompt_template=tl.prompt_template, api=api,
                                   max_document_words=args[PipelineArguments].max_document_words,
                                   target=tl.logprobs_target)


@dataclass
class TaskAnswersArguments:
    """TaskDistillation: how the teacher is asked for its answer to each training input."""

    _argument_group_name = "task_answers"

    task_answers_api: str = field(
        default="completions",
        metadata={"help": "task_answers: completions (the prompt as raw text to continue, /v1/completions) or chat "
                          "(the prompt as one user turn).", "choices": ["completions", "chat"]})


@register_llm_task("task_answers")
class TaskAnswers(LLMTaskBuilder):
    summary = "TaskDistillation: the teacher's answer to each task training input, mapped to a choice"
    arguments = (TaskAnswersArguments,)

    def passages(self, args):
        from .task_answers import read_task_rows

        data = args[RationaleDataArguments]
        if not data.data_file:
            raise InputError("--task task_answers needs --data_file: a split file of python -m "
                             "lsrmwf.commands.task_data (e.g. tasks/train/rte.jsonl)")
        return read_task_rows(data.data_file, data.max_examples)

    def build(self, args):
        from .task_answers import TaskAnswersTask

        return TaskAnswersTask(api=args[TaskAnswersArguments].task_answers_api)


DEFAULT_TASK = "rationales"
NAMES = [DEFAULT_TASK] + sorted(name for name in LLM_TASKS if name != DEFAULT_TASK)
HELP = [f"{name} ({LLM_TASKS[name].summary})" for name in NAMES]


@dataclass
class PipelineArguments:
    """The output, the task and what every task shares."""

    _argument_group_name = "output and task"

    output: str = field(default=None, metadata={"help": "Output JSONL (required). An existing file is resumed."})
    task: str = field(
        default=DEFAULT_TASK,
        metadata={"help": ", ".join(HELP[:-1]) + " or " + HELP[-1] + ".",
                  "choices": NAMES})
    max_document_words: Optional[int] = field(
        default=None,
        metadata={"help": "Cut documents to their first N words in prompts (default: whole document)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


def argument_classes() -> Tuple[type, ...]:
    """The parser's dataclasses: the shared ones, then each task's own (in registry order)."""
    from .arguments import EndpointArguments

    own = [c for name in NAMES for c in LLM_TASKS[name].arguments]
    return (RationaleDataArguments, EndpointArguments, PipelineArguments, *dict.fromkeys(own))


def build_task(args: Mapping[type, object]):
    """Check every argument before any request; return ``(builder, task object, client)``."""
    from .arguments import EndpointArguments, build_client, check_endpoint, check_writable_file

    endpoint, shared = args[EndpointArguments], args[PipelineArguments]
    check_endpoint(endpoint)
    if not shared.output:
        raise InputError("--output is required")
    if endpoint.concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    check_writable_file(shared.output, "--output")
    builder = LLM_TASKS[shared.task]()
    return builder, builder.build(args), build_client(endpoint)


def read_endpoint_config(path: str, flag: str = "--teacher_endpoint_config"):
    """The endpoint arguments (:class:`~lsrmwf.llm.arguments.EndpointArguments`) a YAML or JSON file of
    ``generate_rationales.py``'s arguments gives, such as the ``<output>.config.yaml`` it saves beside its output
    (other keys of that command are allowed and unused; the API key comes from the file or ``$OPENAI_API_KEY``).
    Unknown keys, bad values and a missing ``base_url``/``model`` are one-line errors naming ``flag`` and the file."""
    import contextlib
    import io as _io

    from transformers import HfArgumentParser

    from ..io.config import expand_config
    from .arguments import EndpointArguments, check_endpoint

    parser = HfArgumentParser(argument_classes(), allow_abbrev=False)
    try:
        argv = expand_config(parser, ["--config", path])
    except InputError as e:
        raise InputError(f"{flag}: {e}") from None
    err = _io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parsed = parser.parse_args_into_dataclasses(args=argv)
    except SystemExit:
        last = (err.getvalue().strip().splitlines() or ["unreadable arguments"])[-1]
        raise InputError(f"{flag} {path}: {last}") from None
    except InputError as e:
        raise InputError(f"{flag} {path}: {e}") from None
    endpoint = next(a for a in parsed if isinstance(a, EndpointArguments))
    try:
        check_endpoint(endpoint)
    except InputError as e:
        raise InputError(f"{flag} {path}: {e}") from None
    return endpoint


__all__ = ["LLM_TASKS", "PipelineArguments", "argument_classes", "build_task", "read_endpoint_config", "report_scores",
           "selection_of"]
