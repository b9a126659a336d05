"""Push and pull of runs through real remotes: path, file://, git://, ssh://, scp-like, http://."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from pathlib import Path

import pytest
from remotes import (
    HttpServer,
    RemoteServer,
    SshServer,
    git,
    git_daemon,
    http_auth_server,
    http_server,
    isolated_git,
    local_base,
    make_bare,
    remote_server,
    sshd,
)

from mlops_lite.cli import main as cli_main
from mlops_lite.errors import (
    AuthenticationError,
    ProjectNotFoundError,
    RemoteError,
    RemoteRejectedError,
    RemoteUnreachableError,
)
from mlops_lite.operations import sharing
from mlops_lite.operations.sharing import TransportChoice

# The server fixtures must be names in this module for pytest to find them.
__all__ = [
    "git_daemon",
    "http_auth_server",
    "http_server",
    "isolated_git",
    "local_base",
    "remote_server",
    "sshd",
]

pytestmark = pytest.mark.usefixtures("isolated_git")

IMPLEMENTATIONS: tuple[TransportChoice, ...] = ("git", "dulwich")


# --- building runs with plain git plumbing (the run-recording core is tested elsewhere) ---


def make_project(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "code")
    return path


def code_commit(root: Path, text: str) -> str:
    (root / "train.py").write_text(text)
    git(root, "commit", "-q", "-am", f"code: {text[:20]}")
    return git(root, "rev-parse", "HEAD")


def _blob(root: Path, content: str) -> str:
    return subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=root, input=content,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _tree(root: Path, entries: dict[str, tuple[str, str]]) -> str:
    listing = "".join(f"{mode} {kind} {sha}\t{name}\n" for name, (mode, kind, sha) in sorted(
        ((name, (("040000", "tree") if kind == "tree" else ("100644", "blob")) + (sha,))
         for name, (kind, sha) in entries.items())
    ))  # fmt: skip
    return subprocess.run(
        ["git", "mktree"], cwd=root, input=listing, capture_output=True, text=True, check=True
    ).stdout.strip()


def record_run(
    root: Path, pipeline: str, name: str, *, parent: str = "HEAD", seed: str = ""
) -> str:
    """A run commit shaped like mlops_lite's: first parent the code commit, steps as subtrees."""
    steps = {
        step: ("tree", _tree(root, {
            "record": ("blob", _blob(root, f"{pipeline}/{name}/{step}/record")),
            "output": ("blob", _blob(root, f"{step} output {seed}")),
        }))
        for step in ("load", "train")
    }  # fmt: skip
    tree = _tree(
        root, {"run": ("blob", _blob(root, f"run {name}")), "steps": ("tree", _tree(root, steps))}
    )
    commit = git(root, "commit-tree", "-p", parent, "-m", f"run {pipeline}/{name}", tree)
    git(root, "update-ref", f"refs/mlops/runs/{pipeline}/{name}", commit)
    return commit


def mlops_refs(root: Path) -> dict[str, str]:
    lines = git(
        root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/mlops/"
    ).splitlines()
    return dict(line.split(" ") for line in lines)


def object_count(root: Path) -> int:
    stats = dict(line.split(": ") for line in git(root, "count-objects", "-v").splitlines())
    return int(stats["count"]) + int(stats["in-pack"])


def fsck(bare: Path) -> None:
    git(bare, "fsck", "--strict", "--no-dangling")


