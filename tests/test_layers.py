"""The package's layers, read from the source: what each may import (README, "Layout")."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "latentjax"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path):
    """``(imported module, imported name or None, top level?)`` for every latentjax import."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("latentjax"):
                    yield alias.name, None, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("latentjax"):
            for alias in node.names:
                yield node.module, alias.name, id(node) in top


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _targets(path: pathlib.Path):
    """The module each import of ``path`` reaches (``from a import b`` reaches ``a.b`` when it is one)."""
    for imported, name, _ in _imports(path):
        yield f"{imported}.{name}" if name and f"{imported}.{name}" in MODULES else imported


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_package_line(module):
    for imported, name, _ in _imports(MODULES[module]):
        target = imported if name is None or f"{imported}.{name}" not in MODULES else f"{imported}.{name}"
        if _package(target) == _package(module):
            continue
        private = [part for part in target.split(".") + [name or ""] if _private(part)]
        assert not private, f"{module} imports {private} from {target}: expected public names across packages"


def test_the_analysis_core_imports_nothing_else_from_latentjax():
    for module, path in MODULES.items():
        if module.startswith("latentjax.analysis"):
            outside = [m for m in _targets(path) if not m.startswith("latentjax.analysis")]
            assert not outside, f"{module} imports {outside}"


def test_the_models_layer_imports_no_data_runs_config_or_experiment():
    forbidden = ("latentjax.data", "latentjax.storage.runs", "latentjax.experiment", "latentjax.config", "latentjax.cli")
    for module, path in MODULES.items():
        if module.startswith("latentjax.models"):
            bad = [m for m in _targets(path) if m.startswith(forbidden)]
            assert not bad, f"{module} imports {bad}"


def test_no_import_cycle_between_modules():
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for target in _targets(path):
            if target in MODULES and target != module and not module.startswith(target + "."):
                edges.add(target)
        graph[module] = edges
    # A package's __init__ re-exports its modules; a cycle through it is not a dependency.
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            if nxt in packages:
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state.get(nxt) is None:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in graph:
        if state.get(module) is None:
            visit(module, [module])
