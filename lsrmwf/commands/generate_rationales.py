"""``generate_rationales.py``: command-line arguments and entry point (see ``--help``)."""

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional

from ..data.arguments import DatasetSplitArguments
from ..io import InputError
from ..presets import HUB_DATASETS, fill_from_preset

logger = logging.getLogger("lsrmwf.llm")


@dataclass
class DataArguments(DatasetSplitArguments):
    txt_passages: str = field(default="line", metadata={"help": "basic_reading with a .txt --data_file: one passage per 'line' or per blank-line separated 'paragraph'.", "choices": ["line", "paragraph"]})


@dataclass
class EndpointArguments:
    base_url: List[str] = field(default_factory=list, metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1. Give it several times to spread load over replicas.", "action": "extend"})
    model: Optional[str] = field(default=None, metadata={"help": "Model name sent with each request (required)."})
    api_key: Optional[str] = field(default=None, metadata={"help": "API key (default: $OPENAI_API_KEY; local servers need none). Never written to any file or log."})
    concurrency: int = field(default=8, metadata={"help": "Documents (basic_reading: sentences) in flight at once."})
    timeout: float = field(default=300.0, metadata={"help": "Seconds per request attempt before the client gives up on it (then retries). The default lets a slow local model write a long answer; a hung server costs at most timeout x (max_retries + 1) per request."})
    max_retries: int = field(default=2, metadata={"help": "The openai client's retries per request (429 honours Retry-After; 5xx/timeouts back off)."})
    fail_fast_rows: int = field(default=3, metadata={"help": "Stop (rc 1, with the server's error) when the first N rows all fail with the same request error (refused connection, one HTTP status, timeouts). 0: never."})
    max_failed_fraction: float = field(default=0.5, metadata={"help": "Stop (rc 1) when more than this fraction of the rows failed, checked from the 20th row on. 1.0: never."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (the paper uses 0)."})
    max_tokens: int = field(default=1024, metadata={"help": "Answer length limit per request."})
    top_p: Optional[float] = field(default=None, metadata={"help": "Nucleus sampling (default: the server's)."})
    seed: Optional[int] = field(default=None, metadata={"help": "Sampling seed, where the server supports it."})
    extra_body: Optional[str] = field(default=None, metadata={"help": 'Extra request fields as JSON, e.g. \'{"repeat_penalty": 1.1}\' for llama.cpp (part of the cache key).'})
    response_format: str = field(default="json_schema", metadata={"help": "json_schema (structured output), json_object, or text (line format, for servers without response_format).", "choices": ["json_schema", "json_object", "text"]})


@dataclass
class PipelineArguments:
    output: str = field(default=None, metadata={"help": "Output JSONL (required). An existing file is resumed."})
    task: str = field(default="rationales", metadata={"help": "rationales (paper steps 1-2), basic_reading (BRD: per sentence, named entities and a question with its answer) or teacher_logprobs (the teacher's summary with top-K log-probs per token, for train.py --teacher_logprobs_file).", "choices": ["rationales", "basic_reading", "teacher_logprobs"]})
    top_logprobs: int = field(default=10, metadata={"help": "teacher_logprobs: K, the alternatives (with log-probs) kept per generated token."})
    prompt_template: str = field(default="Summarize:\n{document}\n\nSummary:", metadata={"help": "teacher_logprobs: the prompt ({document} is replaced); use the one train.py's student gets."})
    logprobs_api: Optional[str] = field(default=None, metadata={"help": "teacher_logprobs: chat (/v1/chat/completions, logprobs+top_logprobs; the default for --logprobs_target teacher_summary) or completions (/v1/completions, raw prompt; base models; always for --logprobs_target reference).", "choices": ["chat", "completions"]})
    logprobs_target: str = field(default="teacher_summary", metadata={"help": "teacher_logprobs: whose tokens get the teacher's top-K log-probs: teacher_summary (the teacher's own summary, generated) or reference (the dataset's reference summary, scored: the prompt + reference go to /v1/completions with echo=true and max_tokens=0; needs a server that returns prompt log-probs, e.g. vLLM, not llama-server). train.py --teacher_logprobs_file then trains on that text.", "choices": ["teacher_summary", "reference"]})
    preset: Optional[str] = field(default=None, metadata={"help": "cnndm or xsum: fills --rationales, --score, --score_threshold (implied by known hub datasets)."})
    rationales: Optional[str] = field(default=None, metadata={"help": "per_sentence (one rationale per gold summary sentence, CNN/DM) or one (XSum).", "choices": ["per_sentence", "one"]})
    max_rationales: int = field(default=8, metadata={"help": "Cap on rationales per document; extra summary sentences join the last one."})
    score: Optional[str] = field(default=None, metadata={"help": "score1 = 1-R1*R2/(R1+R2) (CNN/DM) or score2 = 1-(R1+R2+RL)/3 (XSum); lower is better.", "choices": ["score1", "score2"]})
    score_threshold: Optional[float] = field(default=None, metadata={"help": "Keep a row iff score <= threshold (fractions: 0.85 CNN/DM, 0.65 XSum)."})
    score_on: str = field(default="total", metadata={"help": "Which LLM summary is scored against the gold one: total (S^tol), sub_summaries (S^mul, concatenated), or both (kept only if both pass; the row's score is the worse one).", "choices": ["total", "sub_summaries", "both"]})
    rescore: bool = field(default=False, metadata={"help": "Only re-apply --score/--score_threshold/--score_on to the finished rows of --output from their stored ROUGE (no LLM, no dataset), then print the score report."})
    rouge_measure: str = field(default="fmeasure", metadata={"help": "ROUGE F1 (fmeasure) or recall (the paper's Eq. 6) or precision.", "choices": ["fmeasure", "recall", "precision"]})
    score2_terms: Optional[str] = field(default=None, metadata={"help": "Score2's third term: rougeL (the presets' reading) or rouge3 (Eq. 8 as printed); default: the preset's, else rougeL.", "choices": ["rougeL", "rouge3"]})
    compare: bool = field(default=False, metadata={"help": "With --rescore: also print, for each reading (F1 or recall; for score2 ROUGE-L or ROUGE-3) and each --score_on, how many rows it keeps. Older files need the dataset flags to recompute P/R/F."})
    max_document_words: Optional[int] = field(default=None, metadata={"help": "Cut documents to their first N words in prompts (default: whole document)."})
    brd_format: str = field(default="fewshot", metadata={"help": "basic_reading: fewshot (the BRD paper's: NER and QRA as separate few-shot plain-text requests per sentence, one row per request; compose passages with compose_brd.py) or json (the older form: one JSON request per sentence for entities and QA together, read by the seq2seq --stage basic_reading).", "choices": ["fewshot", "json"]})
    brd_behaviours: str = field(default="ner,qra", metadata={"help": "basic_reading --brd_format fewshot: which behaviours to request, comma-separated: ner (named entity recognition), qra (question raising and answering)."})
    brd_api: str = field(default="chat", metadata={"help": "basic_reading --brd_format fewshot: chat (/v1/chat/completions, the few-shot prompt as one user turn; chat models such as the paper's Vicuna) or completions (/v1/completions, the prompt as raw text for a base model to continue, stopped at the blank line that ends every example).", "choices": ["chat", "completions"]})
    brd_fewshot_file: Optional[str] = field(default=None, metadata={"help": "basic_reading --brd_format fewshot: the few-shot prompt file (description, template with {sentence} and {output}, examples per behaviour); default lsrmwf/llm/brd_fewshot.json."})
    brd_context: str = field(default="sentence", metadata={"help": "basic_reading --brd_format json: show the model only the sentence (as in the BRD paper) or its whole passage.", "choices": ["sentence", "passage"]})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


def load_passages(data: DataArguments, task: str, logprobs_target: str = "teacher_summary"):
    """Documents for either task; basic_reading also reads .txt files (no summaries needed)."""
    if task == "basic_reading" and data.data_file and data.data_file.lower().endswith(".txt"):
        return load_txt(data.data_file, data.txt_passages, data.max_examples)
    # teacher_logprobs writes its own summary, unless it scores the reference
    return data.load_split(require_summary=task == "rationales" or (task == "teacher_logprobs" and logprobs_target == "reference"))


def load_txt(path: str, unit: str, max_examples: Optional[int] = None):
    """A .txt file as passages (ids = 0-based passage index), one per line or per paragraph."""
    import re

    import datasets

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e})") from None
    chunks = text.splitlines() if unit == "line" else re.split(r"\n\s*\n", text)
    passages = [" ".join(c.split()) for c in chunks if c.strip()]
    if not passages:
        raise InputError(f"{path}: no text found")
    passages = passages[:max_examples] if max_examples is not None else passages
    ids = [str(i) for i in range(len(passages))]
    return datasets.Dataset.from_dict({"id": ids, "document": passages, "summary": [""] * len(passages)})


def build(args_endpoint: EndpointArguments, args_pipe: PipelineArguments, data: DataArguments):
    """Validate the arguments; return ``(task, client)``."""
    from ..llm import brd_prompts
    from ..llm.client import GenerationParams, LLMClient
    from ..llm.pipeline import FewShotReadingTask, RationaleTask, ReadingTask

    if not args_endpoint.base_url:
        raise InputError("--base_url is required (e.g. http://127.0.0.1:8080/v1; start a local server with python -m lsrmwf.llm.server)")
    if not args_endpoint.model:
        raise InputError("--model is required (the name the endpoint serves; llama-server accepts any)")
    if not args_pipe.output:
        raise InputError("--output is required")
    if args_endpoint.concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    check_writable_file(args_pipe.output, "--output")
    if args_pipe.task == "rationales":
        selection = selection_of(args_pipe, data, needed=("rationales", "score", "score_threshold"))
        task = RationaleTask(selection, rationales=args_pipe.rationales, max_rationales=args_pipe.max_rationales,
                             max_document_words=args_pipe.max_document_words)
    elif args_pipe.task == "teacher_logprobs":
        from ..data.causal import check_template
        from ..llm.teacher_logprobs import TeacherLogprobsTask

        if args_pipe.top_logprobs < 1:
            raise InputError(f"--top_logprobs must be at least 1, got {args_pipe.top_logprobs}")
        check_template(args_pipe.prompt_template)
        reference = args_pipe.logprobs_target == "reference"
        api = args_pipe.logprobs_api or ("completions" if reference else "chat")
        if reference and api != "completions":
            raise InputError("--logprobs_target reference scores given text through /v1/completions (echo=true); "
                             "--logprobs_api chat cannot: leave --logprobs_api out or give completions")
        task = TeacherLogprobsTask(top_logprobs=args_pipe.top_logprobs, prompt_template=args_pipe.prompt_template,
                                   api=api, max_document_words=args_pipe.max_document_words, target=args_pipe.logprobs_target)
    elif args_pipe.brd_format == "json":
        task = ReadingTask(context=args_pipe.brd_context, max_document_words=args_pipe.max_document_words)
    else:
        path = args_pipe.brd_fewshot_file or brd_prompts.DEFAULT_FEWSHOT_FILE
        fewshot = brd_prompts.load_fewshot(path)
        task = FewShotReadingTask(fewshot, tuple(brd_prompts.select_behaviours(fewshot, args_pipe.brd_behaviours, path)),
                                  api=args_pipe.brd_api)
    extra_body = {}
    if args_endpoint.extra_body:
        try:
            extra_body = json.loads(args_endpoint.extra_body)
        except json.JSONDecodeError as e:
            raise InputError(f"--extra_body is not valid JSON ({e.msg} at column {e.colno}): {args_endpoint.extra_body!r}") from None
        if not isinstance(extra_body, dict):
            raise InputError(f"--extra_body must be a JSON object, got {args_endpoint.extra_body!r}")
    params = GenerationParams(model=args_endpoint.model, temperature=args_endpoint.temperature, max_tokens=args_endpoint.max_tokens,
                              top_p=args_endpoint.top_p, seed=args_endpoint.seed, response_format=args_endpoint.response_format,
                              extra_body=extra_body)
    api_key = args_endpoint.api_key or os.environ.get("OPENAI_API_KEY")
    client = LLMClient(args_endpoint.base_url, api_key, params, timeout=args_endpoint.timeout, max_retries=args_endpoint.max_retries)
    return task, client


def check_writable_file(path: str, flag: str) -> None:
    """Fail before any request if ``path`` cannot be created or appended to."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot be written ({e.strerror or e})") from None


def failure_policy(args_endpoint: EndpointArguments):
    from ..llm.pipeline import FailurePolicy

    return FailurePolicy(first_rows=args_endpoint.fail_fast_rows, max_failed_fraction=args_endpoint.max_failed_fraction)


class RedactingFilter(logging.Filter):
    """Replaces the API key in every log record this process emits (the message with its arguments)."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = [x for x in secrets if x]

    def filter(self, record: logging.LogRecord) -> bool:
        from ..llm.client import redact

        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
                record.exc_info = None
        return True


def selection_of(pipe: PipelineArguments, data: DataArguments, needed=("score", "score_threshold")):
    """The rationale selection settings (preset-filled), for a run or for ``--rescore``; every setting in
    ``needed`` must end up set."""
    from ..llm.pipeline import Selection

    preset = pipe.preset or HUB_DATASETS.get(data.dataset_name or "", {}).get("preset")
    fill_from_preset(pipe, preset, fields=("rationales", "score", "score_threshold", "score2_terms"))
    missing = [f"--{k}" for k in needed if getattr(pipe, k) is None]
    if missing:
        raise InputError(f"{', '.join(missing)} not set: give --preset cnndm|xsum or set them explicitly")
    return Selection(pipe.score, pipe.score_threshold, pipe.score_on, pipe.rouge_measure, pipe.score2_terms or "rougeL")


def report_scores(rows, selection, output: str) -> dict:
    """The score report: a line on stderr and a histogram PNG beside ``output``."""
    from ..llm.selection import format_score_report, plot_score_report, score_report

    report = score_report(rows, selection.score, selection.score_threshold, selection.score_on, selection.score2_terms)
    plot = None
    if report["rows"]:
        plot = plot_score_report(report, os.path.splitext(output)[0] + ".scores.png")
    print(format_score_report(report, plot), file=sys.stderr)
    return {k: v for k, v in report.items() if k != "scores"}


def format_summary(summary: dict) -> str:
    run, f = summary["this_run"], summary["file"]
    lines = [
        f"this run: {run['finished']}/{run['pending']} rows ({run['failed']} failed) in {run['elapsed_s']:.1f}s, "
        f"{run['rows_per_s']:.3f} rows/s, {run['total_tokens']} tokens ({run['tokens_per_s']:.0f} tokens/s), {run['requests']} requests "
        f"({run['http_requests']} HTTP requests with the client's retries)"
        + (" [interrupted: rerun the same command to resume]" if run["interrupted"] else ""),
        f"{f['output']}: {f['rows_done']} finished rows",
    ]
    if "kept" in f:
        frac = "n/a" if f["kept_fraction"] is None else f"{100 * f['kept_fraction']:.1f}%"
        verb = "n/a" if f["as_verbatim_fraction"] is None else f"{100 * f['as_verbatim_fraction']:.1f}%"
        lines.append(f"kept {f['kept']} ({frac}; the paper kept 71% of CNN/DM, 62% of XSum); "
                     f"associated sentences verbatim in the document: {f['as_verbatim']}/{f['rationales']} ({verb})")
    elif "bytes_per_token" in f:
        bpt = "n/a" if f["bytes_per_token"] is None else f"{f['bytes_per_token']:.1f}"
        whose = "reference tokens scored by the teacher" if f.get("target") == "reference" else "teacher tokens"
        lines.append(f"{f['tokens']} {whose} with top-K log-probs in {f['output']}.bin: {f['payload_bytes']} bytes, "
                     f"{bpt} bytes per token")
    elif "ner_answers" in f:
        lines.append(f"{f['ner_answers']} NER answers ({f['entities']} quoted entities), {f['qra_answers']} QRA answers "
                     f"({f['qa']} question-answer pairs); compose passages with compose_brd.py")
    else:
        lines.append(f"{f['entities']} entities, {f['qa']} question-answer pairs")
    if run["failed"]:
        lines.append(f"{run['failed']} rows failed (their 'error' field says why); rerun the same command to retry them")
    return "\n".join(lines)


def main(argv=None) -> int:
    from transformers import HfArgumentParser

    parser = HfArgumentParser((DataArguments, EndpointArguments, PipelineArguments),
                              description="Dig structured rationales (or basic-reading annotations) with any OpenAI-compatible LLM endpoint; resumable.",
                              allow_abbrev=False)
    from . import parse_dataclasses

    try:
        data, endpoint, pipe = parse_dataclasses(parser, argv)
    except InputError as e:
        print(f"generate_rationales.py: error: {e}", file=sys.stderr)
        return 2
    if pipe.rescore:
        from ..llm.rescoring import rescore_and_compare

        try:
            if not pipe.output:
                raise InputError("--rescore needs --output (the finished rationale file)")
            selection = selection_of(pipe, data)
            rows = rescore_and_compare(pipe.output, selection, data if data.dataset_name or data.data_file else None, pipe.compare)
        except InputError as e:
            print(f"generate_rationales.py: error: {e}", file=sys.stderr)
            return 2
        print(json.dumps({"rescored": sum(1 for r in rows if r.get("error") is None),
                          "selection": report_scores(rows, selection, pipe.output)}))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    secrets = [endpoint.api_key or os.environ.get("OPENAI_API_KEY")]
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(secrets))
    for noisy in ("httpx", "httpx2", "openai", "openai._base_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ..llm.client import EndpointError, redact
    from ..llm.pipeline import RunFailure, RunStats, run_task

    def error(message: str) -> None:
        print(redact(f"generate_rationales.py: error: {message}", secrets), file=sys.stderr)

    stats = RunStats()
    try:
        task, client = build(endpoint, pipe, data)
        policy = failure_policy(endpoint)
        ds = load_passages(data, pipe.task, pipe.logprobs_target)
        summary = run_task(task, ds, client, pipe.output, concurrency=endpoint.concurrency, progress=pipe.progress,
                           stats=stats, policy=policy)
    except RunFailure as e:
        run = stats.as_dict()["this_run"]
        error(f"{e}\nstopped after {run['finished']} rows ({run['failed']} failed), {run['requests']} requests "
              f"({run['http_requests']} HTTP requests); finished rows are saved in {pipe.output}; fix the endpoint and "
              f"rerun the same command to resume")
        return 1
    except EndpointError as e:
        error(f"{e}\nrows finished before this are saved in {pipe.output}; rerun to resume")
        return 2
    except InputError as e:
        error(str(e))
        return 2
    print(redact(format_summary(summary), secrets), file=sys.stderr)
    if pipe.task == "rationales":
        from ..io import iter_jsonl

        rows = [row for _, row in iter_jsonl(pipe.output, tolerate_torn_tail=True)]
        summary["selection"] = report_scores(rows, task.selection, pipe.output)
    print(redact(json.dumps(summary), secrets))
    return 130 if summary["this_run"]["interrupted"] else 0
