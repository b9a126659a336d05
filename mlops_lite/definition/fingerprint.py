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


_MISSING: Any = object()
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement, not built in


@lru_cache(maxsize=4096)
def _is_project_file(filename: str) -> bool:
    if filename.startswith("<"):
        # Code with no file behind it (exec'd strings, `python -i`, old IPython cells)
        # is the user's, typed or generated at run time.
        return True
    real = os.path.realpath(filename)
    if "site-packages" in real or "dist-packages" in real:
        return False
    return not real.startswith(_LIBRARY_PREFIXES)


def _is_project_object(obj: Any) -> bool:
    """Whether ``obj`` (a function or class) is the user's code rather than a library's."""
    module_name = getattr(obj, "__module__", None)
    if module_name == "builtins" and isinstance(obj, type) and obj.__flags__ & _HEAP_TYPE:
        # A class statement exec'd in a dict without __name__: its body found
        # builtins.__name__. Real builtins are static types.
        return True
    if module_name is not None and module_name.startswith("mlops_lite"):
        return False
    module = sys.modules.get(module_name) if module_name is not None else None
    filename = getattr(module, "__file__", None)
    if filename:
        code = getattr(obj, "__code__", None)
        if code is not None and code.co_filename.startswith("<"):
            # Defined at the prompt of `python -i script.py`: __main__ has the
            # script's file, the function has none.
            return module_name == "__main__" or _is_project_file(filename)
        return _is_project_file(filename)
    if module_name in sys.builtin_module_names:
        return False
    spec = getattr(module, "__spec__", None)
    if spec is not None and spec.origin in ("built-in", "frozen"):
        return False
    # No file behind the module: a notebook's or the REPL's __main__, a function
    # exec'd in a dict of its own (module None), a module built at run time.
    return True


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


@dataclasses.dataclass
class _Dependencies:
    """What a fingerprint was computed from, so a memoized one can be checked in microseconds.

    Code in files does not change under a running interpreter, but names do: a
    notebook cell or the REPL rebinds a helper or a constant in the same globals
    dict, under a step function object that stays the same (issue 10). So every
    lookup the walk made is kept and re-checked by identity. A container changed
    in place keeps its identity and so its fingerprint: a list the step appends
    to is state, and must not make the step miss its own cache.
    """

    lookups: list[tuple[Any, str, Any]] = dataclasses.field(default_factory=list)
    codes: list[tuple[Any, types.CodeType]] = dataclasses.field(default_factory=list)

    def unchanged(self) -> bool:
        """Whether every name still holds the same object, and every function the same code."""
        for namespace, name, value in self.lookups:
            if namespace.get(name, _MISSING) is not value:
                return False
        return all(function.__code__ is code for function, code in self.codes)


class _Walker:
    def __init__(self) -> None:
        self.hasher = xxhash.xxh3_128()
        self.seen: set[int] = set()
        self.dependencies = _Dependencies()
        # Objects reached, kept alive so that their ids in ``seen`` stay theirs.
        self._reached: list[Any] = []

    def _first_visit(self, value: Any) -> bool:
        if id(value) in self.seen:
            return False
        self.seen.add(id(value))
        self._reached.append(value)
        return True

    def add_function(self, func: Any) -> None:
        func = inspect.unwrap(func)
        if not self._first_visit(func):
            return
        # No module name: the same step run as a script (``__main__``) or imported
        # (``train``) is the same code and must hit the same cache entries.
        self.hasher.update(f"fn:{func.__qualname__}\n{_source_of(func)}".encode())
        code = getattr(func, "__code__", None)
        if code is None:
            return
        self.dependencies.codes.append((func, code))
        globals_ = getattr(func, "__globals__", {})
        names = _referenced_names(code)
        closure_values = [cell.cell_contents for cell in (func.__closure__ or ()) if _cell_ok(cell)]
        for value in closure_values:
            self.add_value(f"closure:{func.__qualname__}", value, names)
        lookups = self.dependencies.lookups
        for name in sorted(names):
            value = globals_.get(name, _MISSING)
            lookups.append((globals_, name, value))
            if value is not _MISSING:
                self.add_value(name, value, names)

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
            if project and self._first_visit(value):
                namespace = vars(value)
                for attribute in sorted(names):
                    member = namespace.get(attribute, _MISSING)
                    self.dependencies.lookups.append((namespace, attribute, member))
                    if member is not _MISSING:
                        self.add_value(f"{value.__name__}.{attribute}", member, names)
        elif _is_step_or_pipeline(value):
            self.add_function(value.entrypoint)
        elif isinstance(value, (types.FunctionType, types.MethodType)):
            if _is_project_object(value):
                self.add_function(value)
        elif isinstance(value, type):
            if _is_project_object(value) and self._first_visit(value):
                self._add_class(value, names)
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            # Settings kept in module-level containers (FEATURES = ["a", "b"]):
            # editing them changes what the step computes.
            encoded = _content_bytes(value)
            if encoded is not None:
                self.hasher.update(f"const:{name}=".encode() + encoded + b"\n")
        elif (
            dataclasses.is_dataclass(value)
            and not isinstance(value, type)
            and _is_project_object(type(value))
        ):
            # A configuration object of the project's own (CONFIG = Config(lr=0.1)).
            self.add_value(name, type(value), names)
            encoded = _content_bytes(value)
            if encoded is not None:
                self.hasher.update(f"instance:{name}=".encode() + encoded + b"\n")

    def _add_class(self, cls: type, names: set[str]) -> None:
        self.hasher.update(f"class:{cls.__qualname__}\n{_source_of(cls)}".encode())
        namespace = vars(cls)
        for member_name, member in namespace.items():
            self.dependencies.lookups.append((namespace, member_name, member))
            target = getattr(member, "__func__", member)
            if isinstance(target, types.FunctionType):
                self.add_function(target)
            elif isinstance(member, _SIMPLE_CONSTANTS) and not member_name.startswith("__"):
                # Class attributes count where the source cannot be read (a notebook cell).
                self.add_value(f"{cls.__qualname__}.{member_name}", member, names)


_CONSTANT_LIMIT = 1_000_000


def _content_bytes(value: Any) -> bytes | None:
    """A stable encoding of a JSON-like container or a dataclass instance; None if none or big."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            value = dataclasses.asdict(value)
        except Exception:
            return None
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


_cache: dict[int, tuple[Any, str, _Dependencies]] = {}


def code_fingerprint(func: Any) -> str:
    """Hex digest of ``func``'s code and of the project code it reaches.

    Memoized per function object, and recomputed when any name the walk looked
    up now holds another object (a notebook cell or the REPL redefined a
    helper or a constant).
    """
    cached = _cache.get(id(func))
    if cached is not None and cached[0] is func and cached[2].unchanged():
        return cached[1]
    walker = _Walker()
    walker.add_function(func)
    result = walker.hasher.hexdigest()
    _cache[id(func)] = (func, result, walker.dependencies)
    return result
