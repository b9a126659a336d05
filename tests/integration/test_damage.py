"""Damage on disk is an error naming what it affects, never a wrong value; derived state is rebuilt.

Bytes are changed in real pack files, journals and index files, as a failing
disk (or a careless tool) would, and the repository is read from new processes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import pytest

from mlops_lite import Client
from mlops_lite.errors import StoreError
from mlops_lite.store import GitStore
from mlops_lite.store.artifacts import build_artifact
from tests.conftest import CRASHY, git, run_script

PIPELINE = textwrap.dedent(
    """
    import sys
    from mlops_lite import step, pipeline

    @step
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @step
    def noise(n: int) -> bytes:
        import random
        return random.Random(n).randbytes(200_000)

    @pipeline
    def damaged(n: int = 2000):
        numbers(n)
        noise(n)

    if __name__ == "__main__":
        run = damaged(n=int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
        print("RUN", run.sha, run.name)
    """
)


def _run(project: Path, *args: str) -> tuple[str, str]:
    out = run_script(project, "damaged.py", *args).stdout.split()
    position = out.index("RUN")
    return out[position + 1], out[position + 2]


def _setup(project: Path) -> None:
    (project / "damaged.py").write_text(PIPELINE)
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "pipeline")


def _pack_entry(project: Path, object_id: str) -> tuple[Path, int, int]:
    """``(pack file, offset, size in pack)`` of an object, from ``git verify-pack``."""
    for index in (project / ".git/objects/pack").glob("*.idx"):
        listing = git(project, "verify-pack", "-v", str(index))
        for line in listing.splitlines():
            fields = line.split()
            if fields and fields[0] == object_id:
                return index.with_suffix(".pack"), int(fields[4]), int(fields[3])
    raise AssertionError(f"{object_id} is in no pack")


def _data_blob(project: Path, run_name: str, step: str) -> str:
    return git(
        project, "rev-parse", f"refs/mlops/runs/damaged/{run_name}:steps/{step}/outputs/output/data"
    )


def _patch(path: Path, offset: int, change: bytes | list[int]) -> None:
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        f.seek(offset)
        old = f.read(len(change))
        f.seek(offset)
        if isinstance(change, list):  # add these deltas to the bytes there
            f.write(bytes((byte + delta) % 256 for byte, delta in zip(old, change, strict=True)))
        else:
            f.write(change)


def _adler32_kept(pack: Path, start: int) -> int:
    """Where +1, -2, +1 on three bytes changes the data but leaves both Adler-32 sums as they were.

    Bytes that take the change without wrapping around: zlib's own check then
    passes, and only the digest (or the git id) can catch the damage.
    """
    data = pack.read_bytes()
    return next(
        p for p in range(start, start + 100_000)
        if data[p] < 255 and data[p + 1] >= 2 and data[p + 2] < 255
    )  # fmt: skip


def _load_in_a_new_process(
    project: Path, run_name: str, step: str
) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        from mlops_lite import Client
        from mlops_lite.errors import MlopsLiteError
        try:
            with Client() as client:
                value = client.get_pipeline_run({run_name!r}).steps[{step!r}].output.load()
                print("LOADED", len(value))
        except MlopsLiteError as error:
            print("ERROR", type(error).__name__, error)
        """
    )
    return subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)


