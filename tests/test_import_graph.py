"""The imports follow the data flow (the package docstring): nothing points back, no cycle."""

import ast
import pathlib

import tfalign

PACKAGE = pathlib.Path(tfalign.__file__).parent
# In the order of the data flow; a module may import its own level and the ones before it.
LEVELS = [
    ("helpers", ["tfalign.errors", "tfalign.files", "tfalign.validation", "tfalign.console",
                 "tfalign.runtime"]),
    ("data", ["tfalign.data", "tfalign.dp"]),
    ("media", ["tfalign.media"]),
    ("configs", ["tfalign.configs", "tfalign.experiments"]),
    ("layers", ["tfalign.layers", "tfalign.optimizers"]),
    ("model", ["tfalign.model"]),
    ("training", ["tfalign.training"]),
    ("evaluation", ["tfalign.evaluation"]),
    ("serving", ["tfalign.serving"]),
    ("tools", ["tfalign.run", "tfalign.train", "tfalign.compare", "tfalign.evaluate", "tfalign.export",
               "tfalign.align", "tfalign.cli", "tfalign"]),
]


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def level_of(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LEVELS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} is in no level of the data flow; add it to LEVELS and the docstring"
    return best[0]


def imports_of(path: pathlib.Path) -> set[str]:
    """Every tfalign module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "tfalign"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tfalign":
            for alias in node.names:  # "from tfalign.data import records" imports tfalign.data.records
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() or \
                    (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                found.add(candidate if is_module else node.module)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_import_points_back_up_the_data_flow():
    backwards = [f"{module} ({LEVELS[level_of(module)][0]}) imports {target} ({LEVELS[level_of(target)][0]})"
                 for module, targets in graph().items() for target in sorted(targets)
                 if target != "tfalign" and level_of(target) > level_of(module)]
    assert backwards == []


def test_only_the_tools_import_serving():
    serving, tools = level_of("tfalign.serving"), level_of("tfalign.run")
    importers = sorted(module for module, targets in graph().items()
                       if any(level_of(t) == serving for t in targets if t != "tfalign")
                       and level_of(module) not in (serving, tools))
    assert importers == []


def test_no_import_cycle():
    edges = graph()
    visiting, done, cycles = set(), set(), []

    def visit(module, path):
        if module in done:
            return
        if module in visiting:
            cycles.append(path[path.index(module):] + [module])
            return
        visiting.add(module)
        for target in sorted(edges.get(module, ())):
            if target in edges and target != "tfalign":
                visit(target, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in edges:
        visit(module, [])
    assert cycles == []


def test_the_checker_sees_a_backward_import(tmp_path):
    """The graph is read from the source: a lazy import inside a function counts."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from tfalign.serving.export import export_saved_model\n")
    assert imports_of(source) == {"tfalign.serving.export"}
    assert level_of("tfalign.serving.export") > level_of("tfalign.training.loop")
