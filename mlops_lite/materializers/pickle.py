"""The ``cloudpickle`` materializer: the last resort for values nothing else can save."""

from __future__ import annotations

import io
from typing import Any, ClassVar

from mlops_lite.errors import MaterializerError
from mlops_lite.materializers.base import Materializer

__all__ = ["PICKLE_PROTOCOL", "CloudpickleMaterializer"]

# Fixed, not HIGHEST_PROTOCOL: the bytes (and so the artifact ids and cache hits)
# must not change when Python gains a protocol.
PICKLE_PROTOCOL = 5


class _Discard(io.RawIOBase):
    """A sink for the trial pickle in can_save: nothing is kept in memory."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(memoryview(data))


class CloudpickleMaterializer(Materializer):
    """Any value cloudpickle can serialise, with pickle protocol 5.

    Loading runs code from the payload (``uses_pickle``): callers must only load
    artifacts whose origin the user trusts. Deterministic only as far as pickle is:
    the same object graph gives the same bytes in one process, but sets of str, for
    example, iterate in an order that changes with ``PYTHONHASHSEED``.
    """

    name: ClassVar[str] = "cloudpickle"
    version: ClassVar[int] = 1
    uses_pickle: ClassVar[bool] = True

    def can_save(self, value: Any) -> bool:
        """Whether cloudpickle can serialise the value."""
        return self.pickle_error(value) is None

    def pickle_error(self, value: Any) -> Exception | None:
        """The exception pickling ``value`` raises, or None when it pickles."""
        import cloudpickle

        try:
            cloudpickle.CloudPickler(_Discard(), protocol=PICKLE_PROTOCOL).dump(value)
        except Exception as exc:  # pickling runs user __reduce__ code: anything can come out
            return exc
        return None

    def save(self, value: Any) -> bytes:
        """The value as a protocol-5 pickle."""
        import cloudpickle

        try:
            return bytes(cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL))
        except MemoryError:
            raise  # the value is too large for memory, not one cloudpickle cannot save
        except Exception as exc:
            raise MaterializerError(
                f"cloudpickle cannot save this {type(value).__qualname__}: {exc}"
            ) from exc

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """The unpickled value: this runs code from the payload."""
        import pickle

        # cloudpickle payloads are plain pickles; cloudpickle itself must be
        # importable for the functions they reference, which pickle imports itself.
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise MaterializerError(f"cannot unpickle cloudpickle payload: {exc}") from exc
