"""The layout is the architecture: imports only point down the layers, and no module reaches into
another's private names. See README, "Architecture"."""

import ast
import pathlib

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
