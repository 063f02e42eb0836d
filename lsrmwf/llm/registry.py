"""The LLM-task registry: ``generate_rationales.py --task NAME`` builds ``LLM_TASKS[NAME]``.

An entry is a class with a name, a one-line summary (for ``--task``'s help), the argument dataclasses
it reads besides the shared ones, ``passages`` (the documents it needs), ``build`` (the task object
:func:`lsrmwf.llm.pipeline.run_task` runs) and ``report`` (what it adds to the run summary), so the
command never branches on the task."""

from typing import Dict, Mapping, Type

from ..io.registry import registrar

LLM_TASKS: Dict[str, Type["LLMTaskBuilder"]] = {}


class LLMTaskBuilder:
    name: str = ""
    summary: str = ""
    arguments: tuple = ()

    def passages(self, args: Mapping[type, object]):
        """The documents (a ``datasets.Dataset`` with id/document/summary) this task reads."""
        raise NotImplementedError

    def build(self, args: Mapping[type, object]):
        """The checked task object for :func:`lsrmwf.llm.pipeline.run_task`."""
        raise NotImplementedError

    def report(self, task, args: Mapping[type, object], summary: dict) -> None:
        """Add to ``summary`` after the run (nothing by default)."""


# ``@register_llm_task("rationales")`` makes the class ``--task rationales``.
register_llm_task = registrar(LLM_TASKS, "LLM task")
