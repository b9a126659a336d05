"""Code fingerprints follow the project code a step calls, and nothing else."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from mlops_lite.definition import fingerprint


def load_module(tmp_path: Path, name: str, source: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    fingerprint._cache.clear()
    return importlib.import_module(name)


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def step_source(helper_body: str, constant: int = 1, extra: str = "") -> str:
    return f"""
        import json
        import helpers_mod
        RATE = {constant}

        def helper(x):
            {helper_body}

        class Scaler:
            def scale(self, x):
                return x * 2

        def unrelated():
            return "not called"
        {extra}

        def my_step(x):
            return helper(x) + RATE + helpers_mod.shared(x) + Scaler().scale(x) + len(json.dumps(x))
    """


def fingerprint_of(
    tmp_path: Path, source: str, helpers: str = "def shared(x):\n    return x\n"
) -> str:
    (tmp_path / "helpers_mod.py").write_text(helpers)
    sys.modules.pop("helpers_mod", None)
    module = load_module(tmp_path, "steps_mod", source)
    return fingerprint.code_fingerprint(module.my_step)


def test_fingerprint_is_stable(on_path: Path) -> None:
    assert fingerprint_of(on_path, step_source("return x")) == fingerprint_of(
        on_path, step_source("return x")
    )


def test_helper_function_change_changes_fingerprint(on_path: Path) -> None:
    assert fingerprint_of(on_path, step_source("return x")) != fingerprint_of(
        on_path, step_source("return x + 1")
    )


def test_helper_in_another_project_module_is_followed(on_path: Path) -> None:
    before = fingerprint_of(on_path, step_source("return x"))
    after = fingerprint_of(
        on_path, step_source("return x"), helpers="def shared(x):\n    return x * 3\n"
    )
    assert before != after


def test_global_constant_change_changes_fingerprint(on_path: Path) -> None:
    assert fingerprint_of(on_path, step_source("return x", 1)) != fingerprint_of(
        on_path, step_source("return x", 2)
    )


def test_class_method_change_changes_fingerprint(on_path: Path) -> None:
    base = step_source("return x")
    changed = base.replace("return x * 2", "return x * 3")
    assert fingerprint_of(on_path, base) != fingerprint_of(on_path, changed)


def test_unrelated_code_does_not_change_fingerprint(on_path: Path) -> None:
    base = fingerprint_of(on_path, step_source("return x"))
    with_extra = fingerprint_of(
        on_path, step_source("return x", extra="def another():\n            return 5")
    )
    other_helpers = fingerprint_of(
        on_path,
        step_source("return x"),
        helpers="def shared(x):\n    return x\n\ndef unused():\n    return 0\n",
    )
    assert base == with_extra == other_helpers


def test_library_code_is_not_hashed(on_path: Path) -> None:
    # json is stdlib: its source is not part of the fingerprint (versions are recorded instead).
    walker = fingerprint._Walker()
    import json

    walker.add_value("json", json, {"dumps"})
    assert walker.hasher.hexdigest() == fingerprint._Walker().hasher.hexdigest()


def test_module_level_containers_and_config_objects_are_part_of_the_fingerprint(
    on_path: Path,
) -> None:
    def source(features: str, lr: float) -> str:
        return f"""
            from dataclasses import dataclass

            FEATURES = {features}

            @dataclass
            class Config:
                lr: float

            CONFIG = Config(lr={lr})

            def my_step(x):
                return [x * CONFIG.lr for _ in FEATURES]
        """

    base = fingerprint_of(on_path, source('["a", "b"]', 0.1))
    assert base == fingerprint_of(on_path, source('["a", "b"]', 0.1))
    assert base != fingerprint_of(on_path, source('["a", "b", "c"]', 0.1))
    assert base != fingerprint_of(on_path, source('["a", "b"]', 0.2))


def test_helpers_in_subpackages_are_followed(on_path: Path) -> None:
    package = on_path / "pkgfp" / "sub"
    package.mkdir(parents=True)
    (on_path / "pkgfp" / "__init__.py").write_text("from . import sub\n")
    (package / "__init__.py").write_text("from .maths import scale\n")

    def fingerprint_with(body: str) -> str:
        (package / "maths.py").write_text(f"def scale(x):\n    return {body}\n")
        for name in [m for m in sys.modules if m.startswith("pkgfp")]:
            del sys.modules[name]
        module = load_module(
            on_path, "steps_sub", "import pkgfp\n\ndef my_step(x):\n    return pkgfp.sub.scale(x)\n"
        )
        return fingerprint.code_fingerprint(module.my_step)

    assert fingerprint_with("x * 2") != fingerprint_with("x * 3")
