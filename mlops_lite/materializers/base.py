"""The Materializer interface: how one kind of value becomes bytes and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mlops_lite.core.payload import Payload
    from mlops_lite.materializers.preview import Preview

__all__ = ["Materializer", "qualified_name"]


def qualified_name(cls: type) -> str:
    """Return ``module.QualName`` for a class, the form used by ``handled_type_names``."""
    return f"{cls.__module__}.{cls.__qualname__}"


class Materializer:
    """Turns values of some types into deterministic bytes and back.

    Subclasses set the class variables and implement :meth:`save` and :meth:`load`.
    ``name`` and ``version`` are written into run records and cache keys: keep the
    name stable forever and bump the version whenever the byte format changes.

    A materializer is chosen by walking ``type(value).__mro__``: the first class
    listed in ``handled_types`` (or whose ``module.QualName`` is listed in
    ``handled_type_names``, which lets a materializer claim ``numpy.ndarray`` without
    importing numpy) and whose :meth:`can_save` accepts the value wins.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    handled_types: ClassVar[tuple[type, ...]] = ()
    # Matched against qualified_name(cls) for each class of the MRO; lets optional
    # dependencies be recognised without being imported.
    handled_type_names: ClassVar[tuple[str, ...]] = ()
    # True means load() runs arbitrary code: callers must gate it on trust.
    uses_pickle: ClassVar[bool] = False
    # True means save() returns a directory's files (``core.archive``), which the
    # store keeps as a git tree of those files rather than as one payload.
    stores_files: ClassVar[bool] = False

    def handles_class(self, cls: type) -> bool:
        """Whether ``cls`` (one class of a value's MRO) is claimed by this materializer."""
        if cls in self.handled_types:
            return True
        return bool(self.handled_type_names) and qualified_name(cls) in self.handled_type_names

    def can_save(self, value: Any) -> bool:
        """Whether :meth:`save` will succeed and :meth:`load` will give an equal value back."""
        return True

    def can_save_type(self, cls: type) -> bool:
        """Whether values whose exact type is ``cls`` are, as far as the type says, savable.

        Used to pick a materializer from a return annotation, without a value.
        """
        return True

    def save(self, value: Any) -> bytes:
        """Return the payload for ``value``; the same value must always give the same bytes."""
        raise NotImplementedError(f"{type(self).__name__}.save")

    def save_payload(self, value: Any) -> bytes | Payload:
        """The payload :meth:`save` returns, possibly as views of memory ``value`` holds.

        What a step's output is recorded from. Override it to return a
        ``mlops_lite.core.payload.Payload`` of pieces that are views of the
        value's own memory (the numpy materializer returns the .npy header and
        the array): the output is then stored without being copied, so a large
        value costs its size in memory once, not twice. The bytes must be those
        :meth:`save` would return.
        """
        return self.save(value)

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """Rebuild the value from a payload written by :meth:`save`."""
        raise NotImplementedError(f"{type(self).__name__}.load")

    def load_as(self, data: bytes | bytearray | memoryview, type_name: str) -> Any:
        """Rebuild the value, knowing the type it was saved as (``module.QualName``).

        The same as :meth:`load` unless a materializer needs the type (ZenML's do).
        """
        return self.load(data)

    def preview(self, value: Any) -> Preview | None:
        """What the dashboard shows of a value this materializer loaded; None: the default.

        Override it to show your type your way: return a ``TextPreview``,
        ``TablePreview``, ``ArrayPreview`` or ``ImagePreview`` from
        ``mlops_lite.materializers.preview`` (plain data: the page escapes all text).
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} v{self.version}>"
