"""The package's layers, public face and import cost, as DESIGN.md draws them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mlops_lite

PACKAGE = Path(mlops_lite.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_importing(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if any(name == prefix or name.startswith(prefix + ".") for name in imported_modules(path)):
            found.add(str(path.relative_to(PACKAGE)))
    return found


def test_only_the_store_imports_dulwich() -> None:
    assert {p for p in modules_importing("dulwich") if not p.startswith("store/")} == set()


def test_the_client_never_imports_execution() -> None:
    assert "mlops_lite.execution" not in {
        name.rsplit(".", 1)[0] if name.count(".") > 1 else name
        for name in imported_modules(PACKAGE / "client.py")
    }
    assert not any(name.startswith("mlops_lite.execution") for name in imported_modules(PACKAGE / "client.py"))


def test_the_pure_core_imports_no_other_layer() -> None:
    for module in ("hashing.py", "records.py", "errors.py"):
        inner = {n for n in imported_modules(PACKAGE / module) if n.startswith("mlops_lite")}
        assert inner <= {"mlops_lite.errors"}, (module, inner)


def test_materializers_do_not_touch_git() -> None:
    for path in (PACKAGE / "materializers").glob("*.py"):
        names = imported_modules(path)
        assert not any(n.startswith(("mlops_lite.store", "dulwich", "mlops_lite.execution")) for n in names), path


def test_public_names_are_sorted_and_resolve() -> None:
    assert mlops_lite.__all__ == sorted(mlops_lite.__all__)
    for name in mlops_lite.__all__:
        assert getattr(mlops_lite, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, mlops_lite\n"
        "heavy = [m for m in ('dulwich', 'numpy', 'pandas', 'cloudpickle', 'sqlite3', 'zstandard') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_client_only_reads() -> None:
    source = (PACKAGE / "client.py").read_text()
    for writer in ("update_ref", "write_objects", "write_loose_object", "add_annotations", "RunWriter"):
        assert writer not in source, writer
