"""What a dirty tree's snapshot takes: your code, never secrets, environments, junk or big files."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytest

from mlops_lite.errors import ConfigError
from mlops_lite.store import GitStore
from mlops_lite.store.codepin import CodePin
from mlops_lite.store.snapshot_rules import (
    DEFAULT_MAX_FILE_SIZE,
    SnapshotRules,
    is_secret_file,
)
from tests.conftest import git, run_script


def pin(root: Path) -> tuple[CodePin, list[str]]:
    """The code pin of ``root`` now, and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with GitStore.open(root) as store:
            code = store.pin_code()
    return code, [str(warning.message) for warning in caught]


def files_of(root: Path, commit: str) -> set[str]:
    return set(git(root, "ls-tree", "-r", "--name-only", commit).split())


def write(root: Path, path: str, content: str = "x\n") -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(content)


def test_junk_environments_secrets_and_large_files_stay_out_with_one_warning(
    project: Path,
) -> None:
    write(project, "train.py", "print('train')\n")
    write(project, "data/small.csv", "a,b\n1,2\n")
    write(project, "myenv/pyvenv.cfg", "home = /usr/bin\n")  # a venv by its marker
    write(project, "myenv/lib/python3.11/site-packages/pkg.py")
    write(project, "conda/conda-meta/history")
    write(project, "conda/bin/tool")
    for junk in (
        ".venv/bin/activate",
        "venv311/lib/x.py",
        "node_modules/left-pad/index.js",
        "src/__pycache__/train.cpython-311.pyc",
        "notebooks/.ipynb_checkpoints/eda-checkpoint.ipynb",
    ):
        write(project, junk)
    for secret in (".env", "config/.env.production", "deploy/server.pem", "tls.key", "id_rsa"):
        write(project, secret, "s3cret\n")
    write(project, "id_rsa.pub", "ssh-ed25519 AAAA public\n")
    write(project, ".env.example", "TOKEN=\n")
    big = project / "data" / "generated.csv"
    with big.open("wb") as handle:  # sparse: nothing is written, and nothing is read
        handle.truncate(DEFAULT_MAX_FILE_SIZE + 1)

    code, messages = pin(project)

    assert code.dirty
    assert files_of(project, code.commit) == {
        "README.md", "train.py", "data/small.csv", "id_rsa.pub", ".env.example",
    }  # fmt: skip
    assert len(messages) == 1
    message = messages[0]
    for named in (
        "myenv/", "conda/", ".venv/", "venv311/", "node_modules/", "src/__pycache__/",
        "notebooks/.ipynb_checkpoints/", ".env ", "config/.env.production", "deploy/server.pem",
        "tls.key", "id_rsa ", "data/generated.csv (10.0 MiB, over the 10.0 MiB limit)",
        "git add", "[tool.mlops-lite.snapshot]", ".gitignore",
    ):  # fmt: skip
        assert named in message, named
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""


def test_the_limits_are_configured_in_pyproject(project: Path) -> None:
    write(
        project,
        "pyproject.toml",
        '[tool.mlops-lite.snapshot]\nmax_file_size = "1 KiB"\n'
        'include = ["data/keep.csv", "tools/node_modules/"]\n',
    )
    write(project, "data/keep.csv", "k" * 5000)
    write(project, "data/drop.csv", "d" * 5000)
    write(project, "data/fits.csv", "f" * 1000)
    write(project, "tools/node_modules/helper.js")
    write(project, "web/node_modules/other.js")
    write(project, ".env", "TOKEN=s3cret\n")

    code, messages = pin(project)

    assert files_of(project, code.commit) == {
        "README.md", "pyproject.toml", "data/keep.csv", "data/fits.csv",
        "tools/node_modules/helper.js",
    }  # fmt: skip
    assert "data/drop.csv (4.9 KiB, over the 1.0 KiB limit)" in messages[0]
    assert "web/node_modules/" in messages[0] and ".env" in messages[0]


