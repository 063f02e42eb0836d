"""Checkpoints that can be trusted: a save that did not finish is never resumed from.

:class:`LsrMwfTrainer` writes ``checkpoint_complete.json`` into ``checkpoint-N`` once everything
of the save is on disk (model, optimizer, scheduler, RNG state, trainer state). A ``checkpoint-N``
without it is a save cut short (kill -9, a full disk, a crashed node), unless it predates the
marker and its ``trainer_state.json`` (which the Trainer writes last) is whole.

:func:`resolve_checkpoint` picks what a run resumes from: ``--resume_from_checkpoint``, else the
newest *complete* checkpoint in ``--output_dir``. Incomplete ones newer than it are renamed to
``incomplete-checkpoint-N`` (kept for inspection, out of the Trainer's way) with a warning. A
checkpoint without optimizer and scheduler state (``optimizer.pt``/``scheduler.pt``, or
DeepSpeed's ``global_stepN/``) would resume with a fresh optimizer: that is an error unless
``--allow_fresh_optimizer``.
"""

import json
import logging
import os
import re
import time
from typing import List, Optional, Tuple

from ..io import InputError

logger = logging.getLogger("lsrmwf.train")

COMPLETE_MARKER = "checkpoint_complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def write_complete_marker(checkpoint_dir: str, step: int) -> None:
    """Mark ``checkpoint_dir`` finished (atomically: a temporary name, then a rename)."""
    files = sorted(os.listdir(checkpoint_dir))
    tmp = os.path.join(checkpoint_dir, f".{COMPLETE_MARKER}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"global_step": step, "files": files, "time": time.time()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(checkpoint_dir, COMPLETE_MARKER))


def checkpoint_problem(path: str) -> Optional[str]:
    """``None`` if ``path`` is a complete checkpoint, else what shows the save did not finish."""
    if os.path.isfile(os.path.join(path, COMPLETE_MARKER)):
        return None
    state = os.path.join(path, "trainer_state.json")
    if not os.path.isfile(state):
        return "no completion marker and no trainer_state.json (a save that did not finish)"
    try:
        with open(state, encoding="utf-8") as f:
            json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "no completion marker and trainer_state.json is cut short (a save that did not finish)"
    return None  # written before completion markers existed; the Trainer writes trainer_state.json last


def optimizer_problem(path: str) -> Optional[str]:
    """``None`` if ``path`` holds optimizer and scheduler state, else what is missing."""
    entries = os.listdir(path)
    if any(e.startswith("global_step") and os.path.isdir(os.path.join(path, e)) for e in entries):
        return None  # DeepSpeed keeps optimizer (and its scheduler) state in global_stepN/
    missing = [f for f in ("optimizer.pt", "scheduler.pt") if f not in entries]
    if "optimizer.pt" in missing and any(e.startswith("optimizer") for e in entries):
        missing.remove("optimizer.pt")  # FSDP / sharded optimizer state
    if missing:
        return f"no {' or '.join(missing)}"
    return None


def list_checkpoints(output_dir: str) -> List[Tuple[int, str]]:
    """``(step, path)`` of every ``checkpoint-N`` directory, newest first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        m = _CHECKPOINT.match(name)
        if m and os.path.isdir(os.path.join(output_dir, name)):
            found.append((int(m.group(1)), os.path.join(output_dir, name)))
    return sorted(found, reverse=True)


def resolve_checkpoint(training_args, is_main: bool = True) -> Optional[str]:
    """The checkpoint to resume from (or ``None``), after the checks above; see the module docstring."""
    explicit = training_args.resume_from_checkpoint
    allow_fresh = getattr(training_args, "allow_fresh_optimizer", False)
    if explicit is not None:
        if not os.path.isdir(explicit):
            raise InputError(f"--resume_from_checkpoint {explicit}: no such directory")
        problem = checkpoint_problem(explicit)
        if problem:
            complete = [p for _, p in list_checkpoints(os.path.dirname(os.path.abspath(explicit)))
                        if not checkpoint_problem(p)]
            hint = f"; the last complete one there is {complete[0]}" if complete else ""
            raise InputError(f"--resume_from_checkpoint {explicit}: {problem}{hint}")
        checkpoint = explicit
    else:
        if not (training_args.do_train and not training_args.overwrite_output_dir):
            return None
        checkpoint = None
        for step, path in list_checkpoints(training_args.output_dir):
            problem = checkpoint_problem(path)
            if problem is None:
                checkpoint = path
                break
            aside = os.path.join(training_args.output_dir, f"incomplete-checkpoint-{step}")
            logger.warning("%s is incomplete (%s): skipped%s", path, problem,
                           f", moved to {aside}" if is_main else "")
            if is_main:
                if os.path.exists(aside):
                    aside = f"{aside}-{int(time.time())}"
                os.rename(path, aside)
        if checkpoint is None:
            return None
        logger.warning("resuming from %s, the last complete checkpoint in --output_dir (--overwrite_output_dir "
                       "starts afresh)", checkpoint)
    problem = optimizer_problem(checkpoint)
    if problem:
        if not allow_fresh:
            raise InputError(f"{checkpoint}: {problem}: resuming would restart the optimizer and "
                             f"learning-rate schedule from scratch. Pass --allow_fresh_optimizer to do that knowingly")
        logger.warning("%s: %s: resuming with a fresh optimizer and schedule (--allow_fresh_optimizer)", checkpoint,
                       problem)
    return checkpoint
