"""``python -m lsrmwf.commands.task_data``: seeded train / tuning / test files for the BRD paper's relaxed and
supervised settings (:mod:`lsrmwf.evaluation.task_data`); prints and writes the counts.

    python -m lsrmwf.commands.task_data --bigbench reduced --glue xnli rte cb paws-x boolq sst-2 --output_dir tasks
    python -m lsrmwf.commands.task_data --glue rte=rte_dev.jsonl --glue_train rte=rte_train.jsonl --output_dir tasks
"""

import argparse
import sys
from typing import List, Optional

from ..io import InputError


def main(argv: Optional[List[str]] = None) -> int:
    from ..evaluation.task_data import build_task_data, format_counts, reduced_bigbench_names

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--bigbench", nargs="*", default=[],
                   help="BIG-bench task names (or task.json paths); 'reduced' is the paper's five "
                        "(lsrmwf/evaluation/bigbench_reduced_tasks.txt). Split 80/10/10.")
    p.add_argument("--glue", nargs="*", default=[],
                   help="GLUE-style tasks: NAME (hub) or NAME=FILE; their evaluation split is the test split.")
    p.add_argument("--glue_train", nargs="*", default=[],
                   help="NAME=FILE: the training split of a --glue task (default: the hub's train split); 10%% of it "
                        "becomes the tuning split.")
    p.add_argument("--bigbench_dir", default=None,
                   help="The fetched BIG-bench tasks (default ~/.cache/lsrmwf/bigbench).")
    p.add_argument("--bigbench_prompt", default="bigbench", choices=["bigbench", "paper"],
                   help="BIG-bench's zero-shot prompt with the choices appended (default), or the paper's "
                        "'task prefix and input'.")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max_per_split", type=int, default=None,
                   help="At most N examples in each split, a seeded random subset (quick runs; default: all).")
    args = p.parse_args(argv)
    names = [n for spec in args.bigbench for n in (reduced_bigbench_names() if spec == "reduced" else [spec])]
    try:
        counts = build_task_data(args.output_dir, names, args.glue, args.glue_train, args.bigbench_dir, args.seed,
                                 args.bigbench_prompt, args.max_per_split)
    except InputError as e:
        print(f"task_data: error: {e}", file=sys.stderr)
        return 2
    print(format_counts(counts))
    print(f"written to {args.output_dir}/{{train,tuning,test}}/<task>.jsonl and {args.output_dir}/counts.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
