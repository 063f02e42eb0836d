"""Multiple-choice tasks for :mod:`lsrmwf.evaluation.multiple_choice`: readers and task configs.

A task is a name plus a list of :class:`MCExample` (a prompt, its candidate answers, the indices of
the correct ones). Three kinds are read here:

* **BIG-bench JSON tasks** (:func:`load_bigbench_task`): a ``task.json`` with ``examples[*].input``
  and ``examples[*].target_scores`` (candidate -> score; several candidates may share the top score,
  and each of them counts as correct), formatted zero-shot exactly as BIG-bench 1.0.0 does it
  (``bigbench/api/json_task.py``; see :data:`BIGBENCH_DEFAULTS`), and container tasks whose
  subtasks live in subdirectories.
* **The six GLUE-style tasks** of the BRD paper (:func:`load_glue_style_task`): XNLI, RTE, CB,
  PAWS-X, BoolQ and SST-2 with the paper's Table 8 prompt templates and candidate answers built in
  (:data:`GLUE_STYLE_TASKS`), read from the hub by name or from a local JSONL/CSV file.
* **Plain JSONL** (:func:`load_jsonl_task`): one ``{"prompt", "choices", "label"}`` object a line.

Bad input raises :class:`lsrmwf.io.InputError` as ``<file>:<row>: <message>``; the row is the
1-based line for JSONL and CSV files and ``examples[i]`` (0-based, as in the JSON) for ``task.json``.

The paper's BIG-bench selection (73 multiple-choice tasks) is not listed in the paper; the rule used
here is :func:`is_multiple_choice_bigbench_task`, and the list it gives on BIG-bench 1.0.0 is
committed as ``bigbench_mc_tasks.txt`` next to this file (see :func:`select_bigbench_tasks`).
"""

import csv
import functools
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..io import InputError, read_json
from .bigbench_fetch import DEFAULT_BIGBENCH_DIR

# ----------------------------------------------------------------------------------------------
# Data model


@dataclass
class MCExample:
    """One multiple-choice question: the text scored is ``prompt`` followed by each choice.

    ``correct`` holds the indices of every correct choice (BIG-bench allows several). ``source``
    names the file and row it came from; ``group`` is the subtask (BIG-bench container tasks) or "".
    """

    prompt: str
    choices: List[str]
    correct: Tuple[int, ...]
    source: str = ""
    group: str = ""


@dataclass
class MCTask:
    """A named list of examples. ``kind`` is "bigbench", "glue" or "jsonl" (the paper's average
    counts all BIG-bench tasks as one column; see ``run_multiple_choice``)."""

    name: str
    examples: List[MCExample]
    kind: str
    source: str
    info: Dict = field(default_factory=dict)


def _check_example(where: str, prompt, choices, correct) -> None:
    if not isinstance(prompt, str):
        raise InputError(f"{where}: the prompt is missing (expected a string, got {type(prompt).__name__})")
    if not isinstance(choices, list) or len(choices) < 2:
        n = len(choices) if isinstance(choices, (list, dict)) else 0
        raise InputError(f"{where}: {n} choice(s); a multiple-choice example needs at least 2")
    for c in choices:
        if not isinstance(c, str) or not c.strip():
            raise InputError(f"{where}: choice {c!r} is not a non-empty string")
    if len(set(choices)) != len(choices):
        raise InputError(f"{where}: duplicate choices {choices!r}")
    if not correct:
        raise InputError(f"{where}: no correct choice")


def _subsample(n: int, max_examples: Optional[int], seed: int) -> List[int]:
    """Indices kept when a task is capped at ``max_examples``: BIG-bench's zero-shot rule
    (``numpy.random.RandomState(seed).choice(n, max_examples, replace=False)``, in that order)."""
    if not max_examples or max_examples >= n:
        return list(range(n))
    import numpy as np

    return [int(i) for i in np.random.RandomState(seed=seed).choice(n, max_examples, replace=False)]


# ----------------------------------------------------------------------------------------------
# BIG-bench