# --- every protocol, both implementations ---------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_push_then_pull_brings_runs_and_the_unpushed_code_commit(
    remote_server: RemoteServer, implementation: TransportChoice, tmp_path: Path
) -> None:
    bare, url = remote_server.new_repository(f"roundtrip-{implementation}-{tmp_path.name}")
    project = make_project(tmp_path / "project")
    git(project, "push", "-q", str(bare), "main")  # teammates share the branch, not the wip
    pinned = code_commit(project, "print('tuned')\n")  # never pushed as a branch
    runs = {
        "refs/mlops/runs/train/20240101-a": record_run(project, "train", "20240101-a", seed="a"),
        "refs/mlops/runs/train/20240101-b": record_run(project, "train", "20240101-b", seed="b"),
    }

    pushed = sharing.push(url, path=project, transport=implementation)

    assert sorted(pushed.created) == sorted(runs)
    assert pushed.runs == 2 and pushed.transport == implementation
    assert mlops_refs(bare) == runs
    fsck(bare)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    assert mlops_refs(clone) == {}  # a plain clone brings no runs
    (clone / "sub").mkdir()
    pulled = sharing.pull(url, path=clone / "sub", transport=implementation)

    assert sorted(pulled.created) == sorted(runs)
    assert mlops_refs(clone) == runs
    git(clone, "cat-file", "-e", f"{pinned}^{{commit}}")
    assert (
        git(
            clone,
            "cat-file",
            "-p",
            f"{runs['refs/mlops/runs/train/20240101-b']}:steps/train/output",
        )
        == "train output b"
    )
    again = sharing.pull(url, path=clone, transport=implementation)
    assert again.created == [] and sorted(again.unchanged) == sorted(runs)
    assert again.transferred_objects == 0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_only_the_new_runs_objects_travel_both_ways(
    implementation: TransportChoice, tmp_path: Path
) -> None:
    bare = make_bare(tmp_path / "team.git")
    project = make_project(tmp_path / "project")
    old = [record_run(project, "train", f"r{i}", seed=str(i)) for i in range(3)]
    sharing.push(str(bare), path=project, transport=implementation)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    sharing.pull(str(bare), path=clone, transport=implementation)

    new = record_run(project, "train", "r9", seed="new")
    expected = len(git(project, "rev-list", "--objects", new, "--not", *old).splitlines())
    everything = len(git(project, "rev-list", "--objects", new).splitlines())
    assert 0 < expected < everything  # the code commit, its tree and blobs are there already

    pushed = sharing.push(str(bare), path=project, transport=implementation)
    assert pushed.created == ["refs/mlops/runs/train/r9"] and len(pushed.unchanged) == 3
    assert pushed.transferred_objects == expected

    before = object_count(clone)
    pulled = sharing.pull(str(bare), path=clone, transport=implementation)
    assert pulled.created == ["refs/mlops/runs/train/r9"]
    assert object_count(clone) - before == expected
    fsck(bare)


# --- plain git interop and `remote setup` -----------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_plain_git_push_and_fetch_of_the_refspec_interoperate(
    implementation: TransportChoice, tmp_path: Path
) -> None:
    bare = make_bare(tmp_path / "team.git")
    alice = make_project(tmp_path / "alice")
    by_git = record_run(alice, "train", "by-plain-git")
    git(alice, "push", "-q", str(bare), "refs/mlops/*:refs/mlops/*")
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(bare), str(bob))

    assert sharing.pull(str(bare), path=bob, transport=implementation).created == [
        "refs/mlops/runs/train/by-plain-git"
    ]
    by_us = record_run(bob, "train", "by-mlops-lite", parent=by_git)
    sharing.push(str(bare), path=bob, transport=implementation)
    git(alice, "fetch", "-q", str(bare), "refs/mlops/*:refs/mlops/*")
    assert mlops_refs(alice)["refs/mlops/runs/train/by-mlops-lite"] == by_us
    fsck(bare)


