"""The evaluation-task registry: ``evaluate.py --task NAME`` runs ``TASKS[NAME]``.

A task is a class with a name, a one-line summary (for ``--task``'s help), the argument dataclasses
it reads besides the shared ones, and ``run``. :func:`register_task` adds it by name, as
lm-evaluation-harness registers its tasks, so the command never branches on the task."""

from typing import Callable, Dict, Mapping, Tuple, Type

TASKS: Dict[str, Type["EvaluationTask"]] = {}


class EvaluationTask:
    """One ``--task``: ``run(args)`` gets every parsed argument dataclass, keyed by its class."""

    name: str = ""
    summary: str = ""
    arguments: Tuple[type, ...] = ()

    def run(self, args: Mapping[type, object]) -> dict:
        raise NotImplementedError


def register_task(name: str) -> Callable[[Type[EvaluationTask]], Type[EvaluationTask]]:
    """Class decorator: ``@register_task("summarization")`` makes the class ``--task summarization``."""

    def add(cls: Type[EvaluationTask]) -> Type[EvaluationTask]:
        if name in TASKS:
            raise ValueError(f"evaluation task {name!r} is registered twice ({TASKS[name].__name__}, {cls.__name__})")
        cls.name = name
        TASKS[name] = cls
        return cls

    return add
