"""What runs inside a Dask worker: the run's pinned code, installed once per commit, and its tasks.

The driver registers a ``PinnedCodePlugin`` per run. On each worker (also one
that joins later) it unpacks the pinned tree into the worker's local directory,
once per commit, and compares the worker's Python and packages with the
driver's. ``run_pinned_task`` then runs each task with that tree first on the
import path, after dropping any module the tree provides that was imported
from elsewhere (another run's commit, a checkout on the worker): two runs
pinned to different commits on one cluster each import their own code. Tasks of
different commits never run at the same time in one worker process (a module
can only be one version at once); tasks of one commit share it freely.

This module needs ``distributed``: it is imported only on Dask workers and by
the ``dask`` orchestrator.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from mlops_lite.errors import EnvironmentMismatchError, ExecutionError
from mlops_lite.execution.environment import capture_environment, environment_differences

__all__ = ["PinnedCodePlugin", "run_pinned_task", "worker_environment"]

_CODE_FOLDER = "mlops-lite-code"
# Never dropped from sys.modules, even if a project's tree has a module of that name:
# the worker itself runs on them.
_KEEP = frozenset({"mlops_lite", "distributed", "dask", "tornado", "cloudpickle", "msgpack"})


@dataclass(frozen=True)
class _Installed:
    directory: str  # the unpacked tree
    differences: tuple[str, ...]  # how this worker's environment differs from the driver's


# Plugin name -> what its setup installed in this process.
_installed: dict[str, _Installed] = {}


class PinnedCodePlugin(WorkerPlugin):  # type: ignore[misc]
    """Unpacks a run's pinned tree on every worker, and notes environment differences."""

    def __init__(self, name: str, commit: str, archive: bytes, driver: Mapping[str, Any]) -> None:
        self.name = name
        self.commit = commit
        self.archive = archive
        self.driver = dict(driver)

    def setup(self, worker: Any) -> None:
        """Unpack the tree (unless this commit is already here) and compare environments."""
        directory = _unpack_once(str(worker.local_directory), self.commit, self.archive)
        differences = environment_differences(
            self.driver,
            capture_environment(),
            reference_as="on the driver",
            current_as="on this worker",
            missing_packages=False,
        )
        _installed[self.name] = _Installed(directory, tuple(differences))

    def teardown(self, worker: Any) -> None:
        """Forget the run; the unpacked tree stays for later runs of the same commit."""
        _installed.pop(self.name, None)


def worker_environment() -> dict[str, Any]:
    """The worker's interpreter and packages (``client.run`` calls it on every worker)."""
    return capture_environment()


def run_pinned_task(
    plugin: str,
    commit: str,
    import_paths: tuple[str, ...],
    strict_env: bool,
    setup: bytes,
    data: bytes,
) -> bytes:
    """Run one encoded task with the run's pinned code first on the import path."""
    installed = _installed.get(plugin)
    if installed is None:
        raise ExecutionError(
            f"this Dask worker did not install the run's code (commit {commit[:12]}): its "
            f"plugin {plugin!r} never ran here; check the worker's log"
        )
    if strict_env and installed.differences:
        raise EnvironmentMismatchError(
            "this Dask worker's environment differs from the driver's and strict_env is on: "
            + "; ".join(installed.differences)
        )
    from mlops_lite.execution.task import run_with_setup

    with _CODE.using(commit, installed.directory, import_paths):
        # Unpickled only now: the step and the user's materializers import project modules.
        return run_with_setup(setup, data)


def _unpack_once(local_directory: str, commit: str, archive: bytes) -> str:
    """``<local>/mlops-lite-code/<commit>``, unpacked unless it already is (atomic rename)."""
    import zstandard

    base = os.path.join(local_directory, _CODE_FOLDER)
    target = os.path.join(base, commit)
    if os.path.isdir(target):
        return target
    os.makedirs(base, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=base)
    try:
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(archive))
        with tarfile.open(fileobj=raw, mode="r|") as tree:
            tree.extractall(scratch, filter="data")
        try:
            os.rename(scratch, target)
        except OSError:
            if not os.path.isdir(target):  # not another thread that won the race
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


class _CodeSlot:
    """Which commit's modules this process imports now, and how many tasks use them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._commit: str | None = None
        self._users = 0
        self._paths: list[str] = []

    @contextlib.contextmanager
    def using(self, commit: str, directory: str, import_paths: tuple[str, ...]) -> Iterator[None]:
        """Hold ``commit``'s modules for one task; waits while tasks of another commit run."""
        with self._changed:
            while self._users and self._commit != commit:
                self._changed.wait()
            if self._commit != commit:
                self._switch(os.path.realpath(directory), import_paths)
                self._commit = commit
            self._users += 1
        try:
            yield
        finally:
            with self._changed:
                self._users -= 1
                self._changed.notify_all()

    def _switch(self, directory: str, import_paths: tuple[str, ...]) -> None:
        folders = [os.path.normpath(os.path.join(directory, p)) for p in import_paths]
        folders = [folder for folder in folders if os.path.isdir(folder)]
        sys.path[:] = [*folders, *(p for p in sys.path if p not in self._paths + folders)]
        self._paths = folders
        provided = {name for folder in folders for name in _top_level_modules(folder)}
        code_root = os.path.dirname(directory) + os.sep
        for name, module in list(sys.modules.items()):
            top = name.partition(".")[0]
            path = getattr(module, "__file__", None)
            if not path or top in _KEEP or top in sys.stdlib_module_names:
                continue
            location = os.path.realpath(path)
            if location.startswith(directory + os.sep):
                continue
            # Another run's commit, or a copy of the project the worker had before.
            if location.startswith(code_root) or top in provided:
                del sys.modules[name]
        importlib.invalidate_caches()


_CODE = _CodeSlot()


def _top_level_modules(folder: str) -> set[str]:
    """Modules and regular packages directly in ``folder`` (namespace folders never shadow)."""
    names = set()
    for entry in os.scandir(folder):
        if entry.is_file() and entry.name.endswith(".py"):
            names.add(entry.name[:-3])
        elif entry.is_dir() and os.path.exists(os.path.join(entry.path, "__init__.py")):
            names.add(entry.name)
    return names
