"""The materializer registry: which materializer saves a value, chosen by type, found again by name.

Lookup order for a value: walk ``type(value).__mro__``; at each class, user
registrations (newest first) then the builtins (msgpack, numpy, pandas); the first
that claims the class and whose ``can_save`` accepts the value wins. Only when
that whole walk misses are entry-point plugins consulted (loaded once, then), and
cloudpickle is the last resort. Plugins rank below builtins so that the choice
never depends on whether some earlier lookup happened to load them: the same value
always gets the same materializer, which cache keys and artifact ids rely on.
"""

from __future__ import annotations

import threading
import types
import typing
import warnings
from typing import Any

from mlops_lite.errors import MaterializerError, NoMaterializerError, UnknownMaterializerError
from mlops_lite.materializers.base import Materializer, qualified_name
from mlops_lite.materializers.builtin import MsgpackMaterializer
from mlops_lite.materializers.numpy import NumpyArrayMaterializer, NumpyScalarMaterializer
from mlops_lite.materializers.pandas import PandasParquetMaterializer
from mlops_lite.materializers.path import PathMaterializer
from mlops_lite.materializers.pickle import CloudpickleMaterializer

__all__ = [
    "ENTRY_POINT_GROUP",
    "CloudpickleMaterializer",
    "Materializer",
    "MsgpackMaterializer",
    "NumpyArrayMaterializer",
    "NumpyScalarMaterializer",
    "PandasParquetMaterializer",
    "PathMaterializer",
    "as_materializer",
    "get_materializer",
    "loading_unpickles",
    "materializer_for_type",
    "materializer_for_value",
    "register_materializer",
    "registered_materializers",
    "user_materializers",
]

ENTRY_POINT_GROUP = "mlops_lite.materializers"

# Containers whose builtin materializer also needs every element to be native.
_CONTAINER_ORIGINS: tuple[type, ...] = (list, tuple, dict, set, frozenset)


def as_materializer(materializer: object) -> object:
    """A ``Materializer`` for a subclass or instance of one, or for a ZenML ``BaseMaterializer``.

    Anything else is returned as it is (the caller reports it).
    """
    if isinstance(materializer, type) and issubclass(materializer, Materializer):
        return materializer()
    adapter = getattr(materializer, "_mlops_lite_adapter", None)
    if isinstance(materializer, type) and callable(adapter):
        return adapter()  # a BaseMaterializer subclass (ZenML's contract)
    return materializer


def _instantiate(materializer: object, *, source: str) -> Materializer:
    """Accept a Materializer subclass or instance; refuse anything else clearly."""
    materializer = as_materializer(materializer)
    if not isinstance(materializer, Materializer):
        raise MaterializerError(
            f"{source} gave {materializer!r}, which is neither a Materializer subclass nor "
            "an instance of one"
        )
    name = getattr(materializer, "name", None)
    version = getattr(materializer, "version", None)
    if not isinstance(name, str) or not name:
        raise MaterializerError(f"{source}: {type(materializer).__qualname__} has no `name`")
    if type(version) is not int or version < 0:
        raise MaterializerError(
            f"{source}: {type(materializer).__qualname__}.version must be an int >= 0"
        )
    return materializer


