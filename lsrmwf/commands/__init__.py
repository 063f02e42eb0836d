"""The command lines: ``train.py`` (:mod:`.train`), ``generate_rationales.py`` (:mod:`.generate_rationales`),
``evaluate.py`` (:mod:`.evaluate`) and ``compose_brd.py`` (:mod:`.compose_brd`); the scripts at the repository's
top call their ``main``. Each parses its arguments and dispatches: ``evaluate.py`` to the evaluation-task
registry (:mod:`lsrmwf.evaluation.tasks`), ``generate_rationales.py`` to the LLM-task registry
(:mod:`lsrmwf.llm.tasks`). :func:`parse_dataclasses` reads ``--config FILE`` (:mod:`lsrmwf.io.config`) and turns parse
errors into one-line messages. :mod:`.cli` is the ``lsrmwf <command>`` console entry point."""

import sys

from ..io.config import expand_config

CONFIG_HELP = "--config FILE reads arguments from a YAML or JSON file (keys are argument names); the command line wins."


def parse_dataclasses(parser, argv=None, json_file=None):
    """``parser``'s dataclasses from ``argv`` (or a JSON config file); unknown flags, a broken JSON file and
    invalid values become one-line :class:`lsrmwf.io.InputError` messages instead of tracebacks."""
    from ..io import InputError, read_json

    if json_file is not None:
        config = read_json(json_file)
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
    if parser.epilog is None:
        parser.epilog = CONFIG_HELP
    argv = expand_config(parser, sys.argv[1:] if argv is None else argv)
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
