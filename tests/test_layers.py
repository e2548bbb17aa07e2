"""emkit's layers: lower layers never import higher ones, and no module imports itself
back through others.

The import graph is read from the source with :mod:`ast` (no module is imported): every
absolute ``emkit`` import, those inside functions included, since a deferred import is
still a dependency (it only hides a circle until the function runs). The layers, from
the bottom (DESIGN.md, "Layers"):

    0  emkit._* (private top-level helpers), emkit.exceptions
    1  emkit.data, emkit.datasets           (data sources sit below the engine)
    2  emkit.engine                         (never imports distributions or models)
    3  emkit.distributions
    4  emkit.io                             (imports no model: a class registry)
    5  emkit.models
    6  emkit.selection
    7  emkit                                (the package's public names)
    8  emkit.compat
    9  emkit.cli

A module may import its own unit or any lower layer, never a higher one; units of the
same layer may import each other only without a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "emkit"

#: layer of each unit (a top-level module or subpackage of emkit); "_private" covers
#: every top-level module whose name starts with "_"
LAYERS = {
    "_private": 0,
    "exceptions": 0,
    "data": 1,
    "datasets": 1,
    "engine": 2,
    "distributions": 3,
    "io": 4,
    "models": 5,
    "selection": 6,
    "": 7,  # emkit/__init__.py
    "compat": 8,
    "cli": 9,
}

#: Known violations in files outside this test's owner, reported to their owners;
#: each entry is (importing module, imported module). Keep it empty.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The emkit module ``name`` refers to: itself, or the package holding the attribute."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """emkit modules that ``module`` imports anywhere in its source (absolute or relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            # ``from emkit import io`` imports the module emkit.io; ``from emkit.engine
            # import em`` imports the package emkit.engine.
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "emkit" or target.startswith("emkit."):
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != module:
                    found.add(resolved)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    return "_private" if parts[1].startswith("_") else parts[1]


def layer(module: str) -> int:
    name = unit(module)
    if name not in LAYERS:
        raise AssertionError(
            f"{module}: unit {name!r} has no layer; add it to LAYERS in tests/test_layers.py "
            "(and to DESIGN.md)"
        )
    return LAYERS[name]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
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


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


# ----------------------------------------------------------------------------- the reader


def test_the_graph_reader_sees_every_kind_of_import(tmp_path):
    modules = {"emkit": None, "emkit.io": None, "emkit.engine": None, "emkit.engine.monitor": None}
    source = tmp_path / "mod.py"
    source.write_text(
        "import numpy\n"
        "from emkit import io\n"
        "from emkit.engine import em\n"
        "def f():\n"
        "    import emkit.engine.monitor\n"
        "    from . import monitor\n"
    )
    assert imports_of("emkit.engine.driver", source, modules) == {
        "emkit.io",
        "emkit.engine",
        "emkit.engine.monitor",
    }


def test_the_cycle_finder_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_is_read(graph):
    for name in ("emkit", "emkit.io", "emkit.engine.driver", "emkit.models.estimator"):
        assert name in graph
    assert "emkit.data.convert" in graph["emkit.engine.driver"]


# ----------------------------------------------------------------------------- the rules


def test_lower_layers_never_import_higher_ones(graph):
    violations = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer(target) > layer(module) and (module, target) not in KNOWN_VIOLATIONS
    )
    assert violations == [], "\n".join(
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})" for m, t in violations
    )


def test_no_import_circles(graph):
    assert cycles(graph) == []


def test_no_circles_between_units(graph):
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        units.setdefault(unit(module), set()).update(
            unit(t) for t in targets if unit(t) != unit(module)
        )
    assert cycles(units) == []


def test_the_engine_imports_no_distribution_and_no_model(graph):
    for module, targets in graph.items():
        if unit(module) == "engine":
            assert not {unit(t) for t in targets} & {"distributions", "models", "io", "cli"}


def test_io_imports_nothing_from_models(graph):
    assert not any(unit(t) == "models" for t in graph["emkit.io"])
    # ... nor the package itself, which imports every model
    assert "emkit" not in graph["emkit.io"]