def test_remote_setup_is_idempotent_and_plain_fetch_brings_runs_but_plain_push_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = make_bare(tmp_path / "team.git")
    alice = make_project(tmp_path / "alice")
    git(alice, "push", "-q", str(bare), "main")
    run = record_run(alice, "train", "shared")
    sharing.push(str(bare), path=alice)
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(bare), str(bob))

    assert sharing.setup_remote("origin", path=bob) is True
    monkeypatch.chdir(bob)
    assert cli_main(["remote", "setup"]) == 0
    assert "already had" in capsys.readouterr().out
    fetch_lines = git(bob, "config", "--get-all", "remote.origin.fetch").splitlines()
    assert fetch_lines == ["+refs/heads/*:refs/remotes/origin/*", "refs/mlops/*:refs/mlops/*"]

    git(bob, "fetch", "-q")
    assert mlops_refs(bob) == {"refs/mlops/runs/train/shared": run}

    record_run(bob, "train", "bobs-own")
    code_commit(bob, "print('bob')\n")
    git(bob, "push", "-q")  # the default push: the branch only
    assert set(mlops_refs(bare)) == {"refs/mlops/runs/train/shared"}
    assert git(bare, "rev-parse", "main") == git(bob, "rev-parse", "main")


def test_setup_remote_of_an_unknown_remote_says_how_to_add_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    with pytest.raises(Exception, match="git remote add"):
        sharing.setup_remote("team", path=project)