# BIG-bench 1.0.0's defaults for a JSON task that sets none of these keys
# (bigbench/api/json_task.py, JsonTask.load_and_process_json and default_format_fn).
BIGBENCH_DEFAULTS = {
    "task_prefix": "",
    "example_input_prefix": "\nQ: ",
    "example_output_prefix": "\nA: ",
    "choice_prefix": "\n  choice: ",
    "append_choices_to_input": True,
}
BIGBENCH_SEED = 42  # JsonTask's default random_seed: orders the choices listed in the prompt
# --bigbench_prompt: "bigbench" builds BIG-bench's own zero-shot prompt (the choices appended when the task
# says so; the default), "paper" the BRD paper's "task prefix and input" (A.2): the same without the choices
PROMPT_STYLES = ("bigbench", "paper")


def _styled(data: dict, prompt_style: str) -> dict:
    if prompt_style not in PROMPT_STYLES:
        raise InputError(f"unknown BIG-bench prompt style {prompt_style!r}; use one of {', '.join(PROMPT_STYLES)}")
    return dict(data, append_choices_to_input=False) if prompt_style == "paper" else data


@functools.lru_cache(maxsize=None)
def _permutation(n: int, seed: int) -> Tuple[int, ...]:
    """``RandomState(seed).permutation(n)``: the order a fresh generator gives ``n`` items (the same
    draws ``permutation(list_of_n_strings)`` makes; memoised, as BIG-bench seeds anew per example)."""
    import numpy as np

    return tuple(int(i) for i in np.random.RandomState(seed=seed).permutation(n))


def bigbench_prompt(data: dict, text: str, target_scores: dict, seed: int = BIGBENCH_SEED) -> str:
    """The zero-shot prompt BIG-bench 1.0.0 builds for one example of the task ``data``.

    ``task_prefix + example_input_prefix + input [+ choice_prefix + choice_prefix.join(choices)]
    + example_output_prefix``, where the listed choices (only with ``append_choices_to_input``) are
    ``numpy.random.RandomState(seed).permutation(sorted(choices))`` with a fresh generator per
    example, as BIG-bench's ``default_format_fn`` does.
    """
    get = lambda key: data.get(key, BIGBENCH_DEFAULTS[key])  # noqa: E731
    if get("append_choices_to_input"):
        ordered = sorted(target_scores)
        listed = [ordered[i] for i in _permutation(len(ordered), seed)]
        choice_prefix = str(get("choice_prefix"))
        text = text + choice_prefix + choice_prefix.join(listed)
    return str(get("task_prefix")) + str(get("example_input_prefix")) + text + str(get("example_output_prefix"))


def _bigbench_examples(path: str, data: dict, group: str, max_examples: Optional[int], seed: int,
                       notes: List[str]) -> List[MCExample]:
    raw = data.get("examples")
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{path}: 'examples' is missing or empty")
    # BIG-bench drops duplicate examples (same JSON), keeping the first.
    seen, distinct = set(), []
    for i, ex in enumerate(raw):
        where = f"{path}:examples[{i}]"
        if not isinstance(ex, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(ex).__name__}")
        if "input" not in ex:
            raise InputError(f"{where}: the prompt is missing (no 'input')")
        if "target_scores" not in ex:
            raise InputError(f"{where}: no 'target_scores'; only multiple-choice examples (candidate -> score) can "
                             "be scored")
        scores = ex["target_scores"]
        if not isinstance(scores, dict):
            raise InputError(f"{where}: 'target_scores' must map each candidate to a score, got "
                             f"{type(scores).__name__}")
        for c, v in scores.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"{where}: target_scores[{c!r}] = {v!r} is not a number")
        key = json.dumps(ex, sort_keys=False)
        if key in seen:
            continue
        seen.add(key)
        distinct.append((i, ex))
    out = []
    for k in _subsample(len(distinct), max_examples, seed):
        i, ex = distinct[k]
        where = f"{path}:examples[{i}]"
        scores = ex["target_scores"]
        choices = list(scores)
        if len(choices) < 2:
            _check_example(where, ex["input"], choices, (0,))
        best = max(scores.values())
        if min(scores.values()) == best:
            raise InputError(f"{where}: no correct choice (every target score is {best})")
        empty = [c for c in choices if not c.strip()]
        if empty:  # a data slip in a few tasks: an empty candidate has no tokens to score
            choices = [c for c in choices if c.strip()]
            kept = [scores[c] for c in choices]
            if len(kept) < 2 or max(kept) == min(kept) or max(kept) != best:
                notes.append(f"{where}: example skipped (empty candidate {empty!r}; fewer than 2 scorable candidates "
                             "left)")
                continue
            notes.append(f"{where}: empty candidate {empty!r} dropped")
        correct = tuple(j for j, c in enumerate(choices) if scores[c] == best)
        _check_example(where, ex["input"], choices, correct)
        out.append(MCExample(bigbench_prompt(data, ex["input"], scores, seed), choices, correct, where, group))
    return out


