"""One malformed run breaks nothing else: crafted runs arrive by pull and everything keeps working.

Each case is a ref a teammate (or a bug, or a bad disk) could leave under
``refs/mlops/``. After pulling all of them, ``runs list``, ``runs show``,
``logs``, the Client, pulling again and recording a new run all keep working;
each bad run is listed as ``unreadable`` with its reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import pytest

from mlops_lite import Client
from mlops_lite.core.records import pack_value
from mlops_lite.store import GitStore
from mlops_lite.store import objects as o
from tests.conftest import git, run_script

GOOD = textwrap.dedent(
    """
    from mlops_lite import step, pipeline

    @step
    def hello() -> str:
        print("hello from the good run")
        return "hi"

    @pipeline
    def good():
        hello()

    if __name__ == "__main__":
        run = good()
        print("RUN", run.sha, run.name)
    """
)

VALID_RUN = {
    "run_name": "20260101-000000-000000-0000",
    "pipeline_name": "bad",
    "status": "completed",
    "start_time": 1.0,
}


def _record(data: object) -> bytes:
    return pack_value({"schema": 1, "kind": "run", "data": data})


def _nested_tuple_record(depth: int) -> bytes:
    """A run record whose parameters hold tuples nested ``depth`` deep (ext types in ext types)."""
    value: object = ()
    for _ in range(depth):
        value = msgpack.ExtType(1, msgpack.packb([value], default=lambda v: v))
    envelope = {"schema": 1, "kind": "run", "data": {**VALID_RUN, "parameters": {"x": value}}}
    packed: bytes = msgpack.packb(envelope, use_bin_type=True, default=lambda v: v)
    return packed


def _write_run(store: GitStore, head: str, name: str, record: bytes) -> str:
    record_blob = o.blob(record)
    run_tree = o.tree({"run.msgpack": (o.MODE_BLOB, record_blob.id)})
    commit = o.commit(
        tree_id=run_tree.id, parents=[head], author=o.Identity("Mallory", "m@example.com"),
        timestamp=time.time(), tz_offset_minutes=0, message=f"crafted {name}",
    )  # fmt: skip
    store.write_objects([record_blob, run_tree, commit])
    return commit.id


def craft_bad_runs(teammate: Path) -> dict[str, str]:
    """Write every malformed run into ``teammate``; ``{ref: what is wrong with it}``."""
    head = git(teammate, "rev-parse", "HEAD")
    store = GitStore.open(teammate)
    cases: dict[str, str] = {}
    records = {
        "missing-fields": _record({"run_name": "x"}),
        "wrong-types": _record({**VALID_RUN, "step_names": 5, "start_time": "yesterday"}),
        "not-msgpack": b"\xc1\xc1\xc1 garbage",
        "nested-tuples": _nested_tuple_record(300),
        "host-is-a-list": _record({**VALID_RUN, "environment": {"host": [1, 2]}}),
        "summary-of-wrong-shape": _record({**VALID_RUN, "step_summary": {"s": {"outputs": 3}}}),
        "names-another-run": _record({**VALID_RUN, "pipeline_name": "good"}),
    }
    for number, (case, record) in enumerate(records.items()):
        run_name = f"20260101-000000-00000{number}-{case[:4]}"
        if case == "names-another-run":
            record = _record({**VALID_RUN, "pipeline_name": "good", "run_name": run_name})
        ref = f"refs/mlops/runs/bad/{run_name}"
        store.refs.compare_and_swap(ref, None, _write_run(store, head, case, record))
        cases[ref] = case
    blob = o.blob(b"just a blob")
    tree = o.tree({"file": (o.MODE_BLOB, blob.id)})
    store.write_objects([blob, tree])
    store.refs.compare_and_swap("refs/mlops/runs/bad/20260101-000001-000000-blob", None, blob.id)
    store.refs.compare_and_swap("refs/mlops/runs/bad/20260101-000001-000000-tree", None, tree.id)
    cases["refs/mlops/runs/bad/20260101-000001-000000-blob"] = "points at a blob"
    cases["refs/mlops/runs/bad/20260101-000001-000000-tree"] = "points at a tree"
    store.close()
    return cases


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_malformed_runs_are_listed_as_unreadable_and_break_nothing_else(
    project: Path, tmp_path: Path
) -> None:
    (project / "good.py").write_text(GOOD)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "good pipeline")
    good = run_script(project, "good.py").stdout.split()
    good_sha, good_name = good[good.index("RUN") + 1 : good.index("RUN") + 3]

    teammate = tmp_path / "teammate"
    git(tmp_path, "clone", "-q", str(project), str(teammate))
    cases = craft_bad_runs(teammate)
    # A garbage metadata ref beside the good run, and beside a bad one.
    with GitStore.open(teammate) as store:
        garbage = o.blob(b"not a metadata commit")
        store.write_objects([garbage])
    git(teammate, "update-ref", f"refs/mlops/metadata/good/{good_name}", garbage.id)
    git(teammate, "update-ref", "refs/mlops/metadata/bad/whatever", garbage.id)
    git(project, "remote", "add", "teammate", str(teammate))

    pulled = cli(project, "pull", "teammate")
    assert pulled.returncode == 0, pulled.stderr

    listed = cli(project, "runs", "list", "--json", "--limit", "0")
    assert listed.returncode == 0, listed.stderr
    statuses = {run["name"]: run["status"] for run in json.loads(listed.stdout)}
    assert statuses[good_name] == "completed"
    for ref in cases:
        assert statuses[ref.rsplit("/", 1)[1]] == "unreadable", ref
    table = cli(project, "runs", "list", "--limit", "0")
    assert table.returncode == 0 and table.stdout.count("unreadable") == len(cases)

    shown = cli(project, "runs", "show", good_name)
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout
    logs = cli(project, "logs", good_name, "hello")
    assert logs.returncode == 0 and "hello from the good run" in logs.stdout
    for ref, case in cases.items():
        bad = cli(project, "runs", "show", ref.rsplit("/", 1)[1])
        assert bad.returncode in (0, 1), (case, bad.stderr)
        assert "Traceback" not in bad.stderr, (case, bad.stderr)
        assert "unreadable" in bad.stdout + bad.stderr, (case, bad.stdout, bad.stderr)

    with Client(project) as client:
        run = client.get_pipeline_run(good_sha)
        assert run.steps["hello"].output.load() == "hi"
        assert run.metadata == {}
        unreadable = client.list_pipeline_runs(status="unreadable")
        assert len(unreadable) == len(cases)
        assert all(run.error for run in unreadable)

    # A new local run and another pull still work.
    again = run_script(project, "good.py")
    assert "RUN" in again.stdout
    assert cli(project, "pull", "teammate").returncode == 0
    assert "Traceback" not in cli(project, "runs", "list").stderr


@pytest.mark.parametrize("depth", [195, 300])
def test_deeply_nested_tuples_decode_without_crashing_the_interpreter(depth: int) -> None:
    # msgpack's C unpacker recursing through ext types used to overflow the C stack.
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_hostile_runs import _nested_tuple_record
        from mlops_lite.core.records import RunRecord
        from mlops_lite.errors import RecordError
        try:
            record = RunRecord.decode(_nested_tuple_record({depth}))
            print("decoded")
        except RecordError as error:
            print("refused", error)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("decoded" if depth < 200 else "refused")
