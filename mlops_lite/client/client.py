"""``Client``: read pipelines and runs from any process, by name, sha or sha prefix."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mlops_lite.client.tables import RunPage, RunTable, compare_runs
from mlops_lite.client.views import RecordedPipeline, Run
from mlops_lite.core.columns import Column
from mlops_lite.core.command import cli_command
from mlops_lite.core.ids import CommitId
from mlops_lite.core.names import did_you_mean
from mlops_lite.errors import AmbiguousRunError, PipelineNotFoundError, RunNotFoundError
from mlops_lite.store import GitStore
from mlops_lite.store.index import RunIndex
from mlops_lite.store.interface import Store
from mlops_lite.store.layout import METADATA_PREFIX, RUNS_PREFIX

if TYPE_CHECKING:
    import uuid

    from mlops_lite.client.registry import (
        ArtifactVersion,
        ModelVersion,
        Page,
        RegisteredArtifact,
        RegisteredModel,
    )
    from mlops_lite.client.stack import ActiveStack

__all__ = ["Client"]


class Client:
    """Read access to the runs recorded in a project's git repository.

    ``Client()`` reads the repository around the working directory,
    ``Client(path)`` the one around ``path``, ``Client(store=...)`` an open
    store. Navigation follows ZenML: ``Client().get_pipeline("training")
    .last_run.steps["train"].outputs["model"].load()``. It never writes. A
    client reads the runs as they are when it is first asked (one look at the
    refs); a new ``Client`` sees what was recorded or annotated since.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, store: Store | None = None
    ) -> None:
        self._owns_store = store is None
        self._store: Store = store if store is not None else GitStore.open(path)
        self._index: RunIndex | None = None
        self._annotated: frozenset[str] | None = None

    @property
    def root(self) -> str:
        """The project root whose repository this client reads."""
        return self._store.root

    def _runs_index(self) -> RunIndex:
        if self._index is None:
            self._index = RunIndex(self._store)
            self._index.refresh()
        return self._index

    def _is_annotated(self, run_ref: str) -> bool:
        """Whether metadata was added to the run later (its metadata ref exists), listed once."""
        if self._annotated is None:
            listed = self._store.refs.list(METADATA_PREFIX)
            self._annotated = frozenset(
                RUNS_PREFIX + ref.removeprefix(METADATA_PREFIX) for ref in listed
            )
        return run_ref in self._annotated

    def close(self) -> None:
        """Release the index and the repository's open files."""
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # pipelines ---------------------------------------------------------------

    def list_pipelines(self) -> list[RecordedPipeline]:
        """Every pipeline with at least one recorded run."""
        return [RecordedPipeline(self, name) for name in self._runs_index().pipelines()]

    def get_pipeline(self, name: str) -> RecordedPipeline:
        """A pipeline by name; ``PipelineNotFoundError`` when it has no run."""
        known = self._runs_index().pipelines()
        if name not in known:
            raise PipelineNotFoundError(
                f"no run of pipeline {name!r} is recorded; {did_you_mean(name, known)}"
                f"pipelines with runs: {', '.join(known) or 'none yet (run a pipeline first)'}"
            )
        return RecordedPipeline(self, name)

    # runs --------------------------------------------------------------------

    def list_pipeline_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Run]:
        """Runs newest first, optionally of one pipeline and/or one status."""
        return self.find_runs(pipeline=pipeline, status=status, limit=limit).runs

    def find_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        author: str | None = None,
        text: str | None = None,
        order_by: Column | None = None,
        ascending: bool = False,
        offset: int = 0,
        limit: int | None = 50,
    ) -> RunPage:
        """One page of runs, newest first or by a column, from the index (no record is read).

        ``author`` is an e-mail; ``text`` matches part of a run's name, pipeline,
        author or host, or a sha prefix; ``order_by`` sorts by a numeric parameter or
        metric, runs without one last. The page also says how many runs match in all.
        A ``pipeline`` with no recorded run is a ``PipelineNotFoundError``: a typo
        must not look like an empty history.
        """
        index = self._runs_index()
        if pipeline is not None:
            self.get_pipeline(pipeline)
        filters: dict[str, Any] = {"pipeline": pipeline, "author": author, "text": text}
        if status in ("crashed", "running"):
            # "crashed" is "running" whose writer is gone: decided per run, not stored.
            # Few runs are either, so they are all read and the page cut here.
            rows = index.runs(status="running", order_by=order_by, ascending=ascending, **filters)
            runs = [
                run for run in (Run(self, row.sha, row) for row in rows) if run.status == status
            ]
            if status == "crashed":
                crashed = index.runs(status="crashed", **filters)
                runs += [Run(self, row.sha, row) for row in crashed]
                runs.sort(key=lambda run: -(run.start_time or 0))
            end = None if limit is None else offset + limit
            return RunPage(runs[offset:end], len(runs), offset, limit)
        rows = index.runs(
            status=status,
            order_by=order_by,
            ascending=ascending,
            offset=offset,
            limit=limit,
            **filters,
        )
        if limit is None or 0 < len(rows) < limit or (not rows and not offset):
            total = offset + len(rows)  # the last page: nothing to count
        else:
            total = index.count(status=status, **filters)
        return RunPage([Run(self, row.sha, row) for row in rows], total, offset, limit)

    def iter_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        author: str | None = None,
        text: str | None = None,
        order_by: Column | None = None,
        ascending: bool = False,
        page: int = 1000,
    ) -> Iterator[list[Run]]:
        """Every run ``find_runs`` selects, a page at a time: memory stays flat at 100,000 runs."""
        if status in ("crashed", "running"):
            yield self.find_runs(
                pipeline=pipeline, status=status, author=author, text=text,
                order_by=order_by, ascending=ascending, limit=None,
            ).runs  # fmt: skip
            return
        index = self._runs_index()
        if pipeline is not None:
            self.get_pipeline(pipeline)
        rows = index.iter_runs(
            page=page, pipeline=pipeline, status=status, author=author, text=text,
            order_by=order_by, ascending=ascending,
        )  # fmt: skip
        batch: list[Run] = []
        for row in rows:
            batch.append(Run(self, row.sha, row))
            if len(batch) == page:
                yield batch
                batch = []
        if batch:
            yield batch

    def run_table(self, runs: Sequence[Run], columns: Sequence[Column]) -> RunTable:
        """``columns`` of listed runs, from the index: what ``runs list --columns`` shows.

        Values recorded with each run; metadata added later shows in ``compare_runs``.
        """
        found = self._runs_index().values([run.ref for run in runs], list(columns))
        return RunTable(list(runs), list(columns), [found.get(run.ref, {}) for run in runs])

    def compare_runs(
        self, runs: Sequence[Run | str], columns: Sequence[Column] | None = None
    ) -> RunTable:
        """Runs (or their names, shas, prefixes) side by side: every parameter and metric."""
        resolved = [self.get_pipeline_run(run) if isinstance(run, str) else run for run in runs]
        return compare_runs(resolved, columns)

    def columns(self, *, pipeline: str | None = None) -> list[Column]:
        """The parameters and metrics recent runs (of ``pipeline``) have, to choose columns from."""
        return self._runs_index().columns(pipeline=pipeline)

    def get_pipeline_run(self, name_or_sha: str) -> Run:
        """A run by name, ``pipeline/name``, full sha or unique sha prefix."""
        index = self._runs_index()
        text = name_or_sha.strip()
        rows = index.find(text)
        if not rows and "/" in text:
            rows = index.find(RUNS_PREFIX + text)
        if not rows:
            raise RunNotFoundError(
                f"no run named {text!r} or with a sha starting with {text!r}; "
                f"list runs with `{cli_command()} runs list` (teammates' runs: `pull` first)"
            )
        if len(rows) > 1:
            names = ", ".join(f"{r.pipeline}/{r.run_name} ({r.sha[:10]})" for r in rows[:5])
            raise AmbiguousRunError(
                f"{text!r} matches {len(rows)} runs: {names}; give more of the sha"
            )
        return Run(self, rows[0].sha, rows[0])

    def runs_for_code_commit(self, commit: CommitId | str) -> list[Run]:
        """Runs pinned to a code commit, newest first."""
        return [
            Run(self, row.sha, row) for row in self._runs_index().runs(code_commit=CommitId(commit))
        ]

    # stack ------------------------------------------------------------------

    @property
    def active_stack(self) -> ActiveStack:
        """The stack the next run here would use: ``.name``, ``.orchestrator``."""
        from mlops_lite.client.stack import read_active_stack

        return read_active_stack(self.root)

    # named artifacts (ZenML's artifact versions) ------------------------------

    def get_artifact_version(
        self, name_id_or_prefix: str | uuid.UUID, version: str | int | None = None
    ) -> ArtifactVersion:
        """An artifact version by name (and version, default: the latest), id or id prefix.

        ``ArtifactVersionNotFoundError`` (a ``KeyError``, as in ZenML) when there is none.
        """
        from mlops_lite.client import registry

        return registry.get_artifact_version(self, name_id_or_prefix, version)

    def list_artifact_versions(
        self, name: str | None = None, *, version: str | None = None, tag: str | None = None
    ) -> Page[ArtifactVersion]:
        """Artifact versions, oldest first: of one artifact, with a version name or a tag."""
        from mlops_lite.client import registry

        return registry.list_artifact_versions(self, name, version=version, tag=tag)

    def get_artifact(self, name_id_or_prefix: str | uuid.UUID) -> RegisteredArtifact:
        """A named artifact with its versions."""
        from mlops_lite.client import registry

        return registry.get_artifact(self, name_id_or_prefix)

    def list_artifacts(self, name: str | None = None) -> Page[RegisteredArtifact]:
        """Every named artifact, by name."""
        from mlops_lite.client import registry

        return registry.list_artifacts(self, name)

    # models -------------------------------------------------------------------

    def get_model(self, model_name_or_id: str | uuid.UUID) -> RegisteredModel:
        """A model by name or id (``KeyError`` when there is none)."""
        from mlops_lite.client import registry

        return registry.get_model(self, model_name_or_id)

    def list_models(self, name: str | None = None) -> Page[RegisteredModel]:
        """Every model, by name."""
        from mlops_lite.client import registry

        return registry.list_models(self, name)

    def get_model_version(
        self,
        model_name_or_id: str | uuid.UUID,
        model_version_name_or_number_or_id: str | int | uuid.UUID | None = None,
    ) -> ModelVersion:
        """A model version by name, number, stage (``production``, ``latest``) or id.

        The latest when no version is given; ``ModelVersionNotFoundError`` (a
        ``KeyError``, as in ZenML) when there is no such model or version.
        """
        from mlops_lite.client import registry

        return registry.get_model_version(
            self, model_name_or_id, model_version_name_or_number_or_id
        )

    def list_model_versions(
        self, model_name_or_id: str | uuid.UUID, *, stage: str | None = None
    ) -> Page[ModelVersion]:
        """A model's versions by number (only those in ``stage``, if given)."""
        from mlops_lite.client import registry

        return registry.list_model_versions(self, model_name_or_id, stage=stage)
