"""``python -m lsrmwf.analysis table3``: the per-model multiple-choice results gathered into the BRD paper's
Table 3 layout: XNLI, RTE, CB, PAWS-X, BoolQ, SST-2, BIG-bench-Avg and the paper's Average (BIG-bench counted
as one column), rows grouped by setting (blind / relaxed / supervised).

    python -m lsrmwf.analysis table3 --output_dir tables \\
        --rows "blind:XGLM-564M=eval/mc/xglm" "blind:XGLM-BRD=eval/mc/xglm-brd" \\
               "relaxed:TaskDistillation=eval/mc/td" "relaxed:XGLM-BRD²=eval/mc/brd2" \\
               "supervised:SFT=eval/mc/sft" "supervised:XGLM-BRD²-SFT=eval/mc/brd2-sft"

Each PATH is an ``evaluate.py --task multiple_choice`` output directory (or its ``mc_results.json``). A
task counts as BIG-bench when its name is on the 112-task list; a row whose BIG-bench tasks are all on the
reduced list (the paper's five, as the relaxed and supervised rows use) is marked †, as in the paper.
Writes ``table3.md`` and ``table3.json``.
"""

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from ..evaluation.mc_tasks import bigbench_task_names
from ..evaluation.task_data import reduced_bigbench_names
from ..io import InputError, read_json, write_json_atomic

GLUE_COLUMNS = [("xnli", "XNLI"), ("rte", "RTE"), ("cb", "CB"), ("paws-x", "PAWS-X"), ("boolq", "BoolQ"),
                ("sst-2", "SST-2")]


def read_results(path: str) -> dict:
    file = os.path.join(path, "mc_results.json") if os.path.isdir(path) else path
    data = read_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("accuracy"), dict):
        raise InputError(f"{file}: field 'accuracy' is missing (an evaluate.py --task multiple_choice result?)")
    return data


def table3_row(accuracy: Dict[str, float]) -> dict:
    """The row's columns (fractions; ``None`` where the task was not run), its BIG-bench average and Average."""
    full, reduced = set(bigbench_task_names()), set(reduced_bigbench_names())
    row = {key: accuracy.get(key) for key, _ in GLUE_COLUMNS}
    bb = {t: a for t, a in accuracy.items() if t in full or t in reduced}
    row["bigbench"] = sum(bb.values()) / len(bb) if bb else None
    row["bigbench_tasks"] = len(bb)
    row["reduced"] = bool(bb) and set(bb) <= reduced
    columns = [row[k] for k, _ in GLUE_COLUMNS if row[k] is not None] + ([row["bigbench"]] if bb else [])
    row["average"] = sum(columns) / len(columns) if columns else None
    return row


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def gather(specs: List[str]) -> List[dict]:
    rows = []
    for spec in specs:
        if "=" not in spec:
            raise InputError(f"--rows {spec!r}: expected [SETTING:]NAME=PATH")
        label, path = spec.split("=", 1)
        setting, name = label.split(":", 1) if ":" in label else ("", label)
        row = table3_row(read_results(path)["accuracy"])
        rows.append({"setting": setting, "model": name, "source": path, **row})
    return rows


def markdown(rows: List[dict]) -> str:
    """The table; a GLUE-style column that no row has is left out (and named under the table)."""
    glue = [(k, c) for k, c in GLUE_COLUMNS if any(r[k] is not None for r in rows)]
    head = [c for _, c in glue] + ["BIG-bench-Avg", "Average"]
    lines = ["| setting | model | " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(head)]
    for r in rows:
        bb = _pct(r["bigbench"]) + ("†" if r["reduced"] else "")
        cells = [_pct(r[k]) for k, _ in glue] + [bb, _pct(r["average"])]
        lines.append(f"| {r['setting']} | {r['model']} | " + " | ".join(cells) + " |")
    lines += ["", "Accuracy in %. BIG-bench-Avg: the mean over the row's BIG-bench tasks (the 112-task list); "
              "† the reduced set (the paper's five tasks). Average: the row's GLUE-style tasks and BIG-bench-Avg, "
              "BIG-bench counted once."]
    left_out = [c for k, c in GLUE_COLUMNS if (k, c) not in glue]
    if left_out:
        lines.append(f"Not run, so left out: {', '.join(left_out)}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lsrmwf.analysis table3", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="+", required=True, help="[SETTING:]NAME=PATH, one per table row, in order.")
    p.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    try:
        rows = gather(args.rows)
    except InputError as e:
        print(f"table3: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    table = markdown(rows)
    with open(os.path.join(args.output_dir, "table3.md"), "w", encoding="utf-8") as f:
        f.write(table)
    write_json_atomic(os.path.join(args.output_dir, "table3.json"), rows)
    print(table)
    print(json.dumps({"rows": len(rows)}))
    return 0
