"""ZenML's materializer contract, so that a ZenML custom materializer ports unchanged.

A ZenML materializer names the types it handles (``ASSOCIATED_TYPES``), writes a
value as files under ``self.uri`` in ``save(data)`` and reads them back in
``load(data_type)``. Defining a subclass registers it, as in ZenML. Here
``self.uri`` is a fresh local directory: its files become a git tree inside the
artifact (``git ls-tree`` shows them), and equal files give equal artifact ids.
Plain ``open()`` and ``mlops_lite.io.fileio`` both work on it.

Visualizations (``save_visualizations``) and ``extract_metadata`` are accepted
and not called: there is no dashboard to show them in.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import tempfile
from typing import Any, ClassVar

from mlops_lite.core.archive import decode_files, encode_files
from mlops_lite.enums import ArtifactType
from mlops_lite.errors import MaterializerError
from mlops_lite.materializers import register_materializer
from mlops_lite.materializers.base import Materializer, qualified_name
from mlops_lite.materializers.path import read_directory, write_files

__all__ = ["BaseMaterializer", "FilesMaterializer"]

# Directories handed to load(): the loaded value may still read from them (a
# memory-mapped model), so they live until the interpreter exits.
_LOAD_DIRECTORIES: list[str] = []


@atexit.register
def _remove_load_directories() -> None:
    for directory in _LOAD_DIRECTORIES:
        shutil.rmtree(directory, ignore_errors=True)


class BaseMaterializer:
    """Subclass it as in ZenML: set ``ASSOCIATED_TYPES``, implement ``save`` and ``load``."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = ()
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[str] = ArtifactType.BASE
    # True: defining the subclass does not register it (it is used only where named).
    SKIP_REGISTRATION: ClassVar[bool] = False

    def __init__(self, uri: str, artifact_store: Any = None) -> None:
        self.uri = uri
        self._artifact_store = artifact_store

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.ASSOCIATED_TYPES and not cls.SKIP_REGISTRATION:
            register_materializer(FilesMaterializer(cls), override=True)

    @property
    def artifact_store(self) -> None:
        """ZenML's artifact store; here the files live under ``self.uri``, so there is none."""
        return None

    def load(self, data_type: type[Any]) -> Any:
        """Read the value from the files under ``self.uri``."""
        raise NotImplementedError(f"{type(self).__name__}.load")

    def save(self, data: Any) -> None:
        """Write ``data`` as files under ``self.uri``."""
        raise NotImplementedError(f"{type(self).__name__}.save")

    def save_visualizations(self, data: Any) -> dict[str, Any]:
        """Accepted for ZenML compatibility; not called."""
        return {}

    def extract_metadata(self, data: Any) -> dict[str, Any]:
        """Accepted for ZenML compatibility; not called."""
        return {}

    def validate_type(self, data_type: type[Any]) -> None:
        """Raise ``MaterializerError`` unless ``data_type`` is one of ``ASSOCIATED_TYPES``."""
        if not any(issubclass(data_type, kind) for kind in self.ASSOCIATED_TYPES):
            raise MaterializerError(
                f"{type(self).__name__} cannot handle {qualified_name(data_type)}; it handles "
                f"{', '.join(qualified_name(kind) for kind in self.ASSOCIATED_TYPES)}"
            )

    @classmethod
    def _mlops_lite_adapter(cls) -> Materializer:
        """The class as a ``Materializer`` (``output_materializers``, ``register_materializer``)."""
        return FilesMaterializer(cls)


class FilesMaterializer(Materializer):
    """A ``BaseMaterializer`` subclass seen through mlops_lite's ``Materializer`` interface."""

    stores_files: ClassVar[bool] = True

    def __init__(self, materializer_class: type[BaseMaterializer]) -> None:
        self.materializer_class = materializer_class
        # One instance per ZenML class: its name, types and version are per instance.
        self.name = qualified_name(materializer_class)  # type: ignore[misc]
        self.version = 1  # type: ignore[misc]
        self.handled_types = tuple(materializer_class.ASSOCIATED_TYPES)  # type: ignore[misc]
        self.artifact_type = str(materializer_class.ASSOCIATED_ARTIFACT_TYPE)

    def can_save_type(self, cls: type) -> bool:
        """Whether ``cls`` is one of the ZenML materializer's types."""
        return any(issubclass(cls, kind) for kind in self.handled_types)

    def save(self, value: Any) -> bytes:
        """Run the ZenML ``save`` into an empty directory; its files are the payload."""
        with tempfile.TemporaryDirectory(prefix="mlops-lite-save-") as directory:
            self.materializer_class(uri=directory).save(value)
            return encode_files(read_directory(directory, who=f"materializer {self.name}"))

    def load(self, data: bytes | bytearray | memoryview) -> Any:
        """The value, as the ZenML ``load`` reads it (given the first associated type)."""
        return self.load_as(data, "")

    def load_as(self, data: bytes | bytearray | memoryview, type_name: str) -> Any:
        """The value, as the ZenML ``load`` reads it from the files, given the saved type."""
        directory = tempfile.mkdtemp(prefix="mlops-lite-load-")
        _LOAD_DIRECTORIES.append(directory)
        write_files(decode_files(data), directory)
        return self.materializer_class(uri=directory).load(self._data_type(type_name))

    def _data_type(self, type_name: str) -> type[Any]:
        module_name, _, qualname = type_name.rpartition(".")
        found: Any = None
        if module_name:
            try:
                found = importlib.import_module(module_name)
                for part in qualname.split("."):
                    found = getattr(found, part)
            except (ImportError, AttributeError):
                found = None
        if isinstance(found, type):
            return found
        return self.handled_types[0] if self.handled_types else object