def _task_json_path(path: str) -> str:
    return os.path.join(path, "task.json") if os.path.isdir(path) else path


def load_bigbench_task(path: str, name: Optional[str] = None, max_examples: Optional[int] = None,
                       seed: int = BIGBENCH_SEED, prompt_style: str = "bigbench") -> MCTask:
    """Read a BIG-bench JSON task (a ``task.json`` or its directory) as one :class:`MCTask`.

    A task whose ``task.json`` has no ``examples`` is a container: its subtasks are the
    ``task.json`` files one directory below (BIG-bench's layout), each formatted with its own
    prefixes, named ``<task>:<subtask>``; the task's accuracy is then the unweighted mean over
    subtasks (BIG-bench's aggregate). ``max_examples`` caps the examples the BIG-bench way
    (``max_examples // number of subtasks`` per subtask, drawn with ``RandomState(seed)``).
    Correct choices are those with the example's maximal target score. An empty candidate (a slip
    in a few BIG-bench files, e.g. cryobiology_spanish) cannot be scored: it is dropped, and the
    example skipped if fewer than two candidates (or no correct one) remain; each case is listed in
    ``task.info["notes"]``. Bad examples otherwise raise :class:`InputError`. ``prompt_style``: see
    :data:`PROMPT_STYLES` (recorded in ``task.info``).
    """
    json_path = _task_json_path(path)
    data = read_json(json_path)
    if not isinstance(data, dict):
        raise InputError(f"{json_path}: expected a JSON object (a BIG-bench task)")
    data = _styled(data, prompt_style)
    task_name = name or str(data.get("name") or os.path.basename(os.path.dirname(os.path.abspath(json_path))))
    info = {key: data.get(key, BIGBENCH_DEFAULTS[key]) for key in BIGBENCH_DEFAULTS}
    info["notes"] = []
    info["prompt_style"] = prompt_style
    if "examples" in data:
        examples = _bigbench_examples(json_path, data, "", max_examples, seed, info["notes"])
        return MCTask(task_name, examples, "bigbench", json_path, info)
    base = os.path.dirname(os.path.abspath(json_path))
    subs = sorted(os.path.join(base, d, "task.json") for d in os.listdir(base)
                  if os.path.isfile(os.path.join(base, d, "task.json")))
    if not subs:
        raise InputError(f"{json_path}: no 'examples' and no subtask directories with a task.json")
    per_sub = None
    if max_examples:
        per_sub = max_examples // len(subs)
        if per_sub < 1:
            raise InputError(f"{json_path}: max_examples ({max_examples}) is below the number of subtasks "
                             f"({len(subs)})")
    examples = []
    for sub in subs:
        sub_data = read_json(sub)
        if not isinstance(sub_data, dict):
            raise InputError(f"{sub}: expected a JSON object (a BIG-bench task)")
        sub_data = _styled(sub_data, prompt_style)
        group = f"{task_name}:{sub_data.get('name') or os.path.basename(os.path.dirname(sub))}"
        examples.extend(_bigbench_examples(sub, sub_data, group, per_sub, seed, info["notes"]))
    info["subtasks"] = len(subs)
    return MCTask(task_name, examples, "bigbench", json_path, info)


