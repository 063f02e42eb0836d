"""``generate_rationales.py``: command-line arguments and entry point (see ``--help``)."""

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional

from ..io import InputError
from ..presets import HUB_DATASETS, fill_from_preset

logger = logging.getLogger("lsrmwf.llm")


@dataclass
class DataArguments:
    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset (cnn_dailymail, EdinburghNLP/xsum) or 'aclsum' (offline)."})
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset config, e.g. 3.0.0 for cnn_dailymail."})
    split: str = field(default="train", metadata={"help": "Dataset split."})
    data_file: Optional[str] = field(default=None, metadata={"help": "Local json/jsonl/csv/parquet file (basic_reading also takes a .txt file)."})
    text_column: Optional[str] = field(default=None, metadata={"help": "Document column (default: the dataset's, else 'document')."})
    summary_column: Optional[str] = field(default=None, metadata={"help": "Gold summary column (default: the dataset's, else 'summary')."})
    id_column: Optional[str] = field(default=None, metadata={"help": "Id column (default: the dataset's; local files without one use the row index)."})
    max_examples: Optional[int] = field(default=None, metadata={"help": "Use only the first N documents."})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "datasets cache directory."})
    txt_passages: str = field(default="line", metadata={"help": "For a .txt --data_file: one passage per 'line' or per blank-line separated 'paragraph'.", "choices": ["line", "paragraph"]})


