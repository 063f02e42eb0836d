"""The Basic Reading Distillation few-shot prompts (the BRD paper's Tables 1-2), read from one editable file.

Each behaviour (``ner``: named entity recognition, ``qra``: question raising and answering) has a
task description, a ``template`` with ``{sentence}`` and ``{output}``, and worked examples. A request
is one user message in the paper's shape::

    <description>

    <template with example 1>

    <template with example 2>
    ...

    <template with the input sentence, cut where {output} starts>

The default file is :data:`DEFAULT_FEWSHOT_FILE` (``lsrmwf/llm/brd_fewshot.json``);
``--brd_fewshot_file`` points at an edited copy. Each behaviour's prompt version hashes its
description, template, examples and this module's layout (:data:`LAYOUT`), so any edit gives new
versions (recorded per row) and a new cache key.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, List

from ..io import InputError

BEHAVIOURS = ("ner", "qra")
DEFAULT_FEWSHOT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "brd_fewshot.json")
# How the parts are joined; part of every version, so a change here is a new prompt too.
LAYOUT = "description\\n\\nexample\\n\\nexample...\\n\\nquery"
PART_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class FewShotPrompt:
    behaviour: str
    description: str
    template: str
    examples: tuple  # ((sentence, output), ...)

    @property
    def version(self) -> str:
        blob = json.dumps([LAYOUT, self.description, self.template, list(self.examples)], ensure_ascii=False)
        return f"brd-{self.behaviour}-" + hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def input_label(self) -> str:
        """The text before ``{sentence}`` (``Enter a sentence:``): where a model that runs on into a next example
        is cut."""
        return self.template.split("{sentence}", 1)[0].strip()

    @property
    def output_label(self) -> str:
        """The text between the sentence and ``{output}`` (``Output:``), stripped from the front of an answer."""
        return self.template.split("{sentence}", 1)[1].split("{output}", 1)[0].strip()

    def fill(self, sentence: str, output: str = "") -> str:
        before, after = self.template.split("{output}", 1)
        text = before.replace("{sentence}", sentence)
        return (text + output + after) if output else text.rstrip()

    def prompt(self, sentence: str) -> str:
        parts = [self.description.strip()] + [self.fill(s, o) for s, o in self.examples] + [self.fill(sentence)]
        return PART_SEPARATOR.join(parts)

    def messages(self, sentence: str) -> List[Dict[str, str]]:
        return [{"role": "user", "content": self.prompt(sentence)}]


def load_fewshot(path: str = DEFAULT_FEWSHOT_FILE) -> Dict[str, FewShotPrompt]:
    """Every behaviour the file defines, validated; errors name the file and the entry."""
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: few-shot prompt file not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(spec, dict):
        raise InputError(f"{path}: must be a JSON object with one entry per behaviour ({', '.join(BEHAVIOURS)})")
    out = {}
    for name, entry in spec.items():
        if name.startswith("_"):
            continue  # comments
        where = f"{path}: {name!r}"
        if name not in BEHAVIOURS:
            raise InputError(f"{where}: unknown behaviour; known: {', '.join(BEHAVIOURS)}")
        if not isinstance(entry, dict):
            raise InputError(f"{where}: must be an object with 'description', 'template' and 'examples'")
        for key in ("description", "template"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise InputError(f"{where}: {key!r} is missing or empty")
        template = entry["template"]
        for placeholder in ("{sentence}", "{output}"):
            if template.count(placeholder) != 1:
                raise InputError(f"{where}: the template must contain {placeholder} exactly once, got {template!r}")
        if template.index("{sentence}") > template.index("{output}"):
            raise InputError(f"{where}: the template must put {{sentence}} before {{output}}, got {template!r}")
        examples = entry.get("examples")
        if not isinstance(examples, list) or not examples:
            raise InputError(f"{where}: 'examples' must be a non-empty list of {{sentence, output}} objects")
        pairs = []
        for i, ex in enumerate(examples):
            if not isinstance(ex, dict) or not all(isinstance(ex.get(k), str) and ex[k].strip()
                                                   for k in ("sentence", "output")):
                raise InputError(f"{where}: examples[{i}] must be an object with non-empty "
                                 "'sentence' and 'output' strings")
            pairs.append((ex["sentence"].strip(), ex["output"].strip()))
        out[name] = FewShotPrompt(name, entry["description"], template, tuple(pairs))
    return out


def select_behaviours(prompts: Dict[str, FewShotPrompt], names: str, path: str) -> List[str]:
    """``--brd_behaviours ner,qra`` as a list; each must be defined in the few-shot file."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen:
        raise InputError("--brd_behaviours is empty; give ner, qra or ner,qra")
    for n in chosen:
        if n not in BEHAVIOURS:
            raise InputError(f"--brd_behaviours: unknown behaviour {n!r}; known: {', '.join(BEHAVIOURS)}")
        if n not in prompts:
            raise InputError(f"--brd_behaviours {n}: {path} has no {n!r} entry")
    if len(set(chosen)) != len(chosen):
        raise InputError(f"--brd_behaviours names a behaviour twice: {names!r}")
    return chosen
