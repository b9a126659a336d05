"""``mlops-lite fsck``: read every run's records and artifacts back, and report damage per run.

git's own ``fsck`` checks that objects are well-formed and linked; this reads
what mlops_lite would read — each run's record, each step's record and logs,
each output's artifact checked against its recorded digest (or, for
artifacts recorded before digests, its chunks against their git ids) and the
metadata added later — and reports damage per run; then each model and artifact
registry (``refs/mlops/models/``, ``refs/mlops/artifacts/``): its log must decode
and every artifact version must read back against its digest. On the way it does the
repairs that need no decision: abandoned runs are recovered (or their
journals set aside), the index is rebuilt if it is damaged, and keeps left by
dead writers are swept. It never deletes a run and never runs a pickle.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.core.registry import RegistryKind
from mlops_lite.errors import MlopsLiteError
from mlops_lite.store import GitStore
from mlops_lite.store.annotations import read_annotations
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import (
    RUNS_PREFIX,
    STEP_LOGS,
    parse_run_ref,
    read_run_commit,
    read_step_entries,
    read_step_record,
)
from mlops_lite.store.objects import BLOB
from mlops_lite.store.registry import ARTIFACTS_PREFIX, MODELS_PREFIX, read_registry
from mlops_lite.store.runs import recover_abandoned_runs

__all__ = ["FsckReport", "RegistryCheck", "RunCheck", "check_runs"]


@dataclass
class _Check:
    ref: str
    problems: list[str] = field(default_factory=list, kw_only=True)

    @property
    def ok(self) -> bool:
        """Whether everything it needs reads back exactly."""
        return not self.problems


@dataclass
class RunCheck(_Check):
    """What checking one run found: nothing (``ok``), or one line per problem."""

    sha: str
    artifacts: int = 0

    @property
    def name(self) -> str:
        """``<pipeline>/<run name>``."""
        return self.ref.removeprefix(RUNS_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run": self.name,
            "sha": self.sha,
            "ok": self.ok,
            "artifacts": self.artifacts,
            "problems": list(self.problems),
        }


@dataclass
class RegistryCheck(_Check):
    """What checking one model or artifact registry found."""

    versions: int = 0

    @property
    def name(self) -> str:
        """``models/<name>`` or ``artifacts/<name>``."""
        return self.ref.removeprefix("refs/mlops/")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "registry": self.name,
            "ok": self.ok,
            "versions": self.versions,
            "problems": list(self.problems),
        }


@dataclass
class FsckReport:
    """Every run and registry checked, damaged ones first."""

    runs: list[RunCheck]
    registries: list[RegistryCheck] = field(default_factory=list)

    @property
    def damaged(self) -> list[RunCheck]:
        """The runs with at least one problem."""
        return [run for run in self.runs if not run.ok]

    @property
    def damaged_registries(self) -> list[RegistryCheck]:
        """The registries with at least one problem."""
        return [registry for registry in self.registries if not registry.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "checked": len(self.runs),
            "damaged": len(self.damaged),
            "runs": [run.to_dict() for run in self.runs],
            "registries": [registry.to_dict() for registry in self.registries],
        }


def check_runs(
    path: str | os.PathLike[str] | None = None,
    *,
    progress: Callable[[RunCheck | RegistryCheck], None] | None = None,
) -> FsckReport:
    """Check every run and registry around ``path``; ``progress`` sees each result."""
    with GitStore.open(path) as store:
        recover_abandoned_runs(store)
        runs = store.refs.list(RUNS_PREFIX)
        index = RunIndex(store)
        try:
            index.refresh()  # rebuilt from the refs if it is damaged
            # Runs folded into archives have no ref of their own: the index lists them.
            for row in index.iter_runs():
                runs.setdefault(row.ref, row.sha)
        finally:
            index.close()
        # (artifact id, digest) -> its problem, if any: runs share artifacts.
        verified: dict[tuple[str, str | None], str | None] = {}
        checks = []
        for ref, sha in sorted(runs.items()):
            check = _check_run(store, ref, sha, verified)
            checks.append(check)
            if progress is not None:
                progress(check)
        registries = []
        kinds: tuple[tuple[str, RegistryKind], ...] = (
            (MODELS_PREFIX, "model"),
            (ARTIFACTS_PREFIX, "artifact"),
        )
        for prefix, kind in kinds:
            for ref in sorted(store.refs.list(prefix)):
                registry = _check_registry(store, ref, kind, verified)
                registries.append(registry)
                if progress is not None:
                    progress(registry)
    checks.sort(key=lambda check: (check.ok, check.ref))
    registries.sort(key=lambda registry: (registry.ok, registry.ref))
    return FsckReport(checks, registries)


def _check_registry(
    store: Store, ref: str, kind: RegistryKind, verified: dict[tuple[str, str | None], str | None]
) -> RegistryCheck:
    check = RegistryCheck(ref)
    name = ref.removeprefix(MODELS_PREFIX if kind == "model" else ARTIFACTS_PREFIX)
    try:
        state = read_registry(store, kind, name)
    except MlopsLiteError as error:
        check.problems.append(f"its log cannot be read: {error}")
        return check
    if state is None:
        return check  # deleted while we looked
    for version in state.versions.values():
        check.versions += 1
        event = version.event
        if kind != "artifact" or event is None or not event.artifact_id:
            continue
        problem = _artifact_problem(store, event.artifact_id, event.digest, verified)
        if problem is not None:
            check.problems.append(f"version {version.number} ({version.name}): {problem}")
    return check


def _check_run(
    store: Store, ref: str, sha: str, verified: dict[tuple[str, str | None], str | None]
) -> RunCheck:
    check = RunCheck(ref, sha)
    if parse_run_ref(ref) is None:
        check.problems.append("its ref is not a run's name (refs/mlops/runs/<pipeline>/<run>)")
        return check
    try:
        run = read_run_commit(store.read_object, sha)
    except MlopsLiteError as error:
        check.problems.append(f"its record cannot be read: {error}")
        return check
    for step_name, tree_id in run.steps.items():
        where = f"step {step_name!r}"
        try:
            record = read_step_record(store.read_object, tree_id, where=where)
            logs = read_step_entries(store.read_object, tree_id).get(STEP_LOGS)
            if logs is not None:
                store.read_object(logs[1], BLOB)
        except MlopsLiteError as error:
            check.problems.append(f"{where}: {error}")
            continue
        for output_name, output in record.outputs.items():
            check.artifacts += 1
            problem = _artifact_problem(store, output.artifact_id, output.digest, verified)
            if problem is not None:
                check.problems.append(f"{where}, output {output_name!r}: {problem}")
    try:
        read_annotations(store, ref)
    except MlopsLiteError as error:
        check.problems.append(f"its metadata added later cannot be read: {error}")
    return check


def _artifact_problem(
    store: Store,
    artifact_id: str,
    digest: str | None,
    verified: dict[tuple[str, str | None], str | None],
) -> str | None:
    """Why the artifact does not read back exactly, or None; each one is read once."""
    key = (artifact_id, digest)
    if key not in verified:
        try:
            store.read_artifact(artifact_id, digest=digest)
            verified[key] = None
        except MlopsLiteError as error:
            verified[key] = str(error)
    return verified[key]
