"""UUID parameters: recorded as their text, given to the function as ``uuid.UUID`` again.

ZenML pipelines take ids of artifact versions as ``UUID`` parameters. A record
holds JSON-like values only, so a ``UUID`` is recorded as its string; the
function still receives a ``UUID`` wherever its annotation asks for one, also
when the value comes from a configuration file or a rerun.
"""

from __future__ import annotations

import functools
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["call_parameters", "is_uuid_text", "recordable_parameter", "wants_uuid"]


def _uuid_class() -> type | None:
    # uuid costs an import of platform: a UUID value exists only if someone imported it.
    module = sys.modules.get("uuid")
    return getattr(module, "UUID", None)


def recordable_parameter(value: Any) -> Any:
    """``value`` with every ``UUID`` in it (also inside lists and dicts) as its string."""
    uuid_class = _uuid_class()
    if uuid_class is not None and isinstance(value, uuid_class):
        return str(value)
    if type(value) in (list, tuple):
        return type(value)(recordable_parameter(item) for item in value)
    if type(value) is dict:
        return {key: recordable_parameter(item) for key, item in value.items()}
    return value


def is_uuid_text(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is a UUID's text given for a ``UUID`` annotation (a file, a rerun)."""
    uuid_class = _uuid_class()
    if uuid_class is None or annotation is not uuid_class or not isinstance(value, str):
        return False
    try:
        uuid_class(value)
    except ValueError:
        return False
    return True


def wants_uuid(annotation: Any) -> bool:
    """Whether an annotation is ``UUID`` or an optional/union including it."""
    uuid_class = _uuid_class()
    if uuid_class is None:
        return False  # nothing imported uuid, so nothing can be annotated with it
    if annotation is uuid_class:
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return wants_uuid(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(arg is uuid_class for arg in typing.get_args(annotation))
    return False


@functools.lru_cache(maxsize=1024)
def _uuid_arguments(function: Callable[..., Any]) -> frozenset[str]:
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:
        return frozenset()
    return frozenset(name for name, hint in hints.items() if name != "return" and wants_uuid(hint))


def call_parameters(function: Callable[..., Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as ``function`` receives them: text back to ``UUID`` where it asks."""
    wanted = _uuid_arguments(function)
    if not wanted:
        return dict(parameters)
    result = dict(parameters)
    for name in wanted & result.keys():
        value = result[name]
        if isinstance(value, str):
            import uuid

            try:
                result[name] = uuid.UUID(value)
            except ValueError:
                pass  # not a UUID: the function sees what was given
    return result
