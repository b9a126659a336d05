"""The public face: what ``mlops_lite`` exports, what each module declares, the version.

The package's names are the ``from X import Y as Y`` lines under ``if TYPE_CHECKING:``
in ``mlops_lite/__init__.py``; at run time a regex reads the same lines. These tests
hold the two readings together, and hold every module to an ``__all__`` that names
exactly what it offers to the rest of the package.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import mlops_lite
from tests.conftest import uninstrumented_env

PACKAGE = Path(mlops_lite.__file__).parent

# Public (no leading underscore) module-level functions and classes that are
# deliberately left out of their module's ``__all__``, each with its reason.
# Prefer adding the name to ``__all__`` or a leading underscore to growing this.
NOT_EXPORTED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Every module of the package; ``__main__`` modules run the CLI when imported.
MODULES = sorted(_module_name(path) for path in PACKAGE.rglob("*.py") if path.stem != "__main__")


def _path_of(module_name: str) -> Path:
    relative = Path(*module_name.split("."))
    package_init = PACKAGE.parent / relative / "__init__.py"
    return package_init if package_init.exists() else (PACKAGE.parent / relative).with_suffix(".py")


def _type_checking_exports() -> dict[str, str]:
    """``{name: module}`` from the ``if TYPE_CHECKING:`` block, read with ``ast``."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1
    exports: dict[str, str] = {}
    for statement in blocks[0].body:
        assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
        assert statement.module is not None and statement.level == 0
        for alias in statement.names:
            name = alias.asname or alias.name
            assert name not in exports, f"{name} is imported twice"
            # ``from mlops_lite import errors``: the export is the submodule.
            exports[name] = (
                f"{statement.module}.{alias.name}"
                if statement.module == "mlops_lite"
                else statement.module
            )
    return exports


# --- the package's exports ----------------------------------------------------------------


def test_the_runtime_regex_reads_every_export_the_block_declares() -> None:
    assert mlops_lite._read_exports() == _type_checking_exports()


def test_every_export_is_a_redundant_alias_that_the_regex_can_read() -> None:
    # ``from X import Y`` (without ``as Y``) is private to a type checker, and a
    # line wrapped over several lines would be invisible to the regex.
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    block = source[source.index("if TYPE_CHECKING:") : source.index("\n\n\ndef _read_exports")]
    for line in block.splitlines()[1:]:
        words = line.split()
        assert len(words) == 6 and words[0::2] == ["from", "import", "as"], line
        assert words[3] == words[5], line


def test_all_is_the_sorted_block_and_each_name_resolves() -> None:
    exports = _type_checking_exports()
    assert mlops_lite.__all__ == sorted(set(exports))
    for name, module_name in exports.items():
        module = importlib.import_module(module_name)
        expected = module if module_name == f"mlops_lite.{name}" else getattr(module, name)
        assert getattr(mlops_lite, name) is expected, name
    assert set(mlops_lite.__all__) <= set(dir(mlops_lite))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Pipline'"):
        mlops_lite.Pipline


# --- every module's __all__ ---------------------------------------------------------------


@pytest.mark.parametrize("module_name", MODULES)
def test_module_declares_all_and_every_name_in_it_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    assert len(set(module.__all__)) == len(module.__all__), module.__all__
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ names what it does not define"


@pytest.mark.parametrize("module_name", MODULES)
def test_module_exports_every_public_function_and_class(module_name: str) -> None:
    module = importlib.import_module(module_name)
    tree = ast.parse(_path_of(module_name).read_text(encoding="utf-8"))
    defined = [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
    ]
    unexported = [
        name
        for name in defined
        if name not in getattr(module, "__all__", ()) and (module_name, name) not in NOT_EXPORTED
    ]
    assert unexported == [], (
        f"{module_name}: add {unexported} to __all__, or give them a leading underscore"
    )


def test_the_allowlist_names_only_what_still_exists() -> None:
    for module_name, name in NOT_EXPORTED:
        assert hasattr(importlib.import_module(module_name), name), (module_name, name)
        assert name not in importlib.import_module(module_name).__all__, (module_name, name)


# --- the version --------------------------------------------------------------------------


def test_version_is_the_installed_distributions() -> None:
    assert mlops_lite.__version__ == importlib.metadata.version("mlops-lite")


def test_the_cli_prints_the_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == f"mlops-lite {importlib.metadata.version('mlops-lite')}\n"


# --- importing is cheap -------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", ["mlops_lite", "mlops_lite.definition.steps", "mlops_lite.definition.pipelines"]
)
def test_importing_the_package_or_defining_pipelines_loads_nothing_heavy(module: str) -> None:
    # In a fresh interpreter: this one has imported everything already.
    code = (
        f"import sys, {module}\n"
        "heavy = [m for m in ('dulwich', 'numpy', 'pandas', 'cloudpickle', 'sqlite3',\n"
        "         'zstandard', 'mlops_lite.execution', 'mlops_lite.store') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    # Not under coverage, which imports sqlite3 for its own data.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env=uninstrumented_env(),
    )  # fmt: skip
    assert result.stdout.strip() == ""


def test_lazy_exports_import_on_first_use_and_name_the_package_when_missing() -> None:
    import mlops_lite.store as store
    from mlops_lite.store.repository import GitStore

    assert store.GitStore is GitStore and "GitStore" in vars(store)  # kept after first use
    for package, missing in ((store, "NoSuchStore"), (mlops_lite, "no_such_name")):
        with pytest.raises(AttributeError, match=f"{package.__name__}' has no attribute"):
            getattr(package, missing)
    assert mlops_lite.errors is importlib.import_module("mlops_lite.errors")  # a submodule
