"""``train.py``'s recipes by name: each is its arguments class, when it applies, its checks and its run.

    lsr_mwf        a BART/LSR-MWF student (views, gates, γ; plain BART with --baseline; seq2seq logit KD;
                   the BART basic reading stage)                                      -> .lsr_mwf
    logit_kd       a decoder-only student: white-box or served sparse top-K KD, or CE  -> .logit_kd
    basic_reading  a decoder-only student's BRD stage (LM loss on the packed mix)     -> .basic_reading
    task_tuning    a decoder-only student's SFT / TaskDistillation on task answers    -> .task_tuning

:func:`run` picks the one recipe that applies to the parsed arguments (the student's kind and ``--stage``)
and runs it between the shared steps of :mod:`lsrmwf.training.core`. :func:`resolve_preset` fills what the
command line left open from :mod:`lsrmwf.presets`.
"""

import logging
from dataclasses import dataclass
from typing import Callable, Dict

from ...io import InputError
from ...presets import HUB_DATASETS, fill_brd_preset, fill_from_preset, fill_task_preset, get_preset
from ..core import TrainingInterrupted, check_run, find_checkpoint, setup_logging, write_interrupted_summary
from . import basic_reading, logit_kd, lsr_mwf, task_tuning

logger = logging.getLogger("lsrmwf.train")


@dataclass(frozen=True)
class Recipe:
    name: str
    arguments: type  # its dataclass of flags; RunArguments holds the parsed one under ``name``
    applies: Callable  # (RunArguments) -> bool
    check: Callable  # (RunArguments) -> None, an InputError for flags the recipe cannot honour
    run: Callable  # (RunArguments, checkpoint or None) -> metrics


RECIPES: Dict[str, Recipe] = {
    module.__name__.rsplit(".", 1)[1]: Recipe(module.__name__.rsplit(".", 1)[1], module.ARGUMENTS, module.applies,
                                              module.check, module.run)
    for module in (lsr_mwf, logit_kd, basic_reading, task_tuning)
}


def select(args) -> Recipe:
    chosen = [r for r in RECIPES.values() if r.applies(args)]
    if len(chosen) != 1:
        raise RuntimeError(f"exactly one train.py recipe must apply, got {[r.name for r in chosen]}")
    return chosen[0]


def run(args) -> Dict[str, float]:
    """Check the run, find the checkpoint to resume, then the recipe that applies."""
    setup_logging(args.training)
    check_run(args.training)
    checkpoint = find_checkpoint(args.training)
    recipe = select(args)
    recipe.check(args)
    try:
        return recipe.run(args, checkpoint)
    except TrainingInterrupted as stop:
        write_interrupted_summary(args.training, checkpoint, stop, recipe.name)
        raise


def resolve_preset(args, given=frozenset()) -> str:
    """Fill every unset value from the preset: explicit, else implied by the data, else cnndm.

    ``given`` names the arguments set on the command line (or in the JSON file). Dataclass fields
    default to ``None`` when "unset" is visible; the optimizer's are HF's fields with real defaults,
    so for them ``given`` decides: the preset's schedule (the paper's Noam schedule) fills
    ``lr_schedule``, and, when the schedule is noam and the user did not choose them,
    ``learning_rate`` (the Noam factor) and ``warmup_steps``. An explicit ``--lr_schedule hf`` keeps
    HF's learning rate and warmup defaults (the preset's numbers are Noam's).
    """
    data, brd = args.data, args.basic_reading
    preset = data.preset
    if preset is None and brd.brd_passages_dir:
        preset = data.preset = "brd"
        logger.info("--brd_passages_dir: using preset 'brd' (the BRD paper's A.1) for unset values")
    if preset is None and args.task_tuning.active:
        preset = data.preset = "task"
        logger.info("task examples given: using preset 'task' (BRD's supervised stages) for unset values")
    if preset == "task":
        fill_task_preset((data, args.training), given)
        return preset
    if preset == "brd":
        if brd.stage != "basic_reading":
            raise InputError("--preset brd is the causal --stage basic_reading's (BRD paper, A.1)")
        fill_brd_preset((data, brd, args.training), given)
        return preset
    if preset is None:
        preset = HUB_DATASETS.get(data.dataset_name or "", {}).get("preset", "cnndm")
        logger.info("no --preset given: using %r for unset values", preset)
        data.preset = preset
    fill_from_preset(data, preset)
    fill_from_preset(args.lsr_mwf, preset, fields=("gate_init", "gamma_ce", "gamma_views"))
    resolve_optimizer(args.training, preset, given)
    return preset


def resolve_optimizer(training_args, preset: str, given=frozenset()) -> None:
    """The paper's optimizer settings for whatever the command line left open (see :func:`resolve_preset`)."""
    p = get_preset(preset)
    if "lr_schedule" not in given:
        training_args.lr_schedule = p.lr_schedule
    if training_args.lr_schedule == "noam":
        if "learning_rate" not in given:
            training_args.learning_rate = p.learning_rate
        if not given & {"warmup_steps", "warmup_ratio"}:
            training_args.warmup_steps = p.warmup_steps
        if not training_args.warmup_steps >= 1:
            raise InputError("--lr_schedule noam needs --warmup_steps >= 1 (a step count; the paper uses 10000)")
        w = int(training_args.warmup_steps)
        logger.info("learning rate: noam, %g * min(step^-0.5, step * %d^-1.5): peak %.3g at step %d",
                    training_args.learning_rate, w, training_args.learning_rate * w ** -0.5, w)
