"""The evaluation-task registry: ``evaluate.py --task NAME`` runs ``TASKS[NAME]``.

A task is a class with a name, a one-line summary (for ``--task``'s help), the argument dataclasses
it reads besides the shared ones, and ``run``. :func:`register_task` adds it by name, as
lm-evaluation-harness registers its tasks, so the command never branches on the task."""

from typing import Dict, Mapping, Tuple, Type

from ...io.registry import registrar

TASKS: Dict[str, Type["EvaluationTask"]] = {}


class EvaluationTask:
    """One ``--task``: ``run(args)`` gets every parsed argument dataclass, keyed by its class."""

    name: str = ""
    summary: str = ""
    arguments: Tuple[type, ...] = ()

    def run(self, args: Mapping[type, object]) -> dict:
        raise NotImplementedError


# ``@register_task("summarization")`` makes the class ``--task summarization``.
register_task = registrar(TASKS, "evaluation task")
