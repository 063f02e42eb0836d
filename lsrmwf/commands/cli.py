"""The ``lsrmwf`` console command: ``lsrmwf <command> [flags]`` runs the same ``main`` as the top-level script
(``lsrmwf train ...`` is ``python train.py ...``). :data:`COMMANDS` is the registry: a name, the module and
its function ``(argv) -> exit code``, and one line of help."""

import importlib
import sys
from typing import Dict, List, NamedTuple, Optional


class Command(NamedTuple):
    module: str
    help: str
    function: str = "main"


COMMANDS: Dict[str, Command] = {
    "train": Command("lsrmwf.commands.train", "train a student (train.py)", "script_main"),
    "generate": Command("lsrmwf.commands.generate_rationales",
                        "rationales, basic-reading answers or teacher log-probs from an LLM (generate_rationales.py)"),
    "evaluate": Command("lsrmwf.commands.evaluate", "score, generate from a checkpoint, compare (evaluate.py)"),
    "compose-brd": Command("lsrmwf.commands.compose_brd", "compose the BRD passage files (compose_brd.py)"),
    "export": Command("lsrmwf.commands.export",
                      "rationales, teacher top-K log-probs or BRD passages as Parquet + dataset card"),
    "demo": Command("lsrmwf.demo.lsr_mwf", "the LSR-MWF demo end to end (python -m lsrmwf.demo)"),
    "task-data": Command("lsrmwf.commands.task_data",
                         "BRD's seeded train / tuning / test task splits (python -m lsrmwf.commands.task_data)"),
    "analysis": Command("lsrmwf.analysis.__main__", "the ablations, Table 2's LLM rows; 'table3' gathers BRD's "
                                                    "Table 3 (python -m lsrmwf.analysis)"),
}


def usage() -> str:
    from .. import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: lsrmwf <command> [flags]   (lsrmwf {__version__}; lsrmwf <command> --help for its flags)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {c.help}" for name, c in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from .. import __version__

        print(f"lsrmwf {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lsrmwf: error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    sys.argv = [f"lsrmwf {name}"] + rest  # argparse's usage line names the command
    command = COMMANDS[name]
    return getattr(importlib.import_module(command.module), command.function)(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
