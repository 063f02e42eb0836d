"""``python -m lsrmwf.commands.export``: the package's data (rationales, teacher top-K log-probs, BRD passages)
as Parquet with a dataset card, read-only (see :mod:`lsrmwf.data.export`)."""

import json
import sys
from dataclasses import dataclass, field
from typing import Optional

from ..data.export import EXPORTERS, export
from ..io import InputError
from ..io.provenance import provenance


@dataclass
class ExportArguments:
    kind: str = field(default="rationales", metadata={"help": "What --input holds.", "choices": list(EXPORTERS)})
    input: Optional[str] = field(default=None, metadata={"help": "The store file (rationales, teacher_logprobs) or "
                                                                 "compose_brd.py's --output_dir (brd_passages)."})
    output_dir: Optional[str] = field(default=None, metadata={"help": "Writes data/<split>.parquet, README.md (the "
                                                                      "dataset card) and export_summary.json."})


def main(argv=None) -> int:
    from transformers import HfArgumentParser

    from . import parse_dataclasses

    parser = HfArgumentParser(ExportArguments, description=__doc__.split("\n\n")[0], allow_abbrev=False)
    try:
        (args,) = parse_dataclasses(parser, argv)
        if not args.input or not args.output_dir:
            raise InputError("--input and --output_dir are required")
        summary = export(args.kind, args.input, args.output_dir, provenance((args,)))
    except InputError as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("kind", "rows", "files")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
