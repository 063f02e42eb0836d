"""``compose_brd.py``: the BRD answer rows as D_ORI / D_NER / D_QRA passage files (see ``--help``)."""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional

from ..distill.brd_compose import DEFAULT_SEP, compose, read_answers
from ..io import InputError, write_json_atomic, write_jsonl_atomic
from ..io.provenance import PROVENANCE_KEY, provenance


@dataclass
class ComposeArguments:
    answers: List[str] = field(
        default_factory=list,
        metadata={"help": "The JSONL(s) of generate_rationales.py --task basic_reading (few-shot form); several "
                          "files (shards) are merged.", "action": "extend", "nargs": "+"},
    )
    output_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Writes ori.jsonl, ner.jsonl, qra.jsonl (one passage per row: id, text, n_sentences, "
                          "partial) and compose_summary.json."},
    )
    sep: str = field(
        default=DEFAULT_SEP,
        metadata={"help": "The delimiter placed between sentences and answers, exactly as given (default ' <sep> ')."},
    )
    composition: str = field(
        default="passage",
        metadata={"help": "passage: s1 <sep> NER(s1) <sep> s2 <sep> NER(s2) ... (the paper's); sentence: one shuffled "
                          "row per sentence, Table 6's sentence-level variant.", "choices": ["passage", "sentence"]},
    )
    behaviours: Optional[str] = field(
        default=None,
        metadata={"help": "Which answer files to write, comma-separated (ner, qra); default: those the answer "
                          "file has."},
    )
    allow_partial: bool = field(
        default=False,
        metadata={"help": "Keep passages whose sentences lack answers (those sentences appear without their answer). "
                          "Default: refuse."},
    )
    skip_incomplete: bool = field(
        default=False,
        metadata={"help": "Drop passages whose sentences lack answers from every file. Default: refuse."},
    )
    seed: int = field(default=42, metadata={"help": "Shuffle seed for --composition sentence."})


def run(args: ComposeArguments) -> dict:
    if not args.answers:
        raise InputError("--answers is required (the output of generate_rationales.py --task basic_reading)")
    if not args.output_dir:
        raise InputError("--output_dir is required")
    behaviours = [b.strip() for b in args.behaviours.split(",") if b.strip()] if args.behaviours else None
    passages = read_answers(args.answers)
    out, counts = compose(passages, behaviours, sep=args.sep, composition=args.composition,
                          allow_partial=args.allow_partial, skip_incomplete=args.skip_incomplete, seed=args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    files = {}
    for name, rows in out.items():
        files[name] = os.path.join(args.output_dir, f"{name}.jsonl")
        write_jsonl_atomic(files[name], rows)
    summary = dict(counts, sep=args.sep, answer_files=list(args.answers), files=files,
                   **{PROVENANCE_KEY: provenance((args,), seed=args.seed)})
    write_json_atomic(os.path.join(args.output_dir, "compose_summary.json"), summary)
    return summary


def main(argv=None) -> int:
    from transformers import HfArgumentParser

    from ..io.config import expand_config, save_beside_outputs
    from . import parse_dataclasses

    parser = HfArgumentParser(ComposeArguments, allow_abbrev=False,
                              description="Compose BRD passages: D_ORI, D_NER, D_QRA (the BRD paper, section 3.2).")
    try:
        argv = expand_config(parser, sys.argv[1:] if argv is None else argv)
        (args,) = parse_dataclasses(parser, argv)
        summary = run(args)
        save_beside_outputs(parser, [args], argv, "compose_brd")
    except InputError as e:
        print(f"compose_brd.py: error: {e}", file=sys.stderr)
        return 2
    rows = ", ".join(f"{name.upper()} {n}" for name, n in summary["rows"].items())
    answers = ", ".join(f"{b.upper()} {n}" for b, n in summary["answers"].items())
    print(f"{summary['passages_read']} passages read ({summary['sentences']} sentences; answers: {answers}); "
          f"{summary['incomplete_passages']} incomplete (kept partial {summary['kept_partial']}, skipped "
          f"{summary['skipped_incomplete']}); {summary['composition']}-level rows: {rows}; written to "
          f"{os.path.dirname(summary['files']['ori'])}", file=sys.stderr)
    print(json.dumps(summary))
    return 0
