"""``evaluate.py``'s tasks, registered by name (:mod:`.registry`): ``summarization``
(:mod:`.summarization`, generation in :mod:`.predictions`), ``multiple_choice``
(:mod:`.multiple_choice`), ``probe`` (:mod:`.probe`), ``teacher_choices`` (:mod:`.teacher_choices`) and
``teacher_student_ce`` (:mod:`.teacher_student_ce`); each module holds its task's own arguments, its run
and its report. :mod:`.arguments` holds the arguments every task reads. A new task is a module with a
``@register_task("name")`` class, imported here."""

from dataclasses import dataclass, field
from typing import Tuple

from . import multiple_choice, probe, summarization, teacher_choices, teacher_student_ce  # noqa: F401  (each registers its task)
from .arguments import GenerationArguments, InputArguments
from .registry import TASKS, EvaluationTask, register_task

DEFAULT_TASK = "summarization"
NAMES = [DEFAULT_TASK] + sorted(name for name in TASKS if name != DEFAULT_TASK)  # the default first in --help
HELP = [f"{name} ({TASKS[name].summary})" for name in NAMES]


@dataclass
class TaskArguments:
    _argument_group_name = "task"

    task: str = field(
        default=DEFAULT_TASK,
        metadata={"help": ", ".join(HELP[:-1]) + " or " + HELP[-1] + ".", "choices": NAMES})


def argument_classes() -> Tuple[type, ...]:
    """The parser's dataclasses: the shared ones, then each task's own (once each, in registry order)."""
    own = [c for name in NAMES for c in TASKS[name].arguments]
    return (InputArguments, GenerationArguments, TaskArguments, *dict.fromkeys(own))


__all__ = ["TASKS", "EvaluationTask", "GenerationArguments", "InputArguments", "TaskArguments", "argument_classes",
           "register_task"]
