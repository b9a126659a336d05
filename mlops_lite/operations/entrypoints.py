"""Finding a pipeline in source, and calling it with recorded parameters.

The source is ``module:pipeline``, ``file.py:pipeline`` or a run's recorded
entry point.

A script is executed as ``__main__`` with its top-level ``if __name__ ==
"__main__":`` blocks removed: its functions keep the module name they had when
the script ran (``__main__``), so step code fingerprints, cache keys and the
seeds derived from them come out the same, and the script's own ``main()``
does not run.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import inspect
import json
import os
import sys
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_lite.definition.pipelines import Pipeline
from mlops_lite.errors import ConfigError, DefinitionError

if TYPE_CHECKING:
    from mlops_lite.client import Run

__all__ = [
    "call_pipeline",
    "check_entry_point",
    "load_pipeline",
    "load_pipeline_from_entry_point",
    "parse_parameters",
    "run_target",
]

# A run name template without one of these would collide with the run it reproduces.
_UNIQUE_FIELDS = ("{stamp}", "{random}", "{time}")


def load_pipeline(target: str) -> Pipeline:
    """``"pkg.module:name"`` or ``"path/to/file.py:name"``, as ``mlops-lite run`` takes it."""
    source, sep, name = target.rpartition(":")
    if not sep or not source or not name:
        raise ConfigError(
            f"{target!r} does not name a pipeline: write <module_or_file>:<pipeline>, "
            "e.g. training.py:train_pipeline or my_package.pipelines:training"
        )
    if source.endswith(".py") or os.path.isfile(source):
        path = os.path.abspath(source)
        if not os.path.isfile(path):
            raise ConfigError(f"{source!r}: no such file")
        module = _exec_script(path, argv=[source])
    else:
        sys.path.insert(0, os.getcwd())  # what `python -m` does
        try:
            module = importlib.import_module(source)
        except ModuleNotFoundError as error:
            raise ConfigError(f"cannot import module {source!r}: {error}") from None
    return _find_pipeline(module, name, name)


def load_pipeline_from_entry_point(
    source_root: str, entry: Mapping[str, Any], pipeline_name: str
) -> Pipeline:
    """The pipeline a run recorded as its entry point, loaded from ``source_root``."""
    check_entry_point(entry, pipeline_name)
    module_name, qualname, file = str(entry["module"]), str(entry["qualname"]), str(entry["file"])
    path = os.path.join(source_root, *file.split("/"))
    if not os.path.isfile(path):
        raise DefinitionError(
            f"pipeline {pipeline_name!r} cannot be rerun: "
            f"its source file {file!r} is not in the run's code commit (an ignored file?); "
            "commit it, or run from a work tree that has it"
        )
    cwd = os.path.join(source_root, *str(entry.get("cwd") or ".").split("/"))
    os.chdir(
        cwd
        if os.path.isdir(cwd) and not str(entry.get("cwd", "")).startswith("..")
        else source_root
    )
    argv = list(entry.get("argv") or [file])
    if module_name == "__main__":
        module = _exec_script(path, argv=argv)
    else:
        module = _import_from(source_root, module_name, path, file)
    return _find_pipeline(module, qualname, pipeline_name)


def check_entry_point(entry: Mapping[str, Any], pipeline_name: str) -> None:
    """Raise a clear ``DefinitionError`` when a recorded entry point cannot be loaded again."""
    module_name, qualname, file = entry.get("module"), entry.get("qualname"), entry.get("file")
    if not module_name or not qualname:
        raise DefinitionError(
            f"the run of {pipeline_name!r} recorded no entry point, so it cannot be rerun"
        )
    if "<locals>" in str(qualname):
        raise DefinitionError(
            f"pipeline {pipeline_name!r} was defined inside a function ({qualname}); "
            "only pipelines defined at the top level of a module can be rerun"
        )
    if not file or str(file).startswith("../") or os.path.isabs(str(file)):
        where = (
            f"its source file {file} is outside the repository" if file else "it has no source file"
        )
        raise DefinitionError(
            f"pipeline {pipeline_name!r} ({module_name}.{qualname}) cannot be rerun: {where}. "
            "Pipelines defined in a notebook or an interactive session have no file "
            "in the code commit to rebuild; "
            "move the pipeline into a .py file of the repository and run it from there"
        )


def _exec_script(path: str, *, argv: Sequence[str]) -> types.ModuleType:
    """Execute a script as ``__main__`` without its ``if __name__ == "__main__"`` blocks."""
    directory = os.path.dirname(path)
    package, package_root = _package_of(path)
    _prepend_path(directory, *([package_root] if package_root else []))
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    tree.body = [node for node in tree.body if not _is_main_guard(node)]
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__package__ = package
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    sys.argv = list(argv)
    exec(compile(tree, path, "exec"), module.__dict__)
    return module


def _import_from(source_root: str, module_name: str, path: str, file: str) -> types.ModuleType:
    # The sys.path entry the module was imported from: its file path minus the
    # module path (src/pkg/mod.py for pkg.mod -> src).
    stem = file[: -len(".py")] if file.endswith(".py") else file
    stem = stem.removesuffix("/__init__")
    module_path = module_name.replace(".", "/")
    base = stem[: -len(module_path)].rstrip("/") if stem.endswith(module_path) else ""
    _prepend_path(os.path.join(source_root, *base.split("/")) if base else source_root)
    module = importlib.import_module(module_name)
    loaded = os.path.realpath(getattr(module, "__file__", "") or "")
    if loaded != os.path.realpath(path):
        raise DefinitionError(
            f"module {module_name!r} was imported from {loaded or 'nowhere'}, not from the run's "
            f"code ({file}); another module of that name shadows it"
        )
    return module


def _prepend_path(*directories: str) -> None:
    for directory in reversed(directories):
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)
    # Worker processes a parallel orchestrator spawns must import the same code.
    existing = [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in directories
    ]
    os.environ["PYTHONPATH"] = os.pathsep.join([*directories, *existing])


def _package_of(path: str) -> tuple[str, str | None]:
    """The dotted package a file sits in and the directory above it, as ``-m`` sees them."""
    parts: list[str] = []
    directory = os.path.dirname(path)
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        parts.insert(0, os.path.basename(directory))
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return ".".join(parts), (directory if parts else None)


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    constants = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names) and bool(constants)


def _find_pipeline(module: types.ModuleType, qualname: str, pipeline_name: str) -> Pipeline:
    value: Any = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
        if value is None:
            break
    if isinstance(value, Pipeline):
        return value
    found = [
        v for v in vars(module).values() if isinstance(v, Pipeline) and v.name == pipeline_name
    ]
    if found:
        return found[0]
    known = sorted(name for name, v in vars(module).items() if isinstance(v, Pipeline))
    raise DefinitionError(
        f"{module.__name__} ({getattr(module, '__file__', '?')}) has no pipeline {qualname!r}; "
        f"its pipelines: {', '.join(known) or 'none'}"
    )


def call_pipeline(
    pipeline: Pipeline, parameters: Mapping[str, Any], *, unique_run_name: bool = False
) -> Run:
    """Call ``pipeline`` with recorded parameters (a dict from its bound signature)."""
    template = pipeline.options.run_name
    if unique_run_name and template and not any(f in template for f in _UNIQUE_FIELDS):
        pipeline.options = dataclasses.replace(
            pipeline.options, run_name=template + "-rerun-{stamp}"
        )
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, parameter in pipeline.signature.parameters.items():
        if name not in parameters:
            continue
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(parameters[name])
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(parameters[name])
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(parameters[name])
        else:
            kwargs[name] = parameters[name]
    run: Run = pipeline(*args, **kwargs)
    return run


def parse_parameters(items: Sequence[str]) -> dict[str, Any]:
    """``{"k": v}`` from ``["k=v", ...]``.

    Each value is read as JSON when it parses (``3``, ``[1,2]``, ``true``), else as a string.
    """
    parameters: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--param {item!r}: write name=value, e.g. --param learning_rate=0.01"
            )
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        parameters[key.strip()] = value
    return parameters


def run_target(
    target: str,
    *,
    config_path: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    strict_env: bool = False,
) -> Run:
    """``mlops-lite run``: load ``target``, apply the configuration file, run it.

    ``strict_env`` refuses Dask workers whose Python or packages differ from this process's.
    """
    pipeline = load_pipeline(target)
    if config_path:
        pipeline = pipeline.with_options(config_path=config_path)
    if strict_env:
        pipeline = pipeline.with_options(strict_env=True)
    run: Run = pipeline(**dict(parameters or {}))
    return run
