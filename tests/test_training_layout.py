"""The training package's shape: method trainers are siblings on DistillTrainer, the core imports no method, no
method module imports another's, no import cycle inside lsrmwf/, and train.py's --help groups flags by method."""

import ast
import pathlib

from lsrmwf.training.base import DistillTrainer
from lsrmwf.training.basic_reading import CausalLMTrainer
from lsrmwf.training.logit_kd import LogitKDTrainer
from lsrmwf.training.lsr_mwf import LsrMwfTrainer

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "lsrmwf"
METHODS = ("lsr_mwf", "logit_kd", "basic_reading")


def module_of(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if path.name == "__init__.py" else parts)


def imported(path: pathlib.Path):
    """Every lsrmwf module ``path`` imports, at any depth of the file (function-level imports too)."""
    package = module_of(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import x` may name a module
                sub = PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")
                yield f"{target}.{alias.name}" if sub.with_suffix(".py").exists() or sub.is_dir() else target
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def graph():
    modules = {module_of(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {t for t in imported(p) if t in modules and t != m} for m, p in modules.items()}


def test_method_trainers_are_siblings_on_the_base():
    for trainer in (LsrMwfTrainer, LogitKDTrainer, CausalLMTrainer):
        assert trainer.__bases__ == (DistillTrainer,), trainer


def test_core_imports_no_method_and_methods_import_no_other_method():
    g = graph()
    method_modules = {f"lsrmwf.training.{m}": m for m in METHODS} | {f"lsrmwf.training.recipes.{m}": m for m in METHODS}
    for shared in ("lsrmwf.training.core", "lsrmwf.training.base", "lsrmwf.training.arguments"):
        assert not g[shared] & set(method_modules), shared
    for module, method in method_modules.items():
        others = {m for m, meth in method_modules.items() if meth != method}
        assert not g[module] & others, f"{module} imports {sorted(g[module] & others)}"


def test_no_import_cycle_in_the_package():
    g = graph()
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(g[m]):
            if state.get(n) == "open" and not m.startswith(n + "."):  # a package importing its own submodule is fine
                raise AssertionError(" -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m, [m])


def test_help_groups_the_flags_by_method():
    from lsrmwf.commands.train import build_parser

    groups = {g.title: {a.dest for a in g._group_actions} for g in build_parser()._action_groups}
    lsr = next(v for k, v in groups.items() if k.startswith("LSR-MWF"))
    kd = next(v for k, v in groups.items() if k.startswith("Logit KD"))
    brd = next(v for k, v in groups.items() if k.startswith("Basic Reading"))
    assert {"views", "gate_init", "gamma_ce", "rationale_file"} <= lsr and "kd_alpha" not in lsr
    assert {"kd_alpha", "teacher_logprobs_file", "prompt_template"} <= kd and "views" not in kd
    assert {"stage", "brd_mix", "block_size", "basic_reading_file"} <= brd and "learning_rate" not in brd
