"""Task data for the BRD paper's relaxed and supervised settings: seeded, disjoint train / tuning / test files.

Every split file is ``<output_dir>/<split>/<task>.jsonl``, one example a row, the format
:func:`lsrmwf.evaluation.mc_tasks.load_jsonl_task` reads (so ``evaluate.py --mc_tasks jsonl:<dir>/test/rte.jsonl``
scores the test split alone): ``{"id", "task", "prompt", "choices", "label": [correct indices], "source"}``,
the prompt built exactly as the multiple-choice evaluation builds it (BIG-bench's format, or the paper's with
``prompt_style="paper"``; Table 8's templates for the GLUE-style tasks).

* **The reduced BIG-bench set** (:data:`REDUCED_LIST`, the paper's five named tasks): each task's distinct
  examples are permuted with ``numpy.random.RandomState(seed)``; the first 10% are the test split, the next
  10% the tuning split, the rest the training split (the paper's 10 / 10 / 80).
* **The GLUE-style tasks**: the paper names no split. The test split is the one the evaluation uses today
  (the hub task's evaluation split, or ``NAME=FILE``); training and tuning come from the dataset's *training*
  split (``--glue_train NAME=FILE`` or the hub's ``train``), 10% of it (seeded) as tuning. An own choice.

Also per task, for BRD² (``generate_rationales.py --task basic_reading --txt_passages line``):
``<output_dir>/brd2/<task>.txt`` (each training prompt on one line, the relaxed test) and
``<output_dir>/brd2_sft/<task>.txt`` (each training prompt followed by its gold answer, joined as the scorer
joins them: BRD²-SFT). ``counts.json`` holds the counts per task and split.
"""

import json
import os
from typing import Dict, List, Optional, Sequence

from ..io import InputError, write_json_atomic, write_jsonl_atomic
from .mc_tasks import MCExample, MCTask, load_bigbench_task, load_glue_style_task
from .multiple_choice import join_continuation

SPLITS = ("train", "tuning", "test")
MIN_PER_SPLIT = 3
REDUCED_LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bigbench_reduced_tasks.txt")


def reduced_bigbench_names(list_path: str = REDUCED_LIST) -> List[str]:
    """The reduced BIG-bench set: one task name a line, ``#`` starts a comment."""
    with open(list_path, encoding="utf-8") as f:
        return [line.split("#", 1)[0].strip() for line in f if line.split("#", 1)[0].strip()]


def rule_top_tasks(counts: Dict[str, int], min_instances: int = 2000, top: int = 5) -> List[str]:
    """The paper's stated rule on given task sizes: more than ``min_instances`` examples, the ``top`` largest
    (ties by name)."""
    big = [(n, c) for n, c in counts.items() if c > min_instances]
    return [n for n, _ in sorted(big, key=lambda x: (-x[1], x[0]))[:top]]


def split_indices(n: int, seed: int, test: float = 0.1, tuning: float = 0.1,
                  cap: Optional[int] = None) -> Dict[str, List[int]]:
    """Disjoint index lists covering ``range(n)``: a seeded permutation cut into test, tuning, train. With
    ``cap``, each split keeps its first ``cap`` indices in the permuted order (a seeded random subset)."""
    import numpy as np

    order = [int(i) for i in np.random.RandomState(seed).permutation(n)]
    n_test, n_tuning = int(round(test * n)), int(round(tuning * n))
    parts = {"test": order[:n_test], "tuning": order[n_test:n_test + n_tuning], "train": order[n_test + n_tuning:]}
    return {s: sorted(part[:cap] if cap is not None else part) for s, part in parts.items()}


def example_row(task: str, index: int, ex: MCExample) -> dict:
    return {"id": f"{task}:{index}", "task": task, "prompt": ex.prompt, "choices": list(ex.choices),
            "label": list(ex.correct), "source": ex.source}


def gold_text(row: dict) -> str:
    """A training input with its (first) gold answer, as the scorer joins prompt and candidate."""
    answer = row["choices"][row["label"][0]]
    return row["prompt"] + join_continuation(row["prompt"], answer)


def _check_sizes(task: str, rows: Dict[str, list], where: str) -> None:
    for split in SPLITS:
        if len(rows[split]) < MIN_PER_SPLIT:
            raise InputError(f"{where}: task {task!r} has {len(rows[split])} {split} example(s); every split needs at "
                             f"least {MIN_PER_SPLIT}")


def split_bigbench(task: MCTask, seed: int, cap: Optional[int] = None) -> Dict[str, list]:
    idx = split_indices(len(task.examples), seed, cap=cap)
    rows = {s: [example_row(task.name, i, task.examples[i]) for i in idx[s]] for s in SPLITS}
    _check_sizes(task.name, rows, task.source)
    return rows