def is_multiple_choice_bigbench_task(task_json: str) -> Tuple[bool, str]:
    """The selection rule for the paper's multiple-choice BIG-bench tasks; returns (keep, reason).

    A BIG-bench JSON task is kept when the task (or, for a container, every subtask):

    1. is scored by its authors as multiple choice: ``preferred_score`` is ``multiple_choice_grade``
       and ``metrics`` lists ``multiple_choice_grade``; and
    2. has fixed candidate answers for every example: each example has ``target_scores`` with at
       least 2 candidates (so no example needs generation).

    Programmatic tasks (no ``task.json``) are out. The paper ("we only consider multiple choice QA
    tasks which have the fixed answers easy for the evaluation, resulting in a total of 73 tasks")
    gives no finer rule; this one keeps more than 73 on BIG-bench 1.0.0.
    """
    data = read_json(task_json)
    parts = [(task_json, data)]
    if "examples" not in data:
        base = os.path.dirname(os.path.abspath(task_json))
        subs = sorted(os.path.join(base, d, "task.json") for d in os.listdir(base)
                      if os.path.isfile(os.path.join(base, d, "task.json")))
        if not subs:
            return False, "no examples and no subtasks"
        parts = [(s, read_json(s)) for s in subs]
    for where, d in parts:
        if d.get("preferred_score") != "multiple_choice_grade":
            return False, f"{where}: preferred_score is {d.get('preferred_score')!r}"
        if "multiple_choice_grade" not in (d.get("metrics") or []):
            return False, f"{where}: metrics {d.get('metrics')!r} lack multiple_choice_grade"
        for i, ex in enumerate(d.get("examples") or []):
            ts = ex.get("target_scores") if isinstance(ex, dict) else None
            if not isinstance(ts, dict) or len(ts) < 2:
                return False, f"{where}:examples[{i}]: no target_scores with >= 2 candidates"
        if not d.get("examples"):
            return False, f"{where}: no examples"
    return True, "multiple choice"


def select_bigbench_tasks(root: str) -> List[str]:
    """Names (directory names under ``root``, BIG-bench's ``benchmark_tasks``) of the JSON tasks that
    :func:`is_multiple_choice_bigbench_task` keeps, sorted."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a directory (fetch BIG-bench with scripts/fetch_bigbench.py)")
    keep = []
    for d in sorted(os.listdir(root)):
        p = os.path.join(root, d, "task.json")
        if os.path.isfile(p) and is_multiple_choice_bigbench_task(p)[0]:
            keep.append(d)
    return keep


BIGBENCH_TASK_LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bigbench_mc_tasks.txt")


def bigbench_task_names(list_path: str = BIGBENCH_TASK_LIST) -> List[str]:
    """The committed task list: one BIG-bench task name a line, ``#`` starts a comment."""
    with open(list_path, encoding="utf-8") as f:
        return [line.split("#", 1)[0].strip() for line in f if line.split("#", 1)[0].strip()]


# ----------------------------------------------------------------------------------------------
# The six GLUE-style tasks (BRD paper, Table 8)


@dataclass(frozen=True)
class GlueStyleTask:
    """A Table 8 task: its template, candidate answers, the hub dataset and its label ids.

    ``label_to_choice[i]`` is the index in ``choices`` of the hub dataset's label id ``i``;
    ``label_names`` are the hub's names for those ids (a local file may use either form, or the
    candidate answer itself). ``aliases`` maps other column names found on the hub to ours.
    """

    name: str
    template: str
    columns: Tuple[str, ...]
    choices: Tuple[str, ...]
    label_names: Tuple[str, ...]
    label_to_choice: Tuple[int, ...]
    hub_id: str
    hub_config: Optional[str]
    split: str
    aliases: Tuple[Tuple[str, str], ...] = ()