class _Registry:
    """All registry state, so tests can swap in a fresh one."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._user: list[Materializer] = []  # newest first
        self._builtins: list[Materializer] = [
            MsgpackMaterializer(),
            NumpyArrayMaterializer(),
            NumpyScalarMaterializer(),
            PandasParquetMaterializer(),
            PathMaterializer(),  # claims no type: found by name only (register_artifact)
        ]
        self._plugins: list[Materializer] = []
        self._last_resort: Materializer = CloudpickleMaterializer()
        self._plugins_loaded = False
        self._plugin_failures: dict[str, str] = {}

    # -- registration ---------------------------------------------------------

    def register(self, materializer: object, *, override: bool) -> None:
        new = _instantiate(materializer, source="register_materializer()")
        with self._lock:
            existing = self._by_name(new.name)
            if existing is not None and not override:
                raise MaterializerError(
                    f"a materializer named {new.name!r} is already registered ({existing!r}); "
                    "choose another name, or pass override=True to replace it"
                )
            if existing is self._last_resort:
                self._last_resort = new
                return
            if existing is not None:
                for group in (self._user, self._builtins, self._plugins):
                    if existing in group:
                        group.remove(existing)
            self._user.insert(0, new)

    def load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            # Set first: a plugin module that looks something up while importing
            # must not start a second load.
            self._plugins_loaded = True
            from importlib.metadata import entry_points

            # Sorted so that two plugins claiming one type resolve the same way
            # whatever order the environment lists distributions in.
            found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
            for entry_point in found:
                source = f"entry point {entry_point.name!r} ({entry_point.value})"
                try:
                    plugin = _instantiate(entry_point.load(), source=source)
                except Exception as exc:  # a broken plugin must not break every lookup
                    self._plugin_failures[entry_point.name] = f"{source}: {exc!r}"
                    warnings.warn(
                        f"mlops_lite materializer plugin {source} failed to load: {exc!r}; "
                        "values it would handle go to other materializers",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    continue
                existing = self._by_name(plugin.name)
                if existing is not None:
                    if existing not in self._user:  # a user registration wins silently
                        self._plugin_failures[entry_point.name] = (
                            f"{source}: name {plugin.name!r} already taken by {existing!r}"
                        )
                        warnings.warn(
                            f"mlops_lite materializer plugin {source} ignored: the name "
                            f"{plugin.name!r} is already taken by {existing!r}",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                    continue
                self._plugins.append(plugin)

    # -- lookups --------------------------------------------------------------

    def _by_name(self, name: str) -> Materializer | None:
        for materializer in self.all(load=False):
            if materializer.name == name:
                return materializer
        return None

    def all(self, *, load: bool = True) -> list[Materializer]:
        if load:
            self.load_plugins()
        return [*self._user, *self._builtins, *self._plugins, self._last_resort]

    def get(self, name: str, version: int | None) -> Materializer:
        found = self._by_name(name)
        if found is None:
            self.load_plugins()
            found = self._by_name(name)
        if found is None:
            raise UnknownMaterializerError(self._unknown_message(name))
        if version is not None and version > found.version:
            raise UnknownMaterializerError(
                f"this artifact was written by materializer {name!r} version {version}, but "
                f"the one installed here ({found!r}) is version {found.version}: upgrade the "
                "package that provides it"
            )
        return found

    def _unknown_message(self, name: str) -> str:
        package = name.split(".", 1)[0]
        message = (
            f"no materializer named {name!r} is installed here, so this artifact cannot be "
            f"loaded. It was probably written with a plugin for {package!r}: install the "
            f"package that provides it (one declaring an entry point in the "
            f"{ENTRY_POINT_GROUP!r} group) in this environment, or call "
            f"mlops_lite.materializers.register_materializer() with a Materializer whose "
            f"name is {name!r}."
        )
        if self._plugin_failures:
            failures = "; ".join(sorted(self._plugin_failures.values()))
            message += f" Plugins that failed to load: {failures}"
        return message

    def for_value(self, value: Any, step_name: str, output_name: str) -> Materializer:
        mro = type(value).__mro__
        found = self._walk(mro, [*self._user, *self._builtins], value)
        if found is None:
            self.load_plugins()
            found = self._walk(mro, self._plugins, value)
        if found is not None:
            return found
        last = self._last_resort
        if isinstance(last, CloudpickleMaterializer):
            error = last.pickle_error(value)
            reason = f"{type(error).__name__}: {error}" if error is not None else ""
        else:
            reason = "" if last.can_save(value) else f"{last.name} refused it"
        if not reason:
            return last
        kind = qualified_name(type(value))
        raise NoMaterializerError(
            f"step {step_name!r}, output {output_name!r}: no materializer can save a value "
            f"of type {kind} (last resort {last.name} failed with {reason}). Register one "
            f"with mlops_lite.materializers.register_materializer(), a Materializer subclass "
            f"with handled_types = ({type(value).__qualname__},), or return a value of a type "
            "that can be saved."
        )

    @staticmethod
    def _walk(
        mro: tuple[type, ...], candidates: list[Materializer], value: Any
    ) -> Materializer | None:
        for cls in mro:
            for materializer in candidates:
                if materializer.handles_class(cls) and materializer.can_save(value):
                    return materializer
        return None

    def for_class(self, cls: type) -> Materializer | None:
        if cls is object:
            return None
        found = self._walk_class(cls, [*self._user, *self._builtins])
        if found is None:
            self.load_plugins()
            found = self._walk_class(cls, self._plugins)
        if found is not None:
            return found
        # An ABC or protocol is satisfied by types we cannot see from here.
        if getattr(cls, "__abstractmethods__", None) or getattr(cls, "_is_protocol", False):
            return None
        return self._last_resort

    @staticmethod
    def _walk_class(cls: type, candidates: list[Materializer]) -> Materializer | None:
        for base in cls.__mro__:
            for materializer in candidates:
                if materializer.handles_class(base) and materializer.can_save_type(cls):
                    return materializer
        return None

    def for_type(self, annotation: Any) -> Materializer | None:
        annotation = _strip(annotation)
        if annotation is Any:  # a class since Python 3.11, so check before the class branch
            return None
        if annotation is None:
            annotation = type(None)
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            return _same(self.for_type(arg) for arg in args)
        if origin is typing.Literal:
            return _same(self.for_class(type(arg)) for arg in args)
        if isinstance(origin, type):
            found = self.for_class(origin)
            if origin in _CONTAINER_ORIGINS and isinstance(found, MsgpackMaterializer):
                items = [arg for arg in args if arg is not Ellipsis]
                # A bare list (or list[Any]) may hold anything: undecidable.
                if not items or not all(
                    isinstance(self.for_type(arg), MsgpackMaterializer) for arg in items
                ):
                    return None
            return found
        if isinstance(annotation, type):
            if annotation in _CONTAINER_ORIGINS:
                return None  # unparameterised container: contents unknown
            return self.for_class(annotation)
        return None  # Any, a TypeVar, a string forward reference...


def _strip(annotation: Any) -> Any:
    """Unwrap Annotated[T, ...] (output names) and NewType to the type that decides."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif isinstance(annotation, typing.NewType):
            annotation = annotation.__supertype__
        else:
            return annotation