# --- never forcing, never losing ---------------------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_diverged_shared_ref_is_rejected_on_push_and_kept_on_pull(
    implementation: TransportChoice, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stage = "refs/mlops/stages/model/production"
    bare = make_bare(tmp_path / "team.git")
    alice = make_project(tmp_path / "alice")
    git(alice, "push", "-q", str(bare), "main")
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(bare), str(bob))
    theirs = record_run(alice, "train", "alice-1")
    git(alice, "update-ref", stage, theirs)
    sharing.push(str(bare), path=alice, transport=implementation)

    ours = record_run(bob, "train", "bob-1")
    git(bob, "update-ref", stage, ours)
    with pytest.raises(RemoteRejectedError, match="nothing was forced") as caught:
        sharing.push(str(bare), path=bob, transport=implementation)
    assert caught.value.exit_code == 3  # type: ignore[attr-defined]
    assert stage in str(caught.value) and stage in caught.value.result.rejected  # type: ignore[attr-defined]
    assert git(bare, "rev-parse", stage) == theirs  # not forced
    assert git(bare, "rev-parse", "refs/mlops/runs/train/bob-1") == ours  # the rest went through

    with caplog.at_level(logging.WARNING, logger="mlops_lite.operations.sharing"):
        pulled = sharing.pull(str(bare), path=bob, transport=implementation)
    assert list(pulled.rejected) == [stage] and pulled.created == ["refs/mlops/runs/train/alice-1"]
    assert git(bob, "rev-parse", stage) == ours
    assert "kept local refs/mlops/stages/model/production" in caplog.text

    # Moving forward from their value is an ordinary update.
    forward = record_run(bob, "train", "bob-2", parent=theirs)
    git(bob, "update-ref", stage, forward)
    pushed = sharing.push(str(bare), path=bob, transport=implementation)
    assert pushed.updated == [stage] and git(bare, "rev-parse", stage) == forward
    fsck(bare)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_pull_never_deletes_local_runs_even_with_fetch_prune(
    implementation: TransportChoice, tmp_path: Path
) -> None:
    bare = make_bare(tmp_path / "team.git")
    project = make_project(tmp_path / "project")
    git(project, "remote", "add", "origin", str(bare))
    git(project, "config", "fetch.prune", "true")
    local = record_run(project, "train", "local-only")
    sharing.pull("origin", path=project, transport=implementation)
    assert mlops_refs(project) == {"refs/mlops/runs/train/local-only": local}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_pull_never_moves_an_existing_run_ref_not_even_forward(
    implementation: TransportChoice, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = "refs/mlops/runs/train/r1"
    bare = make_bare(tmp_path / "team.git")
    alice = make_project(tmp_path / "alice")
    run = record_run(alice, "train", "r1")
    sharing.push(str(bare), path=alice, transport=implementation)
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(bare), str(bob))
    sharing.pull(str(bare), path=bob, transport=implementation)
    # Someone makes the shared run ref a fast-forward to a commit of their own.
    crafted = git(alice, "commit-tree", "-p", run, "-m", "not the run", f"{run}^{{tree}}")
    git(alice, "update-ref", ref, crafted)
    git(alice, "push", "-q", str(bare), f"{ref}:{ref}")
    new_run = record_run(alice, "train", "r2")
    git(alice, "push", "-q", str(bare), "refs/mlops/runs/train/r2:refs/mlops/runs/train/r2")

    with caplog.at_level(logging.WARNING, logger="mlops_lite.operations.sharing"):
        pulled = sharing.pull(str(bare), path=bob, transport=implementation)
    assert git(bob, "rev-parse", ref) == run
    assert "never overwritten" in pulled.rejected[ref]
    assert pulled.created == ["refs/mlops/runs/train/r2"]
    assert git(bob, "rev-parse", "refs/mlops/runs/train/r2") == new_run
    assert f"kept local {ref}" in caplog.text


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_ref_names_a_remote_should_not_have_are_refused_cleanly(
    implementation: TransportChoice, tmp_path: Path
) -> None:
    bare = make_bare(tmp_path / "team.git")
    alice = make_project(tmp_path / "alice")
    git(alice, "push", "-q", str(bare), "main")
    run = record_run(alice, "train", "r1")
    sharing.push(str(bare), path=alice, transport=implementation)
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(bare), str(bob))
    main = git(bob, "rev-parse", "main")
    too_long = "refs/mlops/runs/train/" + "x" * 300
    with (bare / "packed-refs").open("a") as packed:
        packed.write(f"{run} {too_long}\n")

    pulled = sharing.pull(str(bare), path=bob, transport=implementation)
    assert pulled.created == ["refs/mlops/runs/train/r1"]
    assert "not a valid" in pulled.rejected[too_long]
    assert mlops_refs(bob) == {"refs/mlops/runs/train/r1": run}

    # A name that would escape refs/mlops/ if it became a path.
    with (bare / "packed-refs").open("a") as packed:
        packed.write(f"{run} refs/mlops/runs/../../heads/evil\n")
    try:
        pulled = sharing.pull(str(bare), path=bob, transport=implementation)
    except RemoteError as error:  # git's own server refuses to list a dangerous name
        assert "\n" not in str(error)
    else:
        assert "not a valid" in pulled.rejected["refs/mlops/runs/../../heads/evil"]
    assert not (bob / ".git" / "refs" / "heads" / "evil").exists()
    assert git(bob, "rev-parse", "main") == main
    fsck(bob)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_push_refused_by_a_hook_leaves_the_remote_unchanged(
    git_daemon: RemoteServer, implementation: TransportChoice, tmp_path: Path
) -> None:
    bare, url = git_daemon.new_repository(f"hooked-{implementation}")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'runs are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    project = make_project(tmp_path / "project")
    record_run(project, "train", "r1")
    with pytest.raises(RemoteRejectedError):
        sharing.push(url, path=project, transport=implementation)
    assert mlops_refs(bare) == {}
    fsck(bare)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", ["path", "git"])
def test_three_clones_pushing_at_once_lose_no_run(
    kind: str, implementation: TransportChoice, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "git":
        daemon: RemoteServer = request.getfixturevalue("git_daemon")
        bare, url = daemon.new_repository(f"concurrent-{implementation}-{tmp_path.name}")
    else:
        bare = make_bare(tmp_path / "team.git")
        url = str(bare)
    clones, expected = [], {}
    for who in ("ann", "ben", "cat"):
        clone = make_project(tmp_path / who)
        for i in range(4):
            ref = f"refs/mlops/runs/train/{who}-{i}"
            expected[ref] = record_run(clone, "train", f"{who}-{i}", seed=who)
        clones.append(clone)
    barrier, errors = threading.Barrier(3), []

    def push(clone: Path) -> None:
        barrier.wait()
        try:
            sharing.push(url, path=clone, transport=implementation)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=push, args=(clone,)) for clone in clones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert mlops_refs(bare) == expected
    fsck(bare)