# Templates and candidates are Table 8's, verbatim (the space before "?" in RTE/CB's is the paper's).
# Table 8 gives RTE and CB one row with "Yes No Maybe"; RTE has two labels, so it gets Yes/No here.
# Splits: the labelled evaluation split (GLUE/SuperGLUE test labels are hidden, so validation).
GLUE_STYLE_TASKS: Dict[str, GlueStyleTask] = {
    t.name: t
    for t in (
        GlueStyleTask(
            "xnli", '{premise} Question: Does this imply that "{hypothesis}"? Yes, no or maybe? Answer:',
            ("premise", "hypothesis"), ("Yes", "No", "Maybe"),
            ("entailment", "neutral", "contradiction"), (0, 2, 1), "facebook/xnli", "en", "test"),
        GlueStyleTask(
            "rte", 'Question: Can we infer that "{hypothesis}" ? {premise} Answer:',
            ("premise", "hypothesis"), ("Yes", "No"),
            ("entailment", "not_entailment"), (0, 1), "nyu-mll/glue", "rte", "validation",
            (("sentence1", "premise"), ("sentence2", "hypothesis"))),
        GlueStyleTask(
            "cb", 'Question: Can we infer that "{hypothesis}" ? {premise} Answer:',
            ("premise", "hypothesis"), ("Yes", "No", "Maybe"),
            ("entailment", "contradiction", "neutral"), (0, 1, 2), "aps/super_glue", "cb", "validation"),
        GlueStyleTask(
            "paws-x", "Sentence 1: {sentence1} Sentence 2: {sentence2} Question: Do Sentence 1 and Sentence 2 "
            "express the same meaning? Answer:",
            ("sentence1", "sentence2"), ("Yes", "No"),
            ("not_paraphrase", "paraphrase"), (1, 0), "google-research-datasets/paws-x", "en", "test"),
        GlueStyleTask(
            "boolq", "{passage} Question: {question} Answer:",
            ("passage", "question"), ("Yes", "No"),
            ("false", "true"), (1, 0), "google/boolq", None, "validation", (("answer", "label"),)),
        GlueStyleTask(
            "sst-2", "Question: Does the following sentence have a positive or negative sentiment? Sentence: "
            "{sentence} Answer:",
            ("sentence",), ("positive", "negative"),
            ("negative", "positive"), (1, 0), "nyu-mll/glue", "sst2", "validation"),
    )
}
_GLUE_ALIASES = {"paws_x": "paws-x", "pawsx": "paws-x", "sst2": "sst-2", "sst_2": "sst-2"}


def glue_style_spec(name: str) -> GlueStyleTask:
    key = name.strip().lower()
    key = _GLUE_ALIASES.get(key, key)
    if key not in GLUE_STYLE_TASKS:
        raise InputError(f"unknown task {name!r}; the built-in ones are {', '.join(GLUE_STYLE_TASKS)}")
    return GLUE_STYLE_TASKS[key]