def test_a_flipped_byte_in_a_pack_is_one_line_naming_run_step_and_output(project: Path) -> None:
    _setup(project)
    _, run_name = _run(project)
    pack, offset, size = _pack_entry(project, _data_blob(project, run_name, "numbers"))
    _patch(project / pack, offset + size // 2, [0x20])
    loaded = _load_in_a_new_process(project, run_name, "numbers")
    assert loaded.stderr == "", loaded.stderr
    [line] = loaded.stdout.splitlines()
    assert line.startswith("ERROR StoreError"), line
    assert "'output'" in line and "'numbers'" in line and run_name in line and "fsck" in line
    # The rest of the run, and the listing, still read.
    assert _load_in_a_new_process(project, run_name, "noise").stdout.startswith("LOADED 200000")
    listed = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "runs", "list"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0 and run_name in listed.stdout


def test_an_adler32_preserving_change_is_an_error_never_a_wrong_value(project: Path) -> None:
    _setup(project)
    _, run_name = _run(project)
    # 200 kB of noise: stored raw, in zlib "stored" blocks guarded only by Adler-32.
    pack, offset, _ = _pack_entry(project, _data_blob(project, run_name, "noise"))
    _patch(project / pack, _adler32_kept(project / pack, offset + 5000), [1, -2, 1])
    loaded = _load_in_a_new_process(project, run_name, "noise")
    assert loaded.stdout.startswith("ERROR StoreError"), loaded.stdout + loaded.stderr
    assert "does not match the digest" in loaded.stdout


def test_artifacts_recorded_before_digests_are_checked_against_their_chunk_ids(
    project: Path,
) -> None:
    payload = os.urandom(3 * 1024 * 1024)  # raw, so read straight from the pack
    tree, objects = build_artifact(
        payload, materializer="m", materializer_version=1, type_name="t", uses_pickle=False
    )
    store = GitStore.open()
    store.write_objects(objects).release()
    store.close()
    [data_blob] = [obj.id for obj in objects if len(obj.data) == len(payload)]
    pack, offset, _ = _pack_entry(project, data_blob)
    _patch(project / pack, _adler32_kept(project / pack, offset + 100_000), [1, -2, 1])
    with GitStore.open() as reopened, pytest.raises(StoreError, match="does not match its git id"):
        reopened.read_artifact(tree.id)  # no digest: an output recorded before digests


def test_a_cache_hit_whose_blobs_are_gone_runs_the_step_again(project: Path) -> None:
    _setup(project)
    _, first = _run(project)
    blob = _data_blob(project, first, "numbers")
    # Unpack everything loose, then lose one blob, as a broken disk or a careless
    # `rm` would: the artifact tree is still there, its content is not.
    packs = project / ".git/objects/pack"
    for pack in list(packs.glob("*.pack")):
        moved = pack.rename(project / pack.name)
        pack.with_suffix(".idx").unlink()
        subprocess.run(
            ["git", "unpack-objects", "-q"], cwd=project, stdin=moved.open("rb"), check=True
        )
        moved.unlink()
    for keep in packs.glob("*.keep"):
        keep.unlink()
    (project / ".git/objects" / blob[:2] / blob[2:]).unlink()
    sha, second = _run(project)
    with Client() as client:
        run = client.get_pipeline_run(second)
        assert not run.steps["numbers"].cached  # not reused: it could not be loaded
        assert run.steps["numbers"].output.load() == list(range(2000))
        assert run.steps["noise"].cached
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_fsck_reports_damage_per_run_and_exits_1(project: Path) -> None:
    _setup(project)
    _, good = _run(project, "10")
    _, bad = _run(project, "3000")
    clean = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "fsck"], cwd=project, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 runs checked, 0 damaged" in clean.stdout
    pack, offset, size = _pack_entry(project, _data_blob(project, bad, "numbers"))
    _patch(project / pack, offset + size // 2, [0x20])
    checked = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "fsck", "--json"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 1
    report = json.loads(checked.stdout)
    by_run = {run["run"]: run for run in report["runs"]}
    assert by_run[f"damaged/{good}"]["ok"]
    [problem] = by_run[f"damaged/{bad}"]["problems"]
    assert "step 'numbers', output 'output'" in problem


def test_a_damaged_journal_of_a_dead_writer_is_recovered_up_to_the_damage_and_set_aside(
    project: Path,
) -> None:
    (project / "crashy.py").write_text(CRASHY)
    killed = subprocess.run(
        [sys.executable, "crashy.py"], cwd=project, env={**os.environ, "DIE": "1"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    journal_dir = project / ".git/mlops-lite/journal"
    [journal] = journal_dir.glob("*.journal")
    # A frame that decodes but is not a step: a tree id that is no id at all.
    frame = msgpack.packb(["step", "dies", "not a sha", []])
    with journal.open("ab") as f:
        f.write(struct.pack(">I", len(frame)) + frame)
    second = run_script(project, "crashy.py")
    assert "RUN" in second.stdout
    assert not list(journal_dir.glob("*.journal"))
    assert list((journal_dir / "damaged").iterdir())  # kept for whoever looks, not deleted
    with Client() as client:
        crashed = client.list_pipeline_runs(status="crashed")
        [run] = crashed
        assert list(run.steps) == ["quick"] and "damaged" in (run.error or "")
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)


def test_a_damaged_index_page_is_rebuilt_from_the_refs(project: Path) -> None:
    _setup(project)
    shas = [_run(project, str(n))[0] for n in (10, 20, 30)]
    index = project / ".git/mlops-lite/index.sqlite3"
    with sqlite3.connect(index) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    size = index.stat().st_size
    assert size >= 3 * page_size
    with index.open("r+b") as f:  # garbage over every page but the header
        f.seek(page_size)
        f.write(os.urandom(size - page_size))
    with Client() as client:
        assert sorted(run.sha for run in client.list_pipeline_runs()) == sorted(shas)
    assert "RUN" in run_script(project, "damaged.py", "40").stdout


def test_fsck_checks_model_and_artifact_registries(project: Path) -> None:
    _setup(project)
    save = "import mlops_lite; mlops_lite.save_artifact(list(range(3000)), 'features')"
    saved = subprocess.run(
        [sys.executable, "-c", save], cwd=project, capture_output=True, text=True
    )
    assert saved.returncode == 0, saved.stderr
    clean = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "fsck"], cwd=project, capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ok       artifacts/features  (1 versions)" in clean.stdout
    # A version's bytes damaged on disk, and a model ref a teammate's tool set to a blob.
    [version_id] = git(
        project, "ls-tree", "--name-only", "refs/mlops/artifacts/features:versions"
    ).split()
    data = git(project, "rev-parse", f"refs/mlops/artifacts/features:versions/{version_id}/data")
    pack, offset, size = _pack_entry(project, data)
    _patch(project / pack, offset + size // 2, [0x20])
    junk = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=project, input="not a log", capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    git(project, "update-ref", "refs/mlops/models/churn", junk)
    checked = subprocess.run(
        [sys.executable, "-m", "mlops_lite", "fsck", "--json"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 1, checked.stdout + checked.stderr
    by_name = {entry["registry"]: entry for entry in json.loads(checked.stdout)["registries"]}
    [problem] = by_name["artifacts/features"]["problems"]
    assert problem.startswith("version 1 (") and "fsck" in problem
    [problem] = by_name["models/churn"]["problems"]
    assert problem.startswith("its log cannot be read")
