"""Reproducing a run: rebuild its pinned code in a temporary directory, run it again, compare.

``rerun(ref)`` materializes the tree of the run's code commit (never the
user's checkout), starts a fresh interpreter whose source root is that tree,
calls the recorded pipeline entry point with the recorded parameters and
configuration, records the result as a new run that names the one it
reproduces, and compares every step output by content id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from mlops_lite.client import Client, Run
from mlops_lite.core.command import cli_command
from mlops_lite.core.records import pack_value, unpack_value
from mlops_lite.errors import AmbiguousRunError, MlopsLiteError, RunNotFoundError, StepFailedError
from mlops_lite.execution import reproduction
from mlops_lite.execution.environment import capture_environment, environment_differences
from mlops_lite.operations.compare import OutputComparison, compare_outputs
from mlops_lite.operations.diff import data_files_of
from mlops_lite.operations.entrypoints import (
    call_pipeline,
    check_entry_point,
    load_pipeline_from_entry_point,
)
from mlops_lite.store.checkout import materialize_tree, resolve_commit
from mlops_lite.store.git import git_env

__all__ = [
    "RerunReport",
    "child_main",
    "data_differences",
    "environment_differences",
    "rerun",
    "resolve_run",
]

# Where the interpreter `rerun` starts finds what to run (a file only they share).
_ENV_SPEC: Final = "MLOPS_LITE_RERUN_SPEC"
_LOG_TAIL_LINES: Final = 30


@dataclass
class RerunReport:
    """What a rerun did and how its outputs compare with the original run's."""

    original_sha: str
    original_name: str
    pipeline: str
    code_commit: str
    rerun_sha: str | None = None
    rerun_name: str | None = None
    rerun_status: str | None = None
    outputs: list[OutputComparison] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)
    # Data files a step read whose content differs between the original and the rerun.
    data_differences: list[str] = field(default_factory=list)
    strict_env: bool = False
    error: str | None = None
    log: str = ""
    original_seconds: float | None = None
    rerun_seconds: float | None = None

    @property
    def identical(self) -> bool:
        """Whether the rerun recorded a run whose outputs all match the original's."""
        return (
            self.error is None
            and self.rerun_sha is not None
            and all(o.identical for o in self.outputs)
        )

    @property
    def exit_code(self) -> int:
        """0 when every output is identical (and, with strict_env, the environment too); else 1."""
        if self.strict_env and self.environment_differences:
            return 1
        return 0 if self.identical else 1

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        data["identical"] = self.identical
        data["exit_code"] = self.exit_code
        return data


# finding the run ---------------------------------------------------------------


def resolve_run(client: Client, ref: str) -> Run:
    """A run by sha, unique sha prefix or name; or the latest run pinned to a code commit."""
    try:
        return client.get_pipeline_run(ref)
    except AmbiguousRunError:
        raise
    except RunNotFoundError:
        pass
    commit = resolve_commit(client.root, ref)
    if commit is None:
        raise RunNotFoundError(
            f"{ref!r} is neither a run (name, sha or sha prefix) nor a commit; "
            f"list runs with `{cli_command()} runs list`"
        )
    runs = client.runs_for_code_commit(commit)
    if not runs:
        raise RunNotFoundError(
            f"no recorded run is pinned to commit {commit[:10]} (a run from a dirty work tree is "
            "pinned to a snapshot commit: give the run's sha instead)"
        )
    pipelines: dict[str, Run] = {}
    for run in runs:  # newest first
        pipelines.setdefault(run.pipeline_name, run)
    if len(pipelines) > 1:
        choices = "; ".join(
            f"{name}: {run.name} ({run.sha[:10]})" for name, run in sorted(pipelines.items())
        )
        raise AmbiguousRunError(
            f"runs of {len(pipelines)} pipelines are pinned to commit {commit[:10]}: {choices}; "
            "rerun one of them by its sha"
        )
    # The latest original run, not a reproduction of it, when there is one.
    originals = [run for run in runs if not run.reproduces]
    return (originals or runs)[0]


def _entry_point(client: Client, run: Run) -> dict[str, Any]:
    """The run's entry point, or that of the run it reproduces.

    A rerun records paths inside its temporary tree, so for one of those the
    entry point of the run it reproduced is the right one.
    """
    entry = run.record.entry_point
    seen: set[str] = {run.sha}
    current = run
    while _outside_tree(entry) and current.reproduces and current.reproduces not in seen:
        seen.add(current.reproduces)
        current = Run(client, current.reproduces)
        entry = current.record.entry_point
    return dict(entry)


def _outside_tree(entry: dict[str, Any]) -> bool:
    file = entry.get("file")
    return bool(file) and (str(file).startswith("../") or os.path.isabs(str(file)))


# rerun ---------------------------------------------------------------------


