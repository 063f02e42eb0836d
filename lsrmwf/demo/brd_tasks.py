"""The BRD demo's relaxed and supervised rows (the paper's Table 3 settings), offline.

Two tasks: ``winowhy`` from the reduced BIG-bench set (split 80/10/10 by ``task_data``), and a GLUE-style
task read from local files: CB's Table 8 template and Yes/No/Maybe answers over the premise / hypothesis
pairs of BIG-bench's ``presuppositions_as_nli`` (three-way NLI like CB; SuperGLUE's CB itself needs the
hub). The steps are the README's commands at a small size:

* ``task_data`` writes the splits (``--max_per_split``);
* TaskDistillation: the served teacher answers every training input (``--task task_answers``), the
  answers are mapped to choices and the student learns them (``--task_answers_file``);
* SFT: the student learns the gold answers (``--task_train_file``);
* BRD²: the teacher reads the training inputs (``--task basic_reading`` over ``brd2/<task>.txt``),
  ``compose_brd.py`` composes them and the BRD student continues on them (``--stage basic_reading``);
* every model is scored on the two test splits, the rows gathered by ``python -m lsrmwf.analysis
  table3``, and ``evaluate.py --task probe`` draws the layer-wise probe of the student before and after BRD.
"""

import json
import os
import re
from typing import Dict, List

NLI_SOURCE = "presuppositions_as_nli"
BIGBENCH_TASK = "winowhy"
GLUE_TASK = "cb"
TASKS = [GLUE_TASK, BIGBENCH_TASK]
_PAIR = re.compile(r"Sentence 1:\s*(?P<premise>.+?)\s*\n\s*Sentence 2:\s*(?P<hypothesis>.+?)\s*\n", re.S)


def nli_rows(task_json: str) -> List[dict]:
    """``presuppositions_as_nli``'s examples as CB-style rows ``{premise, hypothesis, label}`` (the label a
    CB label name: entailment, contradiction or neutral)."""
    with open(task_json, encoding="utf-8") as f:
        examples = json.load(f)["examples"]
    rows = []
    for i, ex in enumerate(examples):
        m = _PAIR.search(ex["input"])
        gold = [k for k, v in ex["target_scores"].items() if v == 1]
        if m is None or len(gold) != 1:
            raise SystemExit(f"{task_json}: example {i}: not a 'Sentence 1: ... Sentence 2: ...' pair with one "
                             "correct label")
        rows.append({"premise": m["premise"], "hypothesis": m["hypothesis"], "label": gold[0]})
    return rows


def write_nli_files(bigbench_dir: str, out_dir: str, eval_fraction: float = 0.2, seed: int = 0) -> Dict[str, str]:
    """The local 'evaluation' and 'training' files of the GLUE-style task: a seeded ``eval_fraction`` of the
    pairs and the rest. Returns ``{"eval": path, "train": path}``."""
    import numpy as np

    rows = nli_rows(os.path.join(bigbench_dir, NLI_SOURCE, "task.json"))
    order = np.random.RandomState(seed).permutation(len(rows))
    n_eval = int(round(eval_fraction * len(rows)))
    paths = {"eval": os.path.join(out_dir, f"{GLUE_TASK}_eval.jsonl"),
             "train": os.path.join(out_dir, f"{GLUE_TASK}_train.jsonl")}
    os.makedirs(out_dir, exist_ok=True)
    for part, idx in (("eval", order[:n_eval]), ("train", order[n_eval:])):
        with open(paths[part], "w", encoding="utf-8") as f:
            f.writelines(json.dumps(rows[int(i)]) + "\n" for i in sorted(idx))
    return paths


def concat(paths: List[str], out_path: str) -> str:
    with open(out_path, "w", encoding="utf-8") as out:
        for p in paths:
            with open(p, encoding="utf-8") as f:
                out.write(f.read())
    return out_path


def head_lines(path: str, n: int, out_path: str) -> str:
    """The first ``n`` lines of ``path`` (the BRD² inputs the demo has time to read)."""
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()][:n]
    with open(out_path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return out_path


def answer_counts(answer_files: List[str]) -> dict:
    """Over the given TaskDistillation answer files: answers mapped to a choice, unmappable ones, failed
    requests, and how often the mapped choice is the gold one."""
    mapped = unmappable = failed = agree = 0
    for p in answer_files:
        with open(p, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if row.get("error"):
                    failed += 1
                elif row.get("choice") is None:
                    unmappable += 1
                else:
                    mapped += 1
                    agree += int(row["choice"] in (row.get("label") or []))
    return {"mapped": mapped, "unmappable": unmappable, "failed": failed,
            "teacher_accuracy_on_mapped": round(agree / mapped, 3) if mapped else None}