def _glue_label(spec: GlueStyleTask, value, where: str) -> int:
    """Map a label (hub id, hub label name, candidate answer, or a boolean) to a choice index."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        v = value.strip()
        if v.lstrip("-").isdigit():
            value = int(v)
        else:
            low = v.lower()
            for i, n in enumerate(spec.label_names):
                if low == n:
                    return spec.label_to_choice[i]
            for j, c in enumerate(spec.choices):
                if low == c.lower():
                    return j
            raise InputError(f"{where}: label {value!r} is not one of {spec.name}'s labels "
                             f"{list(spec.label_names)}, ids 0-{len(spec.label_names) - 1} or answers "
                             f"{list(spec.choices)}")
    if isinstance(value, int) and 0 <= value < len(spec.label_to_choice):
        return spec.label_to_choice[value]
    raise InputError(f"{where}: label {value!r} is outside {spec.name}'s label ids 0-{len(spec.label_names) - 1} "
                     f"({', '.join(spec.label_names)})")


def _glue_examples(spec: GlueStyleTask, rows, origin: str) -> List[MCExample]:
    aliases = dict(spec.aliases)
    out = []
    for where, row in rows:
        row = {aliases.get(k, k): v for k, v in row.items()}
        values = {}
        for col in spec.columns:
            v = row.get(col)
            if not isinstance(v, str) or not v.strip():
                raise InputError(f"{where}: column {col!r} (part of the prompt) is missing or empty")
            values[col] = v.strip()
        if "label" not in row or row["label"] is None or row["label"] == "":
            raise InputError(f"{where}: column 'label' is missing")
        j = _glue_label(spec, row["label"], where)
        prompt = spec.template.format(**values)
        out.append(MCExample(prompt, list(spec.choices), (j,), where))
    return out


def _iter_table(path: str):
    """(where, row dict) for each row of a JSONL or CSV/TSV file; ``where`` is ``path:line``."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found")
    if path.endswith((".csv", ".tsv")):
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.endswith(".tsv") else ",")
            for row in reader:
                yield f"{path}:{reader.line_num}", row
        return
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InputError(f"{where}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
            yield where, row


def load_glue_style_task(name: str, path: Optional[str] = None, split: Optional[str] = None,
                         max_examples: Optional[int] = None, hub_id: Optional[str] = None,
                         hub_config: Optional[str] = None, seed: int = BIGBENCH_SEED) -> MCTask:
    """One of the six Table 8 tasks, from a local file (``path``) or the hub.

    ``name``: xnli, rte, cb, paws-x, boolq or sst-2. A local file is JSONL (one object a line) or
    CSV/TSV (a header row) with the task's text columns (``premise``/``hypothesis`` for XNLI, RTE,
    CB; ``sentence1``/``sentence2`` for PAWS-X; ``passage``/``question`` for BoolQ; ``sentence``
    for SST-2) and ``label``: the hub's label id (see :data:`GLUE_STYLE_TASKS`), its label name
    (``entailment``, ``not_entailment``, ``neutral``, ``contradiction``, ``paraphrase``,
    ``true``/``false``, ``positive``/``negative``) or the candidate answer (``Yes``). Without
    ``path`` the hub dataset (``hub_id``/``hub_config`` override the built-in one) is loaded with
    ``datasets.load_dataset`` at ``split`` (default: the task's labelled evaluation split).
    ``max_examples`` keeps a seeded random subset.
    """
    spec = glue_style_spec(name)
    if path is not None:
        examples = _glue_examples(spec, _iter_table(path), path)
        source = path
    else:
        import datasets

        hid, cfg, sp = hub_id or spec.hub_id, hub_config or spec.hub_config, split or spec.split
        ds = datasets.load_dataset(hid, cfg, split=sp)
        source = f"{hid}[{cfg}]/{sp}" if cfg else f"{hid}/{sp}"
        examples = _glue_examples(spec, ((f"{source}:{i}", row) for i, row in enumerate(ds)), source)
    if not examples:
        raise InputError(f"{source}: no examples")
    keep = _subsample(len(examples), max_examples, seed)
    info = {"template": spec.template, "choices": list(spec.choices)}
    return MCTask(spec.name, [examples[i] for i in keep], "glue", source, info)


# ----------------------------------------------------------------------------------------------
# Plain JSONL


def load_jsonl_task(path: str, name: Optional[str] = None, max_examples: Optional[int] = None,
                    seed: int = BIGBENCH_SEED) -> MCTask:
    """A plain JSONL task: ``{"prompt": str, "choices": [str, ...], "label": ...}`` a line.

    ``label`` is the index of the correct choice, the correct choice's text, or a list of either
    (several correct choices). Each choice is scored as the continuation of ``prompt`` (a space is
    put between them unless the prompt ends, or the choice starts, with whitespace).
    """
    examples = []
    for where, row in _iter_table(path):
        prompt, choices = row.get("prompt"), row.get("choices")
        if not isinstance(prompt, str):
            raise InputError(f"{where}: the prompt is missing (no string 'prompt')")
        if not isinstance(choices, list) or len(choices) < 2:
            n = len(choices) if isinstance(choices, list) else 0
            raise InputError(f"{where}: {n} choice(s); a multiple-choice example needs at least 2")
        if "label" not in row:
            raise InputError(f"{where}: no 'label'")
        labels = row["label"] if isinstance(row["label"], list) else [row["label"]]
        correct = []
        for lab in labels:
            if isinstance(lab, int) and not isinstance(lab, bool) and 0 <= lab < len(choices):
                correct.append(lab)
            elif isinstance(lab, str) and lab in choices:
                correct.append(choices.index(lab))
            else:
                raise InputError(f"{where}: label {lab!r} is outside the choices "
                                 f"(an index 0-{len(choices) - 1} or one of {choices!r})")
        _check_example(where, prompt, choices, tuple(sorted(set(correct))))
        examples.append(MCExample(prompt, list(choices), tuple(sorted(set(correct))), where))
    if not examples:
        raise InputError(f"{path}: no examples")
    keep = _subsample(len(examples), max_examples, seed)
    task_name = name or os.path.splitext(os.path.basename(path))[0]
    return MCTask(task_name, [examples[i] for i in keep], "jsonl", path, {})


# ----------------------------------------------------------------------------------------------
# Task specs (what a command line passes)


def load_tasks(specs: Sequence[str], bigbench_dir: Optional[str] = None, max_examples: Optional[int] = None,
               split: Optional[str] = None, prompt_style: str = "bigbench",
               bigbench_max_examples: Optional[int] = None) -> List[MCTask]:
    """Load tasks from command-line specs.

    * ``xnli``, ``rte``, ``cb``, ``paws-x``, ``boolq``, ``sst-2``: the hub dataset (``split`` or
      the task's default split); ``NAME=FILE`` reads a local JSONL/CSV file instead;
    * ``bigbench``: every task in the committed list, from ``bigbench_dir``;
    * ``bigbench:NAME``: one BIG-bench task from ``bigbench_dir``; ``bigbench:PATH`` a task.json or
      its directory anywhere;
    * ``jsonl:PATH`` or any ``*.jsonl`` path: a plain JSONL task.

    ``prompt_style`` builds the BIG-bench prompts (:data:`PROMPT_STYLES`); ``bigbench_max_examples`` caps the
    BIG-bench tasks alone (a seeded sample, Table 5's "1K instances of each task"), the others stay whole
    unless ``max_examples`` caps them too.
    """
    bigbench_dir = bigbench_dir or DEFAULT_BIGBENCH_DIR
    tasks: List[MCTask] = []

    cap = bigbench_max_examples or max_examples

    def bigbench(ref: str) -> MCTask:
        if os.path.exists(ref):
            return load_bigbench_task(ref, max_examples=cap, prompt_style=prompt_style)
        p = os.path.join(bigbench_dir, ref, "task.json")
        if not os.path.isfile(p):
            raise InputError(f"BIG-bench task {ref!r}: {p} not found (run scripts/fetch_bigbench.py "
                             f"--cache_dir {bigbench_dir}, or pass a task.json path)")
        return load_bigbench_task(p, max_examples=cap, prompt_style=prompt_style)

    for spec in specs:
        if spec == "bigbench":
            tasks.extend(bigbench(n) for n in bigbench_task_names())
        elif spec.startswith("bigbench:"):
            tasks.append(bigbench(spec[len("bigbench:"):]))
        elif spec.startswith("jsonl:"):
            tasks.append(load_jsonl_task(spec[len("jsonl:"):], max_examples=max_examples))
        elif spec.endswith(".jsonl") and "=" not in spec:
            tasks.append(load_jsonl_task(spec, max_examples=max_examples))
        elif "=" in spec:
            name, path = spec.split("=", 1)
            tasks.append(load_glue_style_task(name, path=path, max_examples=max_examples))
        else:
            tasks.append(load_glue_style_task(spec, split=split, max_examples=max_examples))
    return tasks