def rerun(
    ref: str,
    *,
    use_cache: bool = False,
    strict_env: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> RerunReport:
    """Run ``ref`` again from its pinned code and compare every output with the original.

    Nothing in the user's checkout changes: ``HEAD``, the index and the work tree
    stay as they are. The new run is recorded with ``reproduces`` = the
    original's sha. Raises ``RunNotFoundError``/``AmbiguousRunError`` for a bad
    ``ref``; every other failure is reported in ``RerunReport.error``.
    """
    with Client(path) as client:
        original = resolve_run(client, ref)
        report = RerunReport(
            original_sha=original.sha,
            original_name=original.name,
            pipeline=original.pipeline_name,
            code_commit=original.code_commit,
            strict_env=strict_env,
            original_seconds=original.duration,
        )
        report.environment_differences = environment_differences(
            original.environment, capture_environment()
        )
        if strict_env and report.environment_differences:
            report.error = (
                "the environment differs from the run's and --strict-env was given; nothing ran"
            )
            return report
        entry = _entry_point(client, original)
        try:
            check_entry_point(entry, original.pipeline_name)
        except MlopsLiteError as error:
            report.error = str(error)
            return report
        started = time.perf_counter()
        result = _run_in_subprocess(client, original, entry, use_cache=use_cache, report=report)
        report.rerun_seconds = time.perf_counter() - started
        if result is None:
            return report
        new_run = Run(client, result["sha"])
        report.rerun_sha = new_run.sha
        report.rerun_name = new_run.name
        report.rerun_status = new_run.status
        if result.get("error"):
            report.error = str(result["error"])
        # The environment the rerun recorded is the precise one to compare with.
        report.environment_differences = environment_differences(
            original.environment, new_run.environment
        )
        report.outputs = compare_outputs(original, new_run, numeric=True)
        report.data_differences = data_differences(original, new_run)
        return report


def data_differences(original: Run, new_run: Run) -> list[str]:
    """One line per data file whose content the two runs' steps saw differently."""
    before, after = data_files_of(original), data_files_of(new_run)
    lines = []
    for key in [*before, *(key for key in after if key not in before)]:
        if before.get(key) != after.get(key):
            step, _, path = key.partition(":")
            was, now = before.get(key), after.get(key)
            lines.append(
                f"step {step}: {path} "
                + (f"{was[:12]} -> {now[:12]}" if was and now else "read only by the rerun"
                   if now else "read only by the original")
            )  # fmt: skip
    return lines


def _run_in_subprocess(
    client: Client, original: Run, entry: dict[str, Any], *, use_cache: bool, report: RerunReport
) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="mlops-lite-rerun-") as scratch:
        source_root = os.path.join(scratch, "src")
        os.mkdir(source_root)
        materialize_tree(client.root, original.code_commit, source_root)
        spec_path = os.path.join(scratch, "spec.msgpack")
        result_path = os.path.join(scratch, "result.msgpack")
        spec = {
            "source_root": source_root,
            "entry_point": entry,
            "pipeline_name": original.pipeline_name,
            "parameters": original.parameters,
            "config": original.config,
            "use_cache": use_cache,
            "result_path": result_path,
        }
        with open(spec_path, "wb") as f:
            f.write(pack_value(spec))
        # The child imports this very mlops_lite, never a copy inside the run's tree.
        library_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        python_path = [
            library_root,
            *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
        ]
        settings = reproduction.Reproduction(
            repository=client.root,
            code_commit=original.code_commit,
            reproduces=original.sha,
            source_root=source_root,
            # Caching off overrides every step's own setting; with --use-cache the
            # steps' settings apply as in a normal run.
            enable_cache=None if use_cache else False,
            # --strict-env holds for the rerun's own workers too (Dask).
            strict_env=True if report.strict_env else None,
        )
        # The git policy's environment: a surrounding git (a hook) may point elsewhere.
        env = git_env({"PYTHONPATH": os.pathsep.join(python_path), _ENV_SPEC: spec_path})
        env.pop("GIT_TERMINAL_PROMPT", None)
        env.pop("GIT_OPTIONAL_LOCKS", None)
        env.update(reproduction.environment_for(settings))
        child = "from mlops_lite.operations.rerun import child_main; child_main()"
        completed = subprocess.run(
            [sys.executable, "-c", child],
            cwd=scratch, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        report.log = _tail(completed.stdout + completed.stderr)
        result: dict[str, Any] | None = None
        if os.path.exists(result_path):
            with open(result_path, "rb") as f:
                result = unpack_value(f.read())
        if result is None or not result.get("sha"):
            reason = (result or {}).get(
                "error"
            ) or f"the interpreter exited with status {completed.returncode}"
            report.error = f"the rerun did not record a run: {reason}"
            return None
        return result


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])


def child_main() -> None:
    """In the rerun's interpreter: load the entry point from the tree, call it, report back."""
    from mlops_lite.definition.config import configure

    with open(os.environ[_ENV_SPEC], "rb") as f:
        spec = unpack_value(f.read())
    outcome: dict[str, Any] = {}
    try:
        pipeline = load_pipeline_from_entry_point(
            spec["source_root"], spec["entry_point"], spec["pipeline_name"]
        )
        configured = configure(pipeline, spec["config"])
        try:
            run = call_pipeline(configured, spec["parameters"], unique_run_name=True)
            outcome = {"sha": run.sha}
        except StepFailedError as error:
            with Client(reproduction.current().repository) as client:
                failed = client.get_pipeline_run(f"{configured.name}/{error.run_name}")
                outcome = {"sha": failed.sha, "error": str(error)}
    except MlopsLiteError as error:
        outcome = {"error": f"{type(error).__name__}: {error}"}
    except BaseException as error:
        outcome = {"error": f"{type(error).__name__}: {error}"}
        raise
    finally:
        with open(spec["result_path"], "wb") as f:
            f.write(pack_value(outcome))
    if outcome.get("error"):
        sys.exit(1)
