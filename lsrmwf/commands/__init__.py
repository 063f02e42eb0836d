"""The command lines: ``train.py`` (:mod:`.train`), ``generate_rationales.py`` (:mod:`.generate_rationales`),
``evaluate.py`` (:mod:`.evaluate`) and ``compose_brd.py`` (:mod:`.compose_brd`); the scripts at the repository's
top call their ``main``. Each parses its arguments and dispatches: ``evaluate.py`` to the evaluation-task
registry (:mod:`lsrmwf.evaluation.tasks`), ``generate_rationales.py`` to the LLM-task registry
(:mod:`lsrmwf.llm.tasks`). :func:`parse_dataclasses` reads ``--config FILE`` (:mod:`lsrmwf.io.config`), turns
parse errors into one-line messages and gives every command ``--log_level``. :mod:`.cli` is the
``lsrmwf <command>`` console entry point."""

import logging
import sys

from ..io.config import expand_config

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CONFIG_HELP = ("--config FILE reads arguments from a YAML or JSON file (keys are argument names); the command line "
               "wins.")


def parse_dataclasses(parser, argv=None, json_file=None):
    """``parser``'s dataclasses from ``argv`` (or a JSON config file); unknown flags, a broken JSON file and
    invalid values become one-line :class:`lsrmwf.io.InputError` messages instead of tracebacks. A parser without
    ``--log_level`` (train.py's comes with its training arguments) gets one here, applied by :func:`set_log_level`."""
    from ..io import read_json
    from ..io.provenance import record_run

    own = not any(action.dest == "log_level" for action in parser._actions)
    if own:
        parser.add_argument("--log_level", choices=LOG_LEVELS, default=None,
                            help="Level of lsrmwf's (and transformers' / datasets') log on stderr (default: each "
                                 "command's own, info for progress lines).")
    level, config = None, None
    if json_file is None:
        if parser.epilog is None:
            parser.epilog = CONFIG_HELP
        argv = expand_config(parser, sys.argv[1:] if argv is None else argv)
    else:
        config = read_json(json_file)
        if own and isinstance(config, dict):
            level = config.pop("log_level", None)
    parsed = _parse(parser, argv, json_file, config)
    if own and json_file is None:
        *parsed, namespace = parsed  # the one flag no dataclass holds
        level = namespace.log_level
    set_log_level(level)
    record_run([json_file] if json_file is not None else argv, parsed)  # for every results file's provenance
    return tuple(parsed)


def set_log_level(level) -> None:
    """``--log_level`` for lsrmwf's loggers (each then inherits it) and transformers' / datasets'; ``None``: keep."""
    if level is None:
        return
    import datasets
    import transformers

    number = getattr(logging, level.upper())
    logging.getLogger("lsrmwf").setLevel(number)
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("lsrmwf.") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.NOTSET)
    transformers.utils.logging.set_verbosity(number)
    datasets.utils.logging.set_verbosity(number)


def _parse(parser, argv, json_file, config):
    from ..io import InputError

    if json_file is not None:
        if not isinstance(config, dict):
            raise InputError(f"{json_file}: expected a JSON object of argument names and values")
        try:
            return parser.parse_dict(config)
        except ValueError as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"{json_file}: {' '.join(str(e).split())}") from None
        except TypeError as e:  # a key no argument has
            raise InputError(f"{json_file}: {' '.join(str(e).split())}") from None
    try:
        return parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    except ValueError as e:
        if isinstance(e, InputError):
            raise
        text = " ".join(str(e).split())
        prefix = "Some specified arguments are not used by the HfArgumentParser: "
        if text.startswith(prefix):
            raise InputError(f"unknown argument(s) {text[len(prefix):]}; see --help") from None
        raise InputError(text) from None