def split_glue(test_task: MCTask, train_task: MCTask, seed: int, cap: Optional[int] = None) -> Dict[str, list]:
    idx = split_indices(len(train_task.examples), seed, test=0.0, cap=cap)
    test = split_indices(len(test_task.examples), seed, test=1.0, tuning=0.0, cap=cap)["test"]
    rows = {"test": [example_row(test_task.name, i, test_task.examples[i]) for i in test]}
    for s in ("train", "tuning"):
        rows[s] = [example_row(test_task.name, len(test_task.examples) + i, train_task.examples[i]) for i in idx[s]]
    _check_sizes(test_task.name, rows, train_task.source)
    return rows


def write_splits(output_dir: str, splits: Dict[str, Dict[str, list]], settings: dict) -> dict:
    """Write every task's split files, the BRD² input files and ``counts.json``; return the counts."""
    counts = {}
    for task, rows in splits.items():
        for s in SPLITS:
            os.makedirs(os.path.join(output_dir, s), exist_ok=True)
            write_jsonl_atomic(os.path.join(output_dir, s, f"{task}.jsonl"), rows[s])
        for sub, texts in (("brd2", [r["prompt"] for r in rows["train"]]),
                           ("brd2_sft", [gold_text(r) for r in rows["train"]])):
            os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
            with open(os.path.join(output_dir, sub, f"{task}.txt"), "w", encoding="utf-8") as f:
                f.writelines(" ".join(t.split()) + "\n" for t in texts)
        counts[task] = {s: len(rows[s]) for s in SPLITS}
    write_json_atomic(os.path.join(output_dir, "counts.json"), {"settings": settings, "counts": counts})
    return counts


def build_task_data(output_dir: str, bigbench: Sequence[str], glue: Sequence[str], glue_train: Sequence[str] = (),
                    bigbench_dir: Optional[str] = None, seed: int = 42, prompt_style: str = "bigbench",
                    max_per_split: Optional[int] = None) -> dict:
    """The split files for the BIG-bench task names ``bigbench`` and the GLUE-style specs ``glue`` (``NAME`` for
    the hub, ``NAME=FILE`` for a local evaluation file); ``glue_train`` gives ``NAME=FILE`` training files (else
    the hub's ``train`` split). ``max_per_split`` keeps a seeded random subset of at most that many examples
    in every split (quick runs; the splits stay disjoint). Returns ``{task: {split: count}}``."""
    bigbench_dir = bigbench_dir or os.path.join(os.path.expanduser("~"), ".cache", "lsrmwf", "bigbench")
    train_files = {}
    for spec in glue_train:
        if "=" not in spec:
            raise InputError(f"--glue_train {spec!r}: expected NAME=FILE")
        name, path = spec.split("=", 1)
        train_files[name.strip().lower()] = path
    splits = {}
    for name in bigbench:
        path = name if os.path.exists(name) else os.path.join(bigbench_dir, name, "task.json")
        if not os.path.exists(path):
            raise InputError(f"BIG-bench task {name!r}: {path} not found (scripts/fetch_bigbench.py)")
        task = load_bigbench_task(path, prompt_style=prompt_style)
        splits[task.name] = split_bigbench(task, seed, max_per_split)
    for spec in glue:
        name, path = spec.split("=", 1) if "=" in spec else (spec, None)
        test_task = load_glue_style_task(name, path=path)
        train_path = train_files.pop(test_task.name, None) or train_files.pop(name.strip().lower(), None)
        train_task = load_glue_style_task(name, path=train_path, split=None if train_path else "train")
        splits[test_task.name] = split_glue(test_task, train_task, seed, max_per_split)
    if train_files:
        raise InputError(f"--glue_train names task(s) not in --glue: {', '.join(sorted(train_files))}")
    if not splits:
        raise InputError("no tasks: give --bigbench (e.g. reduced) and/or --glue")
    settings = {"seed": seed, "bigbench_prompt": prompt_style, "fractions": {"test": 0.1, "tuning": 0.1, "train": 0.8},
                "glue": "test = the evaluation split; train and tuning (10%) from the training split (own choice)",
                "max_per_split": max_per_split}
    return write_splits(output_dir, splits, settings)


def format_counts(counts: dict) -> str:
    lines = ["| task | train | tuning | test |", "|---|---:|---:|---:|"]
    lines += [f"| {t} | {c['train']} | {c['tuning']} | {c['test']} |" for t, c in counts.items()]
    return "\n".join(lines)


def read_split_rows(path: str) -> List[dict]:
    """The rows of a split file, checked (prompt, choices, label indices inside the choices)."""
    from .mc_tasks import load_jsonl_task

    task = load_jsonl_task(path)  # checks every row; the error names file and line
    rows = []
    with open(path, encoding="utf-8") as f:
        raw = [json.loads(line) for line in f if line.strip()]
    for r, ex in zip(raw, task.examples):
        rows.append({"id": r.get("id", ex.source), "prompt": ex.prompt, "choices": ex.choices,
                     "label": list(ex.correct), "source": ex.source})
    return rows
