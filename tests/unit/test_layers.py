"""The package's layers, as DESIGN.md draws them, computed from every import statement.

Imports inside functions count: a lazy import is still a dependency. Imports
under ``if TYPE_CHECKING:`` do not: they name types for hints and run nothing.
Each module belongs to one layer, may import only the layers below it, and no
two modules import each other, directly or through others. The single
exception is declared in ``UPWARD``, with its reason.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import mlops_lite

PACKAGE = Path(mlops_lite.__file__).parent

# Bottom-up. A layer may import its own modules and the layers named beside it.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (),
    "materializers": ("core",),
    "store": ("core",),
    "definition": ("core", "materializers"),
    "client": ("core", "materializers", "store"),
    "execution": ("core", "materializers", "store", "definition", "client"),
    "operations": ("core", "materializers", "store", "definition", "client", "execution"),
    "faces": ("core", "materializers", "store", "definition", "client", "execution", "operations"),
}

# Calling a pipeline runs it: the definition layer hands its traced graph to the
# execution layer, which returns the recorded run. Defining a pipeline never
# loads execution (the import sits inside ``Pipeline.__call__``).
# A ``Model`` declared in code is also a handle on the registry, as in ZenML
# (``model.number``, ``model.set_stage(...)``), and the client's model versions
# promote themselves (``set_stage``): both hand those calls to the operations
# layer, imported inside the methods, so declaring a model or reading one loads
# nothing more. ``Client().active_stack`` reads the stack configuration, which
# the execution layer owns (imported when the property is read; it runs nothing).
UPWARD = {
    ("mlops_lite.definition.pipelines", "mlops_lite.execution"),
    ("mlops_lite.definition.model", "mlops_lite.operations.models"),
    ("mlops_lite.client.model_versions", "mlops_lite.operations.models"),
    ("mlops_lite.client.stack", "mlops_lite.execution.stacks"),
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module in ("mlops_lite", "mlops_lite.__main__"):
        return "faces"  # the public face re-exports every layer
    head = parts[1]
    # enums and logger are ZenML's module paths (zenml.enums, zenml.logger): stdlib only.
    if head in ("errors", "core", "enums", "logger"):
        return "core"
    if head == "io":  # zenml.io.fileio: what materializers write their files with
        return "materializers"
    if head in ("cli", "ui"):
        return "faces"
    if head not in LAYERS:
        raise AssertionError(f"{module} is in no layer: put it in a layer's folder")
    return head


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:``."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if (
            isinstance(node, ast.If)
            and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"
        ):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def imports_of(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """Every mlops_lite module ``path`` imports at run time, wherever the statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import module` depends on the module itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "mlops_lite" or target.startswith("mlops_lite."):
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                yield target


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: set(imports_of(path, name, known)) - {name} for name, path in modules.items()}


def is_upward_exception(source: str, target: str) -> bool:
    return any(source == s and (target == t or target.startswith(t + ".")) for s, t in UPWARD)


def test_every_module_imports_only_lower_layers() -> None:
    wrong = []
    for source, targets in import_graph().items():
        layer = layer_of(source)
        for target in sorted(targets):
            if target == "mlops_lite" and layer == "faces":
                continue
            allowed = (layer, *LAYERS[layer])
            if layer_of(target) not in allowed and not is_upward_exception(source, target):
                wrong.append(f"{source} ({layer}) imports {target} ({layer_of(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = {
        source: {t for t in targets if not is_upward_exception(source, t) and t != "mlops_lite"}
        for source, targets in import_graph().items()
    }
    # A package's __init__ re-exporting its own modules is not a dependency of theirs.
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_layer_check_fails_on_a_violation() -> None:
    graph = {
        "mlops_lite.store.refs": {"mlops_lite.execution.runner"},
        "mlops_lite.execution.runner": set(),
    }
    layer = layer_of("mlops_lite.store.refs")
    assert layer_of("mlops_lite.execution.runner") not in (layer, *LAYERS[layer])
    assert find_cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert find_cycles(graph) == []


def test_only_the_store_imports_dulwich() -> None:
    users = set()
    for name, path in all_modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if any(m == "dulwich" or m.startswith("dulwich.") for m in modules):
                users.add(name)
    assert {name for name in users if not name.startswith("mlops_lite.store")} == set()


def test_the_client_only_reads() -> None:
    for path in (PACKAGE / "client").glob("*.py"):
        source = path.read_text()
        for writer in (
            "update_ref",
            "write_objects",
            "write_loose_object",
            "add_annotations",
            "RunWriter",
        ):
            assert writer not in source, (path.name, writer)
