"""BRD's supervised stages for a causal student: SFT (gold answers) and TaskDistillation (the teacher's answers).

One example is a task prompt followed by its answer, tokenized exactly as the multiple-choice scorer
tokenizes (prompt, candidate) (:func:`lsrmwf.evaluation.multiple_choice.encode_pair`: the answer joined by
the scorer's spacing rule, the tokenizer's own leading special tokens), then eos. Only the answer tokens and
that eos carry a loss; the prompt's labels are ``-100`` (the causal prompt -> target layout of
:mod:`lsrmwf.data.causal`, batched by its :class:`~lsrmwf.data.causal.CausalCollator`).

* ``--task_train_file``: a split file of ``python -m lsrmwf.commands.task_data`` (rows {prompt, choices,
  label}); the answer is the first gold choice (SFT).
* ``--task_answers_file``: the rows of ``generate_rationales.py --task task_answers`` (TaskDistillation);
  the answer is the choice the teacher's answer was mapped to. Rows without one (unmappable or failed) are
  left out and counted in ``run_summary.json``.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..evaluation.multiple_choice import encode_pair
from ..io import InputError, iter_jsonl
from .base import DistillTrainer, causal_lm_loss


@dataclass
class TaskTuningArguments:
    """The supervised stages (SFT / TaskDistillation) of a causal student on task examples."""

    _argument_group_name = "BRD supervised stages: SFT and TaskDistillation (a causal student, --preset task)"

    task_train_file: Optional[str] = field(
        default=None,
        metadata={"help": "SFT: a training split of python -m lsrmwf.commands.task_data (or several, "
                          "comma-separated); the student learns prompt -> gold answer."})
    task_answers_file: Optional[str] = field(
        default=None,
        metadata={"help": "TaskDistillation: the output of generate_rationales.py --task task_answers (or several, "
                          "comma-separated); the student learns prompt -> the teacher's mapped answer."})

    def __post_init__(self):
        if self.task_train_file and self.task_answers_file:
            raise InputError("give one of --task_train_file (SFT, gold answers) or --task_answers_file "
                             "(TaskDistillation, the teacher's answers)")

    @property
    def active(self) -> bool:
        return bool(self.task_train_file or self.task_answers_file)


def gold_pairs(path: str) -> List[Tuple[str, str]]:
    """(prompt, first gold answer) of each row of a split file."""
    from ..evaluation.task_data import read_split_rows

    return [(r["prompt"], r["choices"][r["label"][0]]) for r in read_split_rows(path)]


def teacher_pairs(path: str) -> Tuple[List[Tuple[str, str]], Dict[str, int]]:
    """(prompt, the teacher's mapped choice) of each finished row; counts of rows used and left out."""
    pairs, counts = [], {"rows": 0, "used": 0, "unmappable": 0, "failed": 0}
    for n, row in iter_jsonl(path, tolerate_torn_tail=True):
        counts["rows"] += 1
        where = f"{path}:{n}"
        if row.get("error") is not None:
            counts["failed"] += 1
            continue
        for key in ("prompt", "choices"):
            if key not in row:
                raise InputError(f"{where}: field {key!r} is missing (is this a --task task_answers file?)")
        choice = row.get("choice")
        if choice is None:
            counts["unmappable"] += 1
            continue
        if not isinstance(choice, int) or not 0 <= choice < len(row["choices"]):
            raise InputError(f"{where}: field 'choice' {choice!r} is outside the {len(row['choices'])} choices")
        pairs.append((row["prompt"], row["choices"][choice]))
        counts["used"] += 1
    return pairs, counts


def encode_task_example(tokenizer, prompt: str, answer: str, max_length: Optional[int] = None) -> Dict[str, list]:
    """``input_ids`` = the scorer's ids of (prompt, answer) + eos; ``labels`` masked over the prompt. With
    ``max_length`` (the model's positions) the prompt loses tokens from the left, as in the scorer, so that
    ids + eos fit."""
    # encode_pair keeps len(ids) - 1 <= its max_length (the scorer reads ids[:-1]); here all of ids + eos is read
    ids, n_ctx = encode_pair(tokenizer, prompt, answer, max_length=max_length - 2 if max_length else None)
    ids = list(ids) + [tokenizer.eos_token_id]
    return {"input_ids": ids, "labels": [-100] * n_ctx + ids[n_ctx:]}


def load_task_pairs(args: TaskTuningArguments) -> Tuple[List[Tuple[str, str]], dict]:
    files = [f for f in (args.task_train_file or args.task_answers_file).split(",") if f.strip()]
    pairs, stats = [], {"kind": "sft" if args.task_train_file else "task_distillation", "files": {}}
    for path in files:
        if args.task_train_file:
            got = gold_pairs(path)
            stats["files"][path] = {"used": len(got)}
        else:
            got, stats["files"][path] = teacher_pairs(path)
        pairs.extend(got)
    if not pairs:
        raise InputError(f"{', '.join(files)}: no usable (prompt, answer) example")
    return pairs, stats


class TaskTuningTrainer(DistillTrainer):
    """Next-token loss over the answer tokens of (prompt, answer) examples."""

    term_names = ["ce"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss_shifts_labels = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits, targets = outputs.logits[:, :-1], inputs["labels"][:, 1:]
        loss = causal_lm_loss(logits, targets)
        if model.training:
            self._record({"ce": loss}, loss.device)
            loss = loss * self._token_share(targets.ne(-100).sum(), num_items_in_batch)
        return (loss, outputs) if return_outputs else loss