# --- errors and the CLI -------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, cwd: Path, *args: str) -> int:
    monkeypatch.chdir(cwd)
    return cli_main(list(args))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_cli_exit_codes_tell_unreachable_refused_credentials_and_rejection_apart(
    implementation: TransportChoice,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    http_auth_server: HttpServer,
    sshd: SshServer,
) -> None:
    project = make_project(tmp_path / "project")
    record_run(project, "train", "r1")
    transport = ("--transport", implementation)

    for unreachable in (
        str(tmp_path / "missing.git"),
        "git://127.0.0.1:9/none.git",
        "nosuchremote",
    ):
        assert run_cli(monkeypatch, project, "push", unreachable, *transport) == 4
        error = capsys.readouterr().err
        assert error.startswith("mlops-lite: error: push to") and "cannot be reached" in error
        assert len(error.strip().splitlines()) == 1

    http_auth_server.server.new_repository(f"private-{implementation}")
    private = f"private-{implementation}.git"
    assert (
        run_cli(monkeypatch, project, "push", http_auth_server.server.url(private), *transport) == 5
    )
    assert "refused our credentials" in capsys.readouterr().err
    wrong = http_auth_server.url_with_credentials(private, password="wrong")
    assert run_cli(monkeypatch, project, "pull", wrong, *transport) == 5
    right = http_auth_server.url_with_credentials(private)
    assert run_cli(monkeypatch, project, "push", right, "--json", *transport) == 0
    assert json.loads(capsys.readouterr().out)["created"] == ["refs/mlops/runs/train/r1"]

    _, ssh_url = sshd.server.new_repository(f"ssh-auth-{implementation}")
    monkeypatch.setenv("GIT_SSH_COMMAND", sshd.ssh_command(sshd.stranger_key()))
    assert run_cli(monkeypatch, project, "push", ssh_url, *transport) == 5
    assert "refused our credentials" in capsys.readouterr().err

    bare = make_bare(tmp_path / "team.git")
    other = record_run(project, "train", "same-name-elsewhere")
    git(project, "push", "-q", str(bare), f"{other}:refs/mlops/runs/train/r1")
    assert run_cli(monkeypatch, project, "push", str(bare), *transport) == 3
    assert "rejected 1 ref(s)" in capsys.readouterr().err
    assert git(bare, "rev-parse", "refs/mlops/runs/train/r1") == other


def test_cli_push_prints_a_one_line_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = make_bare(tmp_path / "team.git")
    project = make_project(tmp_path / "project")
    git(project, "remote", "add", "origin", str(bare))
    for i in range(3):
        record_run(project, "train", f"r{i}")
    assert run_cli(monkeypatch, project, "push", "--quiet") == 0
    out = capsys.readouterr().out
    assert out.startswith("pushed 3 runs to origin (git, ") and out.count("\n") == 1


def test_push_outside_a_repository_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match="git init"):
        sharing.push("origin", path=tmp_path)


def test_library_errors_carry_the_cli_exit_codes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    record_run(project, "train", "r1")
    for implementation in IMPLEMENTATIONS:
        with pytest.raises(RemoteUnreachableError) as caught:
            sharing.pull(str(tmp_path / "nowhere"), path=project, transport=implementation)
        assert caught.value.exit_code == sharing.EXIT_UNREACHABLE == 4  # type: ignore[attr-defined]
    assert issubclass(AuthenticationError, RemoteError)


def test_auto_falls_back_to_dulwich_without_the_git_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = make_bare(tmp_path / "team.git")
    project = make_project(tmp_path / "project")
    record_run(project, "train", "r1")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(RemoteError, match="git CLI is not on PATH"):
        sharing.push(str(bare), path=project, transport="git")
    result = sharing.push(str(bare), path=project)
    assert result.transport == "dulwich" and result.created == ["refs/mlops/runs/train/r1"]