def _same(choices: typing.Iterable[Materializer | None]) -> Materializer | None:
    """The one materializer every alternative resolves to, else None."""
    result: Materializer | None = None
    for choice in choices:
        if choice is None or (result is not None and choice is not result):
            return None
        result = choice
    return result


_registry = _Registry()


def register_materializer(
    materializer: Materializer | type[Materializer], *, override: bool = False
) -> None:
    """Add a materializer; it wins over the builtins for the types it handles.

    Raises MaterializerError if one with the same ``name`` exists, unless
    ``override`` is true, in which case it replaces that one (builtins included).
    """
    _registry.register(materializer, override=override)


def materializer_for_value(
    value: Any, *, step_name: str = "?", output_name: str = "?"
) -> Materializer:
    """The materializer that will save ``value``: by MRO, then plugins, then cloudpickle.

    Raises NoMaterializerError (naming the step, output and type) when even
    cloudpickle cannot serialise the value.
    """
    return _registry.for_value(value, step_name, output_name)


def materializer_for_type(annotation: Any) -> Materializer | None:
    """The materializer values of this return annotation would get, or None if undecidable.

    Understands classes, ``Annotated``, ``Optional``/unions whose members all agree,
    and ``list[int]``-style containers of native types. None for ``Any``, ``object``,
    a bare ``list``/``dict`` (contents unknown), TypeVars and ABCs.
    """
    return _registry.for_type(annotation)


def get_materializer(name: str, *, version: int | None = None) -> Materializer:
    """The materializer stored under ``name`` in a record, for loading.

    With ``version`` (the one recorded), also refuses a materializer older than the
    format it would have to read. Raises UnknownMaterializerError saying what to install.
    """
    return _registry.get(name, version)


def loading_unpickles(name: str) -> bool:
    """Whether loading an artifact written by materializer ``name`` would unpickle, here.

    Asked of the materializer installed in this process under that name (its
    class's ``uses_pickle``), never of a flag stored beside the bytes. A name
    nothing here answers to counts as unpickling: it cannot be vouched for,
    and a plugin installed later could claim it.
    """
    try:
        return bool(type(_registry.get(name, None)).uses_pickle)
    except UnknownMaterializerError:
        return True


def registered_materializers() -> list[Materializer]:
    """Every materializer (plugins included), in the order lookups consider them."""
    return _registry.all()


def user_materializers() -> list[Materializer]:
    """Materializers registered by the user in this process, newest first.

    Worker processes replay these (oldest first) so that they choose exactly
    what the driver would, and so write the same bytes.
    """
    return list(_registry._user)
