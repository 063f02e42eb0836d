"""``generate_rationales.py``: parse the arguments and run the LLM task ``--task`` names from the registry
:data:`lsrmwf.llm.tasks.LLM_TASKS` (rationales, basic_reading, teacher_logprobs; see ``--help``)."""

import json
import logging
import os
import sys

from ..io import InputError
from ..io.interrupts import EXIT_INTERRUPTED
from ..io.provenance import PROVENANCE_KEY, provenance

logger = logging.getLogger("lsrmwf.llm")
NOISY_LOGGERS = ("httpx", "httpx2", "openai", "openai._base_client")


def build_parser():
    from transformers import HfArgumentParser

    from ..llm.tasks import argument_classes

    return HfArgumentParser(argument_classes(),
                            description="Dig structured rationales (or basic-reading annotations) with any "
                                        "OpenAI-compatible LLM endpoint; resumable.",
                            allow_abbrev=False)


def quiet_and_redacted_logs(secrets) -> None:
    """INFO logs on stderr with the API key replaced; the HTTP libraries' chatter at WARNING."""
    from ..llm.client import RedactingFilter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(secrets))
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv=None) -> int:
    from ..io.config import expand_config, save_beside_outputs
    from ..llm.arguments import EndpointArguments
    from ..llm.tasks import LLM_TASKS, PipelineArguments, RationaleArguments
    from . import parse_dataclasses

    try:
        parser = build_parser()
        argv = expand_config(parser, sys.argv[1:] if argv is None else argv)
        parsed = parse_dataclasses(parser, argv)
        args = {type(a): a for a in parsed}
        if args[RationaleArguments].rescore:
            print(json.dumps(LLM_TASKS["rationales"]().rescore(args)))
            return 0
    except InputError as e:
        print(f"generate_rationales.py: error: {e}", file=sys.stderr)
        return 2
    endpoint, output = args[EndpointArguments], args[PipelineArguments].output
    secrets = [endpoint.api_key or os.environ.get("OPENAI_API_KEY")]
    quiet_and_redacted_logs(secrets)
    code = run(args, secrets, output)
    if code in (0, 130):  # finished or interrupted: the arguments that resume or repeat it
        try:
            save_beside_outputs(parser, parsed, argv, "generate")
        except InputError as e:
            print(f"generate_rationales.py: error: {e}", file=sys.stderr)
            return 2
    return code


def run(args, secrets, output: str) -> int:
    """Build the task, run it and print its summary; the exit code (130 when interrupted)."""
    from ..llm.arguments import EndpointArguments, failure_policy
    from ..llm.client import EndpointError, redact
    from ..llm.pipeline import RunFailure, RunStats, format_run_summary, run_task
    from ..llm.tasks import PipelineArguments, build_task

    def error(message: str) -> None:
        print(redact(f"generate_rationales.py: error: {message}", secrets), file=sys.stderr)

    endpoint, shared, stats = args[EndpointArguments], args[PipelineArguments], RunStats()
    try:
        builder, task, client = build_task(args)
        policy = failure_policy(endpoint)
        ds = builder.passages(args)
        summary = run_task(task, ds, client, output, concurrency=endpoint.concurrency, progress=shared.progress,
                           stats=stats, policy=policy)
    except RunFailure as e:
        done = stats.as_dict()["this_run"]
        error(f"{e}\nstopped after {done['finished']} rows ({done['failed']} failed), {done['requests']} requests "
              f"({done['http_requests']} HTTP requests); finished rows are saved in {output}; fix the endpoint and "
              f"rerun the same command to resume")
        return 1
    except EndpointError as e:
        error(f"{e}\nrows finished before this are saved in {output}; rerun to resume")
        return 2
    except InputError as e:
        error(str(e))
        return 2
    print(redact(format_run_summary(summary), secrets), file=sys.stderr)
    builder.report(task, args, summary)
    served = "served: " + ", ".join(endpoint.base_url or [])
    summary[PROVENANCE_KEY] = provenance(args.values(), seed=endpoint.seed, device=served)
    print(redact(json.dumps(summary), secrets))
    return EXIT_INTERRUPTED if summary["this_run"]["interrupted"] else 0
