"""Code fingerprints of steps: the step's own code plus the project code it calls.

A step's cache must be invalidated when the step changes *or* when a function,
class or constant of the user's own project that it uses changes — and not when
unrelated code changes. So the fingerprint walks the globals a function's code
names (recursively through nested code objects, project modules' attributes,
and the functions and methods it reaches) and hashes the source of every
project-owned object it finds. Library code (site-packages, the standard
library) is left out: its version is recorded in the run environment instead.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import sysconfig
import types
from functools import lru_cache
from typing import Any

import xxhash

from mlops_lite.core.hashing import canonical_bytes
from mlops_lite.core.values import is_recordable

__all__ = ["code_fingerprint"]

_LIBRARY_PREFIXES = tuple(
    os.path.join(os.path.realpath(p), "")
    for p in {
        *(sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")),
        sys.prefix,
        sys.base_prefix,
    }
    if p
)
_SIMPLE_CONSTANTS = (bool, int, float, str, bytes, type(None))


@lru_cache(maxsize=4096)
def _is_project_file(filename: str) -> bool:
    if filename.startswith("<"):
        return filename.startswith("<ipython-input")  # notebook cells
    real = os.path.realpath(filename)
    if "site-packages" in real or "dist-packages" in real:
        return False
    return not real.startswith(_LIBRARY_PREFIXES)


def _is_project_object(obj: Any) -> bool:
    module_name = getattr(obj, "__module__", None)
    if module_name is None:
        return False
    if module_name.startswith("mlops_lite"):
        return False
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None) if module is not None else None
    if module_name == "__main__" and filename is None:
        return True  # notebooks and interactive sessions
    return bool(filename) and _is_project_file(filename)


def _source_of(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is not None:
            return repr(_code_signature(code))
        return repr(getattr(obj, "__qualname__", obj))


def _code_signature(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(
        _code_signature(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names, code.co_varnames)


def _referenced_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _referenced_names(const)
    return names


class _Walker:
    def __init__(self) -> None:
        self.hasher = xxhash.xxh3_128()
        self.seen: set[int] = set()

    def add_function(self, func: Any) -> None:
        func = inspect.unwrap(func)
        if id(func) in self.seen:
            return
        self.seen.add(id(func))
        # No module name: the same step run as a script (``__main__``) or imported
        # (``train``) is the same code and must hit the same cache entries.
        self.hasher.update(f"fn:{func.__qualname__}\n{_source_of(func)}".encode())
        code = getattr(func, "__code__", None)
        if code is None:
            return
        globals_ = getattr(func, "__globals__", {})
        names = _referenced_names(code)
        closure_values = [cell.cell_contents for cell in (func.__closure__ or ()) if _cell_ok(cell)]
        for value in closure_values:
            self.add_value(f"closure:{func.__qualname__}", value, names)
        for name in sorted(names):
            if name in globals_:
                self.add_value(name, globals_[name], names)

    def add_value(self, name: str, value: Any, names: set[str]) -> None:
        if isinstance(value, _SIMPLE_CONSTANTS):
            self.hasher.update(f"const:{name}={value!r}\n".encode())
        elif isinstance(value, types.ModuleType):
            filename = getattr(value, "__file__", None)
            project = (
                filename
                and _is_project_file(filename)
                and not value.__name__.startswith("mlops_lite")
            )
            # A package reached as ``pkg.sub.helper``: follow its project submodules too.
            if project and id(value) not in self.seen:
                self.seen.add(id(value))
                for attribute in sorted(names):
                    member = getattr(value, attribute, None)
                    if member is not None:
                        self.add_value(f"{value.__name__}.{attribute}", member, names)
        elif _is_step_or_pipeline(value):
            self.add_function(value.entrypoint)
        elif isinstance(value, (types.FunctionType, types.MethodType)):
            if _is_project_object(value):
                self.add_function(value)
        elif isinstance(value, type):
            if _is_project_object(value) and id(value) not in self.seen:
                self.seen.add(id(value))
                self.hasher.update(f"class:{value.__qualname__}\n{_source_of(value)}".encode())
                for member in vars(value).values():
                    target = getattr(member, "__func__", member)
                    if isinstance(target, types.FunctionType):
                        self.add_function(target)
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            # Settings kept in module-level containers (FEATURES = ["a", "b"]):
            # editing them changes what the step computes.
            encoded = _constant_bytes(value)
            if encoded is not None:
                self.hasher.update(f"const:{name}=".encode() + encoded + b"\n")
        elif (
            dataclasses.is_dataclass(value)
            and not isinstance(value, type)
            and _is_project_object(type(value))
        ):
            # A configuration object of the project's own (CONFIG = Config(lr=0.1)).
            self.add_value(name, type(value), names)
            encoded = _constant_bytes(dataclasses.asdict(value))
            if encoded is not None:
                self.hasher.update(f"instance:{name}=".encode() + encoded + b"\n")


_CONSTANT_LIMIT = 1_000_000


def _constant_bytes(value: Any) -> bytes | None:
    """A stable encoding of a JSON-like container, or None for anything else or too big."""
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=repr)
    if not is_recordable(value):
        return None
    encoded = canonical_bytes(value)
    return encoded if len(encoded) <= _CONSTANT_LIMIT else None


def _cell_ok(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - empty cells raise
    except ValueError:
        return False
    return True


def _is_step_or_pipeline(value: Any) -> bool:
    return hasattr(value, "entrypoint") and type(value).__module__.startswith("mlops_lite")


_cache: dict[int, tuple[Any, str]] = {}


def code_fingerprint(func: Any) -> str:
    """Hex digest of ``func``'s code and of the project code it reaches.

    Memoized per function object for the life of the process: code does not
    change under a running interpreter (editing a file needs a new process).
    """
    cached = _cache.get(id(func))
    if cached is not None and cached[0] is func:
        return cached[1]
    walker = _Walker()
    walker.add_function(func)
    result = walker.hasher.hexdigest()
    _cache[id(func)] = (func, result)
    return result
