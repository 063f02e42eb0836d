"""What produced a results file: one block, ``PROVENANCE_KEY`` in every results file and run summary.

``{"lsrmwf", "versions" (torch, transformers, datasets, accelerate, deepspeed, openai; null when not
installed), "command_line", "arguments" (the parsed dataclasses as dicts), "git" ({"commit", "dirty"}
when the package runs from a git checkout, else null), "date" (UTC, ISO 8601), "seed", "device"}``.
The command line and parsed arguments default to those :func:`record_run` saw (the commands' parser
calls it); the command line falls back to ``sys.argv``.
"""

import dataclasses
import datetime
import os
import subprocess
import sys
from importlib import metadata
from typing import Iterable, Optional

PROVENANCE_KEY = "provenance"
LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "deepspeed", "openai")
SECRET_FIELDS = ("api_key", "hub_token", "push_to_hub_token")
_RUN = {}


def record_run(argv: Optional[Iterable[str]], parsed: Iterable = ()) -> None:
    """Remember the command line a command parsed (``None``: ``sys.argv[1:]``) and its parsed dataclasses
    (kept by reference: values a preset fills in later show) for :func:`provenance`."""
    _RUN["argv"] = [os.path.basename(sys.argv[0])] + list(sys.argv[1:] if argv is None else argv)
    _RUN["parsed"] = tuple(parsed)


def version_of(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_state(path: Optional[str] = None) -> Optional[dict]:
    """``{"commit", "dirty"}`` of the git checkout holding ``path`` (default: this package), or ``None``
    outside a repository or without git."""
    where = path or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def as_plain(value):
    """Dataclasses (and what they hold) as JSON-able values; secrets as ``"<redacted>"``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: ("<redacted>" if f.name in SECRET_FIELDS and getattr(value, f.name) else
                         as_plain(getattr(value, f.name)))
                for f in dataclasses.fields(value) if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [as_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def provenance(arguments: Optional[Iterable] = None, seed: Optional[int] = None, device=None) -> dict:
    """The provenance block (see the module docstring) for ``arguments`` (parsed dataclasses; default: the
    recorded ones)."""
    parsed = {type(a).__name__: as_plain(a) for a in (_RUN.get("parsed", ()) if arguments is None else arguments)}
    return {
        "lsrmwf": version_of("lsrmwf"),
        "versions": {name: version_of(name) for name in LIBRARIES},
        "python": sys.version.split()[0],
        "command_line": _RUN.get("argv", [os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "arguments": parsed,
        "git": git_state(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "device": None if device is None else str(device),
    }