@dataclass
class EndpointArguments:
    base_url: List[str] = field(default_factory=list, metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1. Give it several times to spread load over replicas.", "action": "extend"})
    model: Optional[str] = field(default=None, metadata={"help": "Model name sent with each request (required)."})
    api_key: Optional[str] = field(default=None, metadata={"help": "API key (default: $OPENAI_API_KEY; local servers need none). Never written to any file or log."})
    concurrency: int = field(default=8, metadata={"help": "Documents (basic_reading: sentences) in flight at once."})
    timeout: float = field(default=600.0, metadata={"help": "Seconds per request before the client gives up on it (then retries)."})
    max_retries: int = field(default=5, metadata={"help": "The openai client's retries per request (429 honours Retry-After; 5xx/timeouts back off)."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (the paper uses 0)."})
    max_tokens: int = field(default=1024, metadata={"help": "Answer length limit per request."})
    top_p: Optional[float] = field(default=None, metadata={"help": "Nucleus sampling (default: the server's)."})
    seed: Optional[int] = field(default=None, metadata={"help": "Sampling seed, where the server supports it."})
    extra_body: Optional[str] = field(default=None, metadata={"help": 'Extra request fields as JSON, e.g. \'{"repeat_penalty": 1.1}\' for llama.cpp (part of the cache key).'})
    response_format: str = field(default="json_schema", metadata={"help": "json_schema (structured output), json_object, or text (line format, for servers without response_format).", "choices": ["json_schema", "json_object", "text"]})


@dataclass
class PipelineArguments:
    output: str = field(default=None, metadata={"help": "Output JSONL (required). An existing file is resumed."})
    task: str = field(default="rationales", metadata={"help": "rationales (paper steps 1-2), basic_reading (BRD: entities and QA per sentence) or teacher_logprobs (the teacher's summary with top-K log-probs per token, for train.py --teacher_logprobs_file).", "choices": ["rationales", "basic_reading", "teacher_logprobs"]})
    top_logprobs: int = field(default=10, metadata={"help": "teacher_logprobs: K, the alternatives (with log-probs) kept per generated token."})
    prompt_template: str = field(default="Summarize:\n{document}\n\nSummary:", metadata={"help": "teacher_logprobs: the prompt ({document} is replaced); use the one train.py's student gets."})
    logprobs_api: str = field(default="chat", metadata={"help": "teacher_logprobs: chat (/v1/chat/completions, logprobs+top_logprobs) or completions (/v1/completions, raw prompt; base models).", "choices": ["chat", "completions"]})
    preset: Optional[str] = field(default=None, metadata={"help": "cnndm or xsum: fills --rationales, --score, --score_threshold (implied by known hub datasets)."})
    rationales: Optional[str] = field(default=None, metadata={"help": "per_sentence (one rationale per gold summary sentence, CNN/DM) or one (XSum).", "choices": ["per_sentence", "one"]})
    max_rationales: int = field(default=8, metadata={"help": "Cap on rationales per document; extra summary sentences join the last one."})
    score: Optional[str] = field(default=None, metadata={"help": "score1 = 1-R1*R2/(R1+R2) (CNN/DM) or score2 = 1-(R1+R2+RL)/3 (XSum); lower is better.", "choices": ["score1", "score2"]})
    score_threshold: Optional[float] = field(default=None, metadata={"help": "Keep a row iff score <= threshold (fractions: 0.85 CNN/DM, 0.65 XSum)."})
    score_on: str = field(default="total", metadata={"help": "Which LLM summary is scored against the gold one: total (S^tol) or sub_summaries (S^mul, concatenated).", "choices": ["total", "sub_summaries"]})
    rouge_measure: str = field(default="fmeasure", metadata={"help": "ROUGE F1 (fmeasure) or recall (the paper's Eq. 6) or precision.", "choices": ["fmeasure", "recall", "precision"]})
    max_document_words: Optional[int] = field(default=None, metadata={"help": "Cut documents to their first N words in prompts (default: whole document)."})
    brd_context: str = field(default="sentence", metadata={"help": "basic_reading: show the model only the sentence (as in the BRD paper) or its whole passage.", "choices": ["sentence", "passage"]})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


def load_passages(data: DataArguments, task: str):
    """Documents for either task; basic_reading also reads .txt files (no summaries needed)."""
    from ..data.loading import load_documents

    if task == "basic_reading" and data.data_file and data.data_file.lower().endswith(".txt"):
        return load_txt(data.data_file, data.txt_passages, data.max_examples)
    return load_documents(
        dataset_name=data.dataset_name, dataset_config_name=data.dataset_config_name, split=data.split,
        data_file=data.data_file, text_column=data.text_column, summary_column=data.summary_column,
        id_column=data.id_column, max_examples=data.max_examples, cache_dir=data.cache_dir,
        require_summary=task == "rationales",  # teacher_logprobs: the teacher writes the summary
    )


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
    from ..llm.client import GenerationParams, LLMClient
    from ..llm.pipeline import RationaleTask, ReadingTask, Selection

    if not args_endpoint.base_url:
        raise InputError("--base_url is required (e.g. http://127.0.0.1:8080/v1; start a local server with python -m lsrmwf.llm.server)")
    if not args_endpoint.model:
        raise InputError("--model is required (the name the endpoint serves; llama-server accepts any)")
    if not args_pipe.output:
        raise InputError("--output is required")
    if args_endpoint.concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    if args_pipe.task == "rationales":
        preset = args_pipe.preset or HUB_DATASETS.get(data.dataset_name or "", {}).get("preset")
        fill_from_preset(args_pipe, preset, fields=("rationales", "score", "score_threshold"))
        missing = [f"--{k}" for k in ("rationales", "score", "score_threshold") if getattr(args_pipe, k) is None]
        if missing:
            raise InputError(f"{', '.join(missing)} not set: give --preset cnndm|xsum or set them explicitly")
        task = RationaleTask(Selection(args_pipe.score, args_pipe.score_threshold, args_pipe.score_on, args_pipe.rouge_measure),
                             rationales=args_pipe.rationales, max_rationales=args_pipe.max_rationales,
                             max_document_words=args_pipe.max_document_words)
    elif args_pipe.task == "teacher_logprobs":
        from ..data.causal import check_template
        from ..llm.teacher_logprobs import TeacherLogprobsTask

        if args_pipe.top_logprobs < 1:
            raise InputError(f"--top_logprobs must be at least 1, got {args_pipe.top_logprobs}")
        check_template(args_pipe.prompt_template)
        task = TeacherLogprobsTask(top_logprobs=args_pipe.top_logprobs, prompt_template=args_pipe.prompt_template,
                                   api=args_pipe.logprobs_api, max_document_words=args_pipe.max_document_words)
    else:
        task = ReadingTask(context=args_pipe.brd_context, max_document_words=args_pipe.max_document_words)
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


def format_summary(summary: dict) -> str:
    run, f = summary["this_run"], summary["file"]
    lines = [
        f"this run: {run['finished']}/{run['pending']} rows ({run['failed']} failed) in {run['elapsed_s']:.1f}s, "
        f"{run['rows_per_s']:.3f} rows/s, {run['total_tokens']} tokens ({run['tokens_per_s']:.0f} tokens/s), {run['requests']} requests"
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
        lines.append(f"{f['tokens']} teacher tokens with top-K log-probs in {f['output']}.bin: {f['payload_bytes']} bytes, "
                     f"{bpt} bytes per token")
    else:
        lines.append(f"{f['entities']} entities, {f['qa']} question-answer pairs")
    if run["failed"]:
        lines.append(f"{run['failed']} rows failed (their 'error' field says why); rerun the same command to retry them")
    return "\n".join(lines)


def main(argv=None) -> int:
    from transformers import HfArgumentParser

    parser = HfArgumentParser((DataArguments, EndpointArguments, PipelineArguments),
                              description="Dig structured rationales (or basic-reading annotations) with any OpenAI-compatible LLM endpoint; resumable.")
    data, endpoint, pipe = parser.parse_args_into_dataclasses(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "openai", "openai._base_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ..llm.client import EndpointError
    from ..llm.pipeline import run_task

    try:
        task, client = build(endpoint, pipe, data)
        ds = load_passages(data, pipe.task)
        summary = run_task(task, ds, client, pipe.output, concurrency=endpoint.concurrency, progress=pipe.progress)
    except EndpointError as e:
        print(f"error: {e}\nrows finished before this are saved in {pipe.output}; rerun to resume", file=sys.stderr)
        return 2
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(summary), file=sys.stderr)
    print(json.dumps(summary))
    return 130 if summary["this_run"]["interrupted"] else 0
