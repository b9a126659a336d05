"""Comparing two runs: parameters, configuration, code, environment, outputs, metadata."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_lite.client import Client, Run
from mlops_lite.operations.compare import OutputComparison, compare_outputs
from mlops_lite.store.checkout import changed_files, patch

__all__ = ["RunDiff", "ValueChange", "compare_mappings", "data_files_of", "diff"]

_MISSING = "<missing>"


@dataclass
class ValueChange:
    """One key with its value in each run (``None`` + ``present`` False when absent)."""

    key: str
    a: Any
    b: Any
    same: bool


@dataclass
class RunDiff:
    """What differs between run ``a`` and run ``b``."""

    a: dict[str, str]
    b: dict[str, str]
    parameters: list[ValueChange] = field(default_factory=list)
    config: list[ValueChange] = field(default_factory=list)
    code_a: str = ""
    code_b: str = ""
    code_files: list[dict[str, str | None]] = field(default_factory=list)
    patch: str | None = None
    python: ValueChange | None = None
    packages: list[ValueChange] = field(default_factory=list)
    outputs: list[OutputComparison] = field(default_factory=list)
    steps: list[ValueChange] = field(default_factory=list)  # step status
    metadata: list[ValueChange] = field(default_factory=list)
    # "<step>:<path>" -> content id, for the data files either run's steps read.
    data_files: list[ValueChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data."""
        return asdict(self)


def diff(
    a: Run | str,
    b: Run | str,
    *,
    with_patch: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> RunDiff:
    """Compare two runs (``Run`` objects, or names / shas looked up in the project at ``path``)."""
    if isinstance(a, str) or isinstance(b, str):
        with Client(path) as client:
            run_a = client.get_pipeline_run(a) if isinstance(a, str) else a
            run_b = client.get_pipeline_run(b) if isinstance(b, str) else b
            return _diff(run_a, run_b, client.root, with_patch)
    return _diff(a, b, a._client.root, with_patch)


def _diff(a: Run, b: Run, root: str, with_patch: bool) -> RunDiff:
    result = RunDiff(a=_summary(a), b=_summary(b))
    result.parameters = compare_mappings(a.parameters, b.parameters)
    result.config = compare_mappings(_flatten(a.config), _flatten(b.config))
    result.code_a, result.code_b = a.code_commit, b.code_commit
    result.code_files = [
        {"status": change.status, "path": change.path, "old_path": change.old_path}
        for change in changed_files(root, a.code_commit, b.code_commit)
    ]
    if with_patch:
        result.patch = patch(root, a.code_commit, b.code_commit)
    env_a, env_b = a.environment, b.environment
    result.python = ValueChange(
        "python",
        env_a.get("python"),
        env_b.get("python"),
        env_a.get("python") == env_b.get("python"),
    )
    result.packages = [
        change
        for change in compare_mappings(env_a.get("packages", {}), env_b.get("packages", {}))
        if not change.same
    ]
    result.outputs = compare_outputs(a, b)
    statuses_a = {name: step.status for name, step in a.steps.items()}
    statuses_b = {name: step.status for name, step in b.steps.items()}
    result.steps = compare_mappings(statuses_a, statuses_b)
    metadata_a = {"run." + k: v for k, v in _flatten(a.metadata).items()}
    metadata_b = {"run." + k: v for k, v in _flatten(b.metadata).items()}
    for run, target in ((a, metadata_a), (b, metadata_b)):
        for name, step in run.steps.items():
            target.update({f"{name}.{k}": v for k, v in _flatten(step.metadata).items()})
    result.metadata = compare_mappings(metadata_a, metadata_b)
    result.data_files = compare_mappings(data_files_of(a), data_files_of(b))
    return result


def data_files_of(run: Run) -> dict[str, str]:
    """``{"<step>:<path>": content id}`` of every data file the run's steps read."""
    return {
        f"{name}:{path}": content_id
        for name, step in run.steps.items()
        for path, content_id in step.data_files.items()
    }


def _summary(run: Run) -> dict[str, str]:
    return {"sha": run.sha, "name": run.name, "pipeline": run.pipeline_name, "status": run.status}


def compare_mappings(a: dict[str, Any], b: dict[str, Any]) -> list[ValueChange]:
    """Every key of either mapping, ``a``'s order first, with both values."""
    keys = [*a, *(k for k in b if k not in a)]
    return [
        ValueChange(
            str(k), a.get(k, _MISSING), b.get(k, _MISSING), k in a and k in b and _same(a[k], b[k])
        )
        for k in keys
    ]


def _same(x: Any, y: Any) -> bool:
    # 1 == 1.0 == True in Python; a run recorded with 1 and one with 1.0 differ.
    return type(x) is type(y) and x == y


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
