"""No import circle inside the package: every module's imports, those inside function bodies too."""

import ast
import pathlib

import pytest

# Source text alone: the same in both Keras flavours, so the Keras 3 process alone runs it.
pytestmark = pytest.mark.one_flavor

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "sm_pixel_ce"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module, path, node, known):
    """The package modules one import statement names (a submodule where it is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = package
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    if base not in known:
        return []
    named = [f"{base}.{alias.name}" for alias in node.names]
    submodules = [name for name in named if name in known]
    return submodules if len(submodules) == len(named) else [base, *submodules]


def import_graph():
    """``{module: set of package modules it imports}``, function-level imports included."""
    known = _modules()
    graph = {}
    for module, path in known.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_resolve(module, path, node, known))
        edges.discard(module)
        graph[module] = edges
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles (function-level imports included):\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_circles_finds_what_is_there(graph, expected):
    assert circles(graph) == expected


def test_function_level_imports_count(tmp_path, monkeypatch):
    package = tmp_path / "sm_pixel_ce"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import thing\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    assert circles(import_graph()) == [["sm_pixel_ce.a", "sm_pixel_ce.b"]]