def test_a_tracked_secret_file_keeps_the_version_in_your_index(project: Path) -> None:
    write(project, "settings/.env", "TOKEN=old\n")
    git(project, "add", "-f", "settings/.env")
    git(project, "commit", "-qm", "a tracked .env, as happens")
    write(project, "settings/.env", "TOKEN=new-s3cret\n")
    write(project, "train.py")

    code, messages = pin(project)

    assert git(project, "show", f"{code.commit}:settings/.env") == "TOKEN=old"
    assert "train.py" in files_of(project, code.commit)
    assert "settings/.env (a secret file; the version in your index is kept)" in messages[0]


def test_a_tree_whose_only_changes_stay_out_is_pinned_to_head(project: Path) -> None:
    head = git(project, "rev-parse", "HEAD")
    write(project, ".env", "TOKEN=s3cret\n")
    write(project, "__pycache__/x.pyc")

    code, messages = pin(project)

    assert (code.commit, code.dirty) == (head, False)
    assert len(messages) == 1


def test_an_edit_in_the_second_of_the_last_commit_is_in_the_snapshot(project: Path) -> None:
    # A same-size edit in the second git indexed the file: git sees it only
    # through its racy-entry check, which compares with the index file's own
    # mtime, so the snapshot's copy of the index must keep that mtime.
    helper = project / "helper.py"
    for _ in range(5):
        time.sleep(1 - time.time() % 1 + 0.01)  # just past a second boundary
        helper.write_text("SCALE = 3\n")
        git(project, "add", "helper.py")
        git(project, "commit", "-qm", "helper")
        indexed = helper.stat()
        helper.write_text("SCALE = 4\n")
        if int(helper.stat().st_ctime) == int(indexed.st_ctime):
            break
        git(project, "checkout", "-q", "--", "helper.py")  # too slow: try again
    os.utime(helper, ns=(indexed.st_atime_ns, indexed.st_mtime_ns))
    time.sleep(1.1)  # the snapshot copies the index in a later second

    code, _ = pin(project)

    assert code.dirty
    assert git(project, "show", f"{code.commit}:helper.py") == "SCALE = 4"


def test_a_pipeline_run_warns_once_on_the_console(project: Path) -> None:
    write(
        project,
        "run.py",
        "from mlops_lite import pipeline, step\n\n"
        "@step\ndef one() -> int:\n    return 1\n\n"
        "@pipeline\ndef p():\n    one()\n\n"
        "if __name__ == '__main__':\n    p()\n",
    )
    write(project, "venv/pyvenv.cfg")
    completed = run_script(project, "run.py")
    assert completed.stderr.count("left out of this run's code snapshot") == 1
    assert "venv/" in completed.stderr


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True), ("app/.env.local", True), (".env.example", False), ("a/b/key.pem", True),
        ("server.key", True), ("id_ed25519", True), ("id_ed25519.pub", False),
        ("id_mapping.py", False), (".aws/credentials", True), ("home/.ssh/config", True),
        ("credentials.json", True), (".netrc", True), ("keyboard.py", False),
        ("monkey.txt", False), ("src/app.py", False),
    ],
)  # fmt: skip
def test_secret_files_are_recognised_by_name(path: str, secret: bool) -> None:
    assert is_secret_file(path) is secret


@pytest.mark.parametrize(
    ("value", "size"),
    [(1000, 1000), ("10 MiB", 10 * 1024**2), ("50MB", 50 * 1000**2), ("2kb", 2000), (0, 0),
     (False, 0), ("1.5 GiB", int(1.5 * 1024**3))],
)  # fmt: skip
def test_max_file_size_accepts_bytes_and_units(project: Path, value: object, size: int) -> None:
    rendered = f'"{value}"' if isinstance(value, str) else str(value).lower()
    write(project, "pyproject.toml", f"[tool.mlops-lite.snapshot]\nmax_file_size = {rendered}\n")
    assert SnapshotRules.for_project(str(project)).max_file_size == size


@pytest.mark.parametrize(
    "table",
    ['max_file_size = "ten"', "max_file_size = -1", 'include = "data/"', "exclude = []"],
)
def test_wrong_snapshot_settings_are_config_errors(project: Path, table: str) -> None:
    write(project, "pyproject.toml", f"[tool.mlops-lite.snapshot]\n{table}\n")
    with pytest.raises(ConfigError, match=r"tool.mlops-lite.snapshot"):
        SnapshotRules.for_project(str(project))
