"""``--config run.yaml`` (or ``.json``) for every command: the file's keys are argument names, the command line
wins over the file, an unknown key is one line naming the key and the file, and :func:`save_config` writes the
resolved arguments (file and command line merged) so that ``--config saved.yaml`` repeats the run."""

import enum
import os
from typing import Dict, Iterable, List, Optional

from . import InputError, read_json

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
SECRETS = ("api_key", "hub_token")  # never written to a saved config


def given_flags(argv: List[str]) -> set:
    """The argument names on a command line (``--warmup-steps=5`` -> ``warmup_steps``)."""
    return {a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}


def read_config(path: str) -> dict:
    """The mapping a YAML or JSON config file holds; anything else is a one-line :class:`InputError`."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in CONFIG_SUFFIXES:
        raise InputError(f"--config {path}: not a YAML or JSON file (give a {', '.join(CONFIG_SUFFIXES)} file)")
    if suffix == ".json":
        config = read_json(path)
    else:
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                config = yaml.safe_load(f)
        except FileNotFoundError:
            raise InputError(f"--config {path}: file not found") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise InputError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a mapping of argument names to values, got {type(config).__name__}")
    return config


def as_flags(key: str, value) -> List[str]:
    if isinstance(value, (list, tuple)):
        return [f"--{key}", *map(str, value)]
    if isinstance(value, bool):
        return [f"--{key}", str(value).lower()]
    if isinstance(value, dict):
        import json

        return [f"--{key}", json.dumps(value)]
    return [f"--{key}", str(value)]


def expand_config(parser, argv: Iterable[str]) -> List[str]:
    """``argv`` with ``--config FILE`` replaced by the file's arguments as flags, minus those the command line
    gives itself (so the command line wins, list arguments too)."""
    argv, path = list(argv), None
    for i, a in enumerate(argv):
        if a == "--config" or a.startswith("--config="):
            if a == "--config" and i + 1 >= len(argv):
                raise InputError("--config: give a YAML or JSON file")
            path = a.split("=", 1)[1] if "=" in a else argv[i + 1]
            del argv[i: i + (1 if "=" in a else 2)]
            break
    if path is None:
        return argv
    known = {action.dest for action in parser._actions}
    given, flags = given_flags(argv), []
    for key, value in read_config(path).items():
        name = str(key).replace("-", "_")
        if name not in known or name == "help":
            raise InputError(f"{path}: unknown key {key!r} (no argument of this command has that name; see --help)")
        if name not in given and value is not None:
            flags += as_flags(name, value)
    return flags + argv


def resolved_config(parser, argv: List[str]) -> Dict[str, object]:
    """The arguments ``argv`` gives (file and command line merged), as the parser reads them (before any
    dataclass ``__post_init__`` rewrites them, so the parser reads them back the same)."""
    values = vars(parser.parse_known_args(argv)[0])
    out = {}
    for name in sorted(given_flags(argv)):
        if name not in values and name.startswith("no_") and name[3:] in values:
            name = name[3:]  # --no_x sets x
        if name in values and name not in SECRETS:
            out[name] = plain(values[name])
    return out


def plain(value):
    """A value YAML writes and the parser reads back: enums as their value, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, dict)):
        return value
    return str(value)


def save_config(path: Optional[str], parser, argv: List[str], flag: str = "--output_dir") -> Optional[str]:
    """Write :func:`resolved_config` as YAML to ``path`` (its folder created); the path, or None without one.
    A folder that cannot be written is an :class:`InputError` naming ``flag``."""
    if not path:
        return None
    import yaml

    from . import write_text_atomic

    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
        write_text_atomic(path, yaml.safe_dump(resolved_config(parser, argv), sort_keys=True, allow_unicode=True))
    except OSError as e:
        raise InputError(f"{flag} {folder}: cannot be written ({e.strerror or e})") from None
    return path


def save_beside_outputs(parser, parsed: List[object], argv: List[str], name: str) -> Optional[str]:
    """:func:`save_config` to ``<output_dir>/<name>_config.yaml`` (the first parsed ``output_dir``), or beside
    the ``output`` file (``out.jsonl`` -> ``out.config.yaml``); None when the run names neither."""
    for obj in parsed:
        if getattr(obj, "output_dir", None):
            return save_config(os.path.join(obj.output_dir, f"{name}_config.yaml"), parser, argv)
    for obj in parsed:
        if getattr(obj, "output", None):
            return save_config(os.path.splitext(obj.output)[0] + ".config.yaml", parser, argv, flag="--output")
    return None
