"""Whether a value fits a type annotation: configuration values (deep) and step outputs (shallow).

Lenient where it cannot know: ``Any``, type variables, string annotations that
were never resolved, and protocols that ``isinstance`` cannot check all fit.
"""

from __future__ import annotations

import inspect
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any

from mlops_lite.definition.parameters import is_uuid_text

__all__ = ["describe_annotation", "matches_annotation"]

# Step outputs: numpy's scalars are registered with these ABCs, where they are
# not subclasses of int or float (np.int64 is no int).
_NUMBERS: dict[Any, type] = {int: numbers.Integral, float: numbers.Real, complex: numbers.Complex}


def matches_annotation(value: Any, annotation: Any, *, deep: bool = True) -> bool:
    """Whether ``value`` fits ``annotation``.

    ``deep`` (configuration values) checks the items of containers and refuses
    ``True`` for an ``int``; shallow (step outputs, which may be large) checks
    only the class, or the origin of a generic (``list[int]``: a list), and
    takes any number of the right kind (``numpy.float64`` for ``float``).
    """
    if annotation in (Any, object, inspect.Parameter.empty):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return matches_annotation(value, args[0], deep=deep)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches_annotation(value, arg, deep=deep) for arg in args)
    if origin is typing.Literal:
        return value in args
    if not deep:
        return _matches_class(value, origin or annotation)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(map(matches_annotation, value, args))
        return not args or all(matches_annotation(item, args[0]) for item in value)
    if origin is dict or annotation is dict or origin is Mapping:
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(
                matches_annotation(k, args[0]) and matches_annotation(v, args[1])
                for k, v in value.items()
            )
        return True
    if is_uuid_text(value, annotation):  # a UUID parameter, given as its text
        return True
    return _matches_class(value, annotation)


def _matches_class(value: Any, annotation: Any) -> bool:
    supertype = getattr(annotation, "__supertype__", None)  # NewType
    if supertype is not None:
        return _matches_class(value, supertype)
    if not isinstance(annotation, type):
        return True  # a TypeVar, a ForwardRef, a string: nothing to check against
    try:
        return isinstance(value, _NUMBERS.get(annotation, annotation))
    except TypeError:
        return True  # protocols that are not runtime-checkable, and the like


def describe_annotation(annotation: Any) -> str:
    """``int``, ``list[int]``, ``pandas.core.frame.DataFrame``: an annotation as people read it."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        module = annotation.__module__
        return (
            annotation.__qualname__
            if module == "builtins"
            else f"{module}.{annotation.__qualname__}"
        )
    return str(annotation).replace("typing.", "")
