"""Secrets never reach a git object: ``mlops_lite.secret()``, redaction, and the snapshot.

The proof is a scan of every object in the repository
(``git cat-file --batch-all-objects --batch``) after runs that print, log,
record as metadata and raise with secrets from each source, on each
orchestrator, from a dirty tree holding secret files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client, pipeline, secret, step
from mlops_lite.errors import ConfigError, SecretNotFoundError, UnrecordableParameterError
from mlops_lite.operations.secrets import parse_env_file
from tests.conftest import git

pytest.importorskip("keyring")

SCRIPT = textwrap.dedent(
    """
    import logging
    import sys
    from mlops_lite import log_metadata, pipeline, secret, step
    from mlops_lite.errors import StepFailedError

    def reveal(name):
        value = secret(name)
        print("printed", value)
        print("repr", repr({"v": value}), file=sys.stderr)
        logging.getLogger("leaky").warning("logged %s", value)
        log_metadata({"value": value, "nested": {value: [value, f"prefix-{value}-suffix"]}})
        return len(value)

    @step
    def from_environment() -> int:
        return reveal("ENV_SECRET")

    @step
    def from_dotenv() -> int:
        return reveal("DOTENV_SECRET")

    @step
    def from_keyring() -> int:
        return reveal("KEYRING_SECRET")

    @step
    def raises() -> int:
        raise RuntimeError(f"cannot connect with {secret('ENV_SECRET')}")

    @pipeline(enable_cache=False)
    def leaky():
        from_environment()
        from_dotenv()
        from_keyring()
        raises()
        log_metadata({"run_level": secret("ENV_SECRET")})

    if __name__ == "__main__":
        try:
            leaky()
        except StepFailedError as error:
            print("FAILED", error.step_name)
    """
)

SECRETS = {
    "ENV_SECRET": "env-value-4b7e19",
    "DOTENV_SECRET": "dotenv-value-c03f5a",
    "KEYRING_SECRET": "keyring-value-8d2a61",
}
SECRET_FILES = {
    ".env": f"# local settings\nexport DOTENV_SECRET='{SECRETS['DOTENV_SECRET']}'\n",
    "deploy.pem": "-----BEGIN PRIVATE KEY-----\npem-file-secret-51ab\n-----END PRIVATE KEY-----\n",
    "keys/id_ed25519": "ssh-file-secret-7e33\n",
    ".aws/credentials": "[default]\naws_secret_access_key = aws-file-secret-0c9d\n",
    "service.key": "key-file-secret-2f81\n",
}
ARGV = [
    "--password",
    "-argv-pass-71c2",
    "--db",
    "postgres://alice:argv-url-pw-93d1@db/x",
    "-H",
    "Authorization: Bearer argv-bearer-55e0",
]
NEVER_STORED = [
    *SECRETS.values(),
    "pem-file-secret-51ab",
    "ssh-file-secret-7e33",
    "aws-file-secret-0c9d",
    "key-file-secret-2f81",
    "argv-pass-71c2",
    "argv-url-pw-93d1",
    "argv-bearer-55e0",
]


def every_object(root: Path) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("orchestrator", ["local", "pool", "dask"])
def test_secrets_from_every_source_reach_no_git_object_on_any_orchestrator(
    project: Path, tmp_path: Path, orchestrator: str
) -> None:
    if orchestrator == "dask":
        pytest.importorskip("distributed")
    (project / "leaky.py").write_text(SCRIPT)
    git(project, "add", "leaky.py")
    git(project, "commit", "-qm", "pipeline")
    for name, content in SECRET_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(content)
    (project / "notes.txt").write_text("an ordinary untracked file\n")
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(json.dumps({"mlops-lite/KEYRING_SECRET": SECRETS["KEYRING_SECRET"]}))
    env = {
        **os.environ,
        "ENV_SECRET": SECRETS["ENV_SECRET"],
        "PYTHON_KEYRING_BACKEND": "tests.integration.fake_keyring.FileKeyring",
        "MLOPS_LITE_TEST_KEYRING": str(keyring_file),
        "MLOPS_LITE_ORCHESTRATOR": orchestrator,
    }
    completed = subprocess.run(
        [sys.executable, "leaky.py", *ARGV],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "FAILED raises" in completed.stdout, completed.stderr
    assert "left out of this run's code snapshot" in completed.stderr

    contents = every_object(project)
    leaked = [value for value in NEVER_STORED if value.encode() in contents]
    assert leaked == []
    assert b"<redacted>" in contents

    with Client(project) as client:
        run = client.get_pipeline("leaky").last_run
        assert run.orchestrator == orchestrator
        for name in ("from_environment", "from_dotenv", "from_keyring"):
            step_run = run.steps[name]
            assert step_run.output.load() > 4  # the secret was really found
            assert "printed <redacted>" in step_run.logs
            assert "logged <redacted>" in step_run.logs
            assert step_run.metadata["value"] == "<redacted>"
            assert step_run.metadata["nested"] == {
                "<redacted>": ["<redacted>", "prefix-<redacted>-suffix"]
            }
        assert "cannot connect with <redacted>" in (run.steps["raises"].error or "")
        assert run.metadata["run_level"] == "<redacted>"
        assert run.record.entry_point["argv"][1:] == [
            "--password",
            "<redacted>",
            "--db",
            "postgres://alice:<redacted>@db/x",
            "-H",
            "Authorization: <redacted>",
        ]
        snapshot = git(project, "ls-tree", "-r", "--name-only", run.code_commit).split()
    assert run.code["dirty"] is True
    assert "notes.txt" in snapshot and "leaky.py" in snapshot
    assert not set(SECRET_FILES) & set(snapshot)


def test_secret_looks_in_the_environment_then_dotenv_then_the_keyring(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text('FROM_FILE="line one\\nline two" # a comment\nEMPTY=\n')
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(json.dumps({"mlops-lite/FROM_KEYRING": "kr-value"}))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.integration.fake_keyring.FileKeyring")
    monkeypatch.setenv("MLOPS_LITE_TEST_KEYRING", str(keyring_file))
    monkeypatch.setenv("FROM_FILE", "the environment wins")
    assert secret("FROM_FILE") == "the environment wins"
    monkeypatch.delenv("FROM_FILE")
    assert secret("FROM_FILE") == "line one\nline two"
    assert secret("FROM_KEYRING") == "kr-value"
    with pytest.raises(SecretNotFoundError) as missing:
        secret("EMPTY")
    message = str(missing.value)
    assert "environment variable EMPTY" in message and ".env" in message
    assert "keyring set mlops-lite EMPTY" in message

    (project / ".env").write_text("FROM_FILE=now tracked\n")
    git(project, "add", "-f", ".env")
    with pytest.raises(ConfigError, match="is tracked by git"):
        secret("FROM_FILE")


def test_a_secret_passed_as_a_parameter_is_refused_before_anything_is_recorded(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_TOKEN", "db-token-31c9d0")

    @step
    def connect(token: str) -> int:
        return len(token)

    @pipeline
    def careless() -> None:
        connect(token=secret("DB_TOKEN"))

    with pytest.raises(UnrecordableParameterError, match="parameter 'token' of step 'connect'"):
        careless()
    assert b"db-token-31c9d0" not in every_object(project)
    with Client(project) as client:
        assert client.list_pipeline_runs() == []


def test_dotenv_files_parse_as_python_dotenv_reads_them() -> None:
    text = (
        "# comment\n"
        "export A=plain value # trailing comment\n"
        "B='single # kept \\n literal'\n"
        'C="double\\tescaped\\n"\n'
        'D="spans\n'
        'two lines"\n'
        "E=a#b\n"
        "not an assignment\n"
        "F = spaced\n"
    )
    assert parse_env_file(text) == {
        "A": "plain value",
        "B": "single # kept \\n literal",
        "C": "double\tescaped\n",
        "D": "spans\ntwo lines",
        "E": "a#b",
        "F": "spaced",
    }
