"""The layout is the architecture: imports only point down the layers, and no module reaches into
another's private names. See README, "Architecture"."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "lsrmwf"
# Lower numbers are lower layers; a module may import its own folder or any lower layer.
LAYERS = {
    "io": 0, "presets": 0,
    "data": 1,
    "models": 2, "llm": 2, "distill": 2,
    "evaluation": 3,
    "training": 4,
    "commands": 5, "demo": 5, "analysis": 5,
}


def part_of(module: str) -> str:
    """``lsrmwf.data.loading`` -> ``data``; ``lsrmwf`` itself (its __init__ registers the model) counts as ``models``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "models"


def imports(path: pathlib.Path):
    """(imported lsrmwf module, imported names, line) for every import in ``path``."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    here = list(rel.parts) if path.name != "__init__.py" else list(rel.parts[:-1])
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "lsrmwf" or target.startswith("lsrmwf."):
                names = [a.name for a in node.names]
                # `from . import prompts` imports a module, not a name
                yield target, names, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "lsrmwf" or a.name.startswith("lsrmwf."):
                    yield a.name, [], node.lineno


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if path.name == "__init__.py" else rel.parts
    return ".".join(parts)


def test_every_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert folders | modules <= set(LAYERS), f"give these a layer: {sorted((folders | modules) - set(LAYERS))}"


def test_imports_point_down_and_never_reach_private_names():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue  # the public facade: re-exports from every layer (the trainer lazily)
        me = module_name(path)
        mine = part_of(me)
        for target, names, line in imports(path):
            theirs = part_of(target)
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                problems.append(f"{where}: {mine} (layer {LAYERS[mine]}) imports {target} (layer {LAYERS[theirs]})")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != me:
                problems.append(f"{where}: imports private {private} from {target}")
    assert not problems, "\n".join(problems)


def import_graph() -> dict:
    """Module -> the lsrmwf modules it imports (lazy imports inside functions included: a cycle
    through them still means two modules that cannot be understood apart)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for me, path in modules.items():
        edges = set()
        for target, names, _ in imports(path):
            for name in names:  # `from . import prompts` imports the module lsrmwf.llm.prompts
                if f"{target}.{name}" in modules:
                    edges.add(f"{target}.{name}")
            if target in modules:
                edges.add(target)
        graph[me] = edges - {me}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_anywhere_in_the_package():
    """Packages' __init__ files that re-export their modules are left out: importing a module runs
    its package's __init__ first, which is not a dependency of the module's code."""
    graph = {m: {t for t in edges if not (PACKAGE / t.replace(".", "/").removeprefix("lsrmwf/")).is_dir()}
             for m, edges in import_graph().items()
             if not (PACKAGE / m.replace(".", "/").removeprefix("lsrmwf/")).is_dir()}
    assert not cycles(graph), "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles(graph))


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_tests_use_only_public_names():
    problems = []
    for path in sorted(PACKAGE.parent.joinpath("tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lsrmwf"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    problems.append(f"tests/{path.name}:{node.lineno}: imports private {private} from {node.module}")
    assert not problems, "\n".join(problems)


# Which files belong to which method; everything else in lsrmwf/ is shared. Shared on purpose, although
# named for a method: distill/logit_kd.py (the KD loss and teacher loading: seq2seq KD in the BART recipe
# and the causal KD recipe), distill/causal_student.py (causal teacher/student checks: KD and BRD
# students), distill/basic_reading.py (BRD denoising data that the BART recipe's --stage basic_reading
# reads). The README's "Architecture" table is this map (test_readme_table_is_the_map keeps them equal).
METHOD_FILES = {
    "LSR-MWF": [
        "models/configuration_lsrmwf.py", "models/modeling_lsrmwf.py",
        "llm/prompts.py", "llm/parsing.py", "llm/selection.py", "llm/rescoring.py",
        "data/rationales.py", "training/lsr_mwf.py", "training/recipes/lsr_mwf.py", "training/collators.py",
        "evaluation/gates.py", "evaluation/cases.py", "analysis/ablations.py", "demo/lsr_mwf.py",
    ],
    "Logit KD": [
        "distill/sparse_kd.py", "distill/text_alignment.py", "distill/uld.py", "io/logprobs.py",
        "llm/teacher_logprobs.py", "training/logit_kd.py", "training/recipes/logit_kd.py",
        "evaluation/study_metrics.py", "demo/causal.py",
    ],
    "BRD": [
        "llm/brd_prompts.py", "distill/brd_compose.py", "distill/brd_mix.py",
        "training/basic_reading.py", "training/recipes/basic_reading.py", "evaluation/multiple_choice.py",
        "evaluation/mc_tasks.py", "evaluation/shared_prefix.py", "evaluation/mc_served.py",
        "evaluation/bigbench_fetch.py", "evaluation/causal_lm.py", "evaluation/tasks/multiple_choice.py",
        "evaluation/tasks/teacher_student_ce.py", "commands/compose_brd.py", "demo/brd.py", "demo/brd_tasks.py",
        "evaluation/task_data.py", "commands/task_data.py", "llm/task_answers.py", "training/task_tuning.py",
        "training/recipes/task_tuning.py", "evaluation/tasks/teacher_choices.py", "evaluation/probe.py",
        "evaluation/tasks/probe.py", "analysis/table3.py",
    ],
}


def method_of_module() -> dict:
    return {module_name(PACKAGE / f): method for method, files in METHOD_FILES.items() for f in files}


def test_the_method_map_names_existing_files():
    missing = [f for files in METHOD_FILES.values() for f in files if not (PACKAGE / f).exists()]
    assert not missing, f"the map names files that do not exist: {missing}"


def test_no_method_module_imports_another_methods_module():
    owner = method_of_module()
    problems = [f"{m} ({owner[m]}) imports {t} ({owner[t]})"
                for m, edges in import_graph().items() if m in owner
                for t in sorted(edges) if t in owner and owner[t] != owner[m]]
    assert not problems, "\n".join(problems)


def test_readme_table_is_the_map():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and cells[0] in METHOD_FILES:
            table[cells[0]] = sorted(re.findall(r"`([^`]+\.py)`", cells[1]))
    assert table == {m: sorted(files) for m, files in METHOD_FILES.items()}, "README's method table != METHOD_FILES"


def test_functions_and_command_modules_stay_short():
    """No function in lsrmwf/ over 80 lines; command modules only parse and dispatch (at most 150 lines)."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > 150:
            long.append(f"{path.relative_to(PACKAGE.parent)}: {n} lines (a command module only parses and dispatches)")
    assert not long, "\n".join(long)
