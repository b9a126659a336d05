"""Trust to unpickle comes from facts a teammate cannot forge: local provenance and signatures.

Each attack is played for real: a teammate (Mallory) records runs in her own
clone, rewrites one as an attacker would, pushes it to the team's bare
remote, and Bob pulls it. Her pickle, if it were ever loaded, would create a
marker file; every test checks that no marker appears.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_lite.core.records import OutputRecord
from mlops_lite.materializers import CloudpickleMaterializer, MsgpackMaterializer
from mlops_lite.store import GitStore
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.layout import (
    STEP_LOGS,
    build_run_commit,
    build_step_tree,
    read_run_commit,
    read_step_entries,
    read_step_record,
)
from mlops_lite.store.objects import Identity
from tests.conftest import git

PIPELINE = textwrap.dedent(
    """
    from mlops_lite import pipeline, step

    class Model:
        def __init__(self, weight):
            self.weight = weight

    @step
    def make() -> Model:
        print("make executed")
        return Model(3)

    @step
    def use(model: Model) -> int:
        return model.weight

    @pipeline
    def trusty():
        use(make())

    if __name__ == "__main__":
        run = trusty()
        print("RUN", run.sha)
    """
)

LOAD_MAKE = textwrap.dedent(
    """
    import sys
    from mlops_lite import Client
    run = Client().get_pipeline_run(sys.argv[1])
    print("WEIGHT", run.steps["make"].output.load().weight)
    """
)


class Person:
    """One teammate: a clone, a git identity and a HOME (with its own git config) of their own."""

    def __init__(self, tmp_path: Path, name: str, email: str | None = None) -> None:
        self.name = name
        self.dir = tmp_path / name
        self.home = tmp_path / f"home-{name}"
        self.home.mkdir()
        email = email or f"{name}@example.com"
        self.env = {
            **os.environ,
            "HOME": str(self.home),
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.dir, env=self.env, check=True, capture_output=True, text=True
        ).stdout.strip()

    def python(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [sys.executable, *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"{args} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed

    def mlops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.python("-m", "mlops_lite", *args)

    def run_pipeline(self, **env: str) -> tuple[str, str]:
        """Run trusty.py; its stdout and the new run's sha."""
        completed = subprocess.run(
            [sys.executable, "trusty.py"],
            cwd=self.dir,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if completed.returncode != 0:
            raise AssertionError(f"trusty.py failed:\n{completed.stdout}\n{completed.stderr}")
        sha = next(line.split()[1] for line in completed.stdout.splitlines() if "RUN" in line)
        return completed.stdout, sha

    def signing_key(self) -> str:
        """An ssh key made with ssh-keygen, set up as this person's git signing key."""
        key = self.home / "signing_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(key)],
            check=True,
        )
        for setting, value in (("gpg.format", "ssh"), ("user.signingKey", str(key))):
            self.git("config", "--global", setting, value)
        return (self.home / "signing_key.pub").read_text().strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """The team's bare remote, holding trusty.py on main (pushed by a first teammate)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "trusty.py").write_text(PIPELINE)
    git(seed, "add", "trusty.py")
    git(seed, "commit", "-qm", "pipeline")
    git(seed, "push", "-q", str(remote), "main")
    return remote


def join(person: Person, remote: Path) -> Person:
    git(remote.parent, "clone", "-q", str(remote), str(person.dir))
    return person


class Touch:
    """Unpickling this creates ``marker``: stands for any code a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def forge_output(person: Person, sha: str, marker: Path, *, record_says_msgpack: bool) -> str:
    """Replace ``make``'s output in run ``sha`` by a code-running pickle; the forged run's sha.

    The artifact's own ``meta`` names cloudpickle (it must, for the pickle to be
    loaded); with ``record_says_msgpack`` the step record and the run's step
    summary claim msgpack and no pickle, and the meta's flag says no pickle too.
    """
    store = GitStore(str(person.dir))
    try:
        ref = person.git("for-each-ref", "--format=%(refname)", "--points-at", sha, "refs/mlops/")
        run = read_run_commit(store.read_object, sha)
        artifact, objects = build_artifact(
            pickle.dumps(Touch(marker)),
            materializer=CloudpickleMaterializer.name,
            materializer_version=CloudpickleMaterializer.version,
            type_name="trusty.Model",
            uses_pickle=not record_says_msgpack,
        )
        claimed = MsgpackMaterializer if record_says_msgpack else CloudpickleMaterializer
        output = OutputRecord(
            artifact_id=artifact.id,  # type: ignore[arg-type]
            materializer=claimed.name,
            materializer_version=claimed.version,
            type_name="trusty.Model",
            size=len(pickle.dumps(Touch(marker))),
            uses_pickle=not record_says_msgpack,
        )
        step_tree = run.steps["make"]
        step = read_step_record(store.read_object, step_tree, where="make")
        step.outputs["output"] = output
        logs = read_step_entries(store.read_object, step_tree).get(STEP_LOGS)
        text = store.read_object(logs[1]).decode() if logs else ""
        new_step, step_objects = build_step_tree(step, text, {"output": artifact.id})  # type: ignore[dict-item]
        record = run.record
        record.step_summary["make"].outputs["output"] = output
        author = Identity(record.author["name"], record.author["email"])
        steps = {**run.steps, "make": new_step.id}
        final, run_objects = build_run_commit(author, record, steps, run.code_commit)  # type: ignore[arg-type]
        store.write_objects([*objects, *step_objects, *run_objects])
    finally:
        store.close()
    person.git("update-ref", ref, final.id, sha)
    return final.id


def share_forged_run(
    tmp_path: Path, remote: Path, *, record_says_msgpack: bool, claim_bobs_email: bool
) -> tuple[Person, str, Path]:
    """Mallory records a run, forges it, pushes it; Bob pulls. Bob, the forged sha, the marker."""
    marker = tmp_path / "PWNED"
    mallory = join(
        Person(tmp_path, "mallory", "bob@example.com" if claim_bobs_email else None), remote
    )
    _, sha = mallory.run_pipeline()
    forged = forge_output(mallory, sha, marker, record_says_msgpack=record_says_msgpack)
    mallory.mlops("push", "--quiet")
    bob = join(Person(tmp_path, "bob"), remote)
    bob.mlops("pull", "--quiet")
    assert forged in bob.mlops("runs", "list", "--json").stdout
    return bob, forged, marker


ATTACKS = {
    "record-says-msgpack-meta-says-cloudpickle": {
        "record_says_msgpack": True,
        "claim_bobs_email": False,
    },
    "run-claims-your-email": {"record_says_msgpack": False, "claim_bobs_email": True},
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forged_teammate_pickle_runs_no_code_on_load_cache_hit_or_pool_worker(
    tmp_path: Path, remote: Path, attack: str
) -> None:
    bob, forged, marker = share_forged_run(tmp_path, remote, **ATTACKS[attack])

    (bob.dir / "load_make.py").write_text(LOAD_MAKE)
    refused = bob.python("load_make.py", forged, check=False)
    assert refused.returncode != 0 and "UntrustedPickleError" in refused.stderr
    assert "allowed_signers" in refused.stderr and "MLOPS_LITE_TRUST_PICKLE=1" in refused.stderr
    assert not marker.exists()

    # On the pool, the forged run is no cache hit: `make` runs in a worker, and
    # `use` receives Bob's own value.
    stdout, pooled = bob.run_pipeline(MLOPS_LITE_ORCHESTRATOR="pool")
    assert "make executed" in stdout
    assert not marker.exists()

    # Locally, the earliest hit (the forged one) is passed over for Bob's own run.
    stdout, local = bob.run_pipeline()
    assert "make executed" not in stdout
    assert not marker.exists()
    shown = json.loads(bob.mlops("runs", "show", local, "--json").stdout)
    pooled_name = json.loads(bob.mlops("runs", "show", pooled, "--json").stdout)["name"]
    assert shown["steps"]["make"]["cached_from"]["run"] == pooled_name
    assert shown["steps"]["use"]["outputs"]["output"]["uses_pickle"] is False

    # The truth about the forged artifact comes from its meta, not from the record.
    check = (
        "import sys; from mlops_lite import Client; "
        "print(Client().get_pipeline_run(sys.argv[1]).steps['make'].output.uses_pickle)"
    )
    assert bob.python("-c", check, forged).stdout.strip() == "True"
    assert not marker.exists()


def test_runs_recorded_by_this_clone_are_trusted_until_provenance_is_lost(
    tmp_path: Path, remote: Path
) -> None:
    bob = join(Person(tmp_path, "bob"), remote)
    (bob.dir / "load_make.py").write_text(LOAD_MAKE)
    _, sha = bob.run_pipeline()
    assert "WEIGHT 3" in bob.python("load_make.py", sha).stdout

    provenance = bob.dir / ".git" / "mlops-lite" / "provenance"
    assert sha in provenance.read_text().split()
    provenance.unlink()
    # Rebuilding the derived index changes nothing: trust is not derived from refs.
    (bob.dir / ".git" / "mlops-lite" / "index.sqlite3").unlink()
    refused = bob.python("load_make.py", sha, check=False)
    assert "UntrustedPickleError" in refused.stderr and "not recorded by this clone" in (
        refused.stderr
    )
    stdout, _ = bob.run_pipeline()
    assert "make executed" in stdout  # its own old pickle is no longer a usable hit

    env_trust = {**bob.env, "MLOPS_LITE_TRUST_PICKLE": "1"}
    loaded = subprocess.run(
        [sys.executable, "load_make.py", sha], cwd=bob.dir, env=env_trust,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "WEIGHT 3" in loaded.stdout


def test_an_email_list_in_the_environment_trusts_nobody(tmp_path: Path, remote: Path) -> None:
    alice = join(Person(tmp_path, "alice"), remote)
    _, sha = alice.run_pipeline()
    alice.mlops("push", "--quiet")
    bob = join(Person(tmp_path, "bob"), remote)
    bob.mlops("pull", "--quiet")
    (bob.dir / "load_make.py").write_text(LOAD_MAKE)
    bob.env["MLOPS_LITE_TRUST_PICKLE"] = "alice@example.com"
    refused = bob.python("load_make.py", sha, check=False)
    assert "UntrustedPickleError" in refused.stderr
    assert "not e-mails" in refused.stderr


def test_signed_runs_are_trusted_through_the_allowed_signers_file_of_your_checkout(
    tmp_path: Path, remote: Path
) -> None:
    marker = tmp_path / "PWNED"
    alice = join(Person(tmp_path, "alice"), remote)
    alice_key = alice.signing_key()
    alice.git("config", "--global", "mlops-lite.signRuns", "true")
    (alice.dir / ".mlops-lite").mkdir()
    (alice.dir / ".mlops-lite" / "allowed_signers").write_text(f"alice@example.com {alice_key}\n")
    alice.git("add", ".mlops-lite/allowed_signers")
    alice.git("commit", "-qm", "trust alice's signing key")
    alice.git("push", "-q", "origin", "main")
    _, signed = alice.run_pipeline()
    assert "gpgsig" in alice.git("cat-file", "-p", signed)
    alice.mlops("push", "--quiet")

    # Mallory signs too, with a key she adds to the allowed signers of her own
    # code commit: the run carries that file, Bob's checkout does not.
    mallory = join(Person(tmp_path, "mallory"), remote)
    mallory_key = mallory.signing_key()
    with (mallory.dir / ".mlops-lite" / "allowed_signers").open("a") as signers:
        signers.write(f"mallory@example.com {mallory_key}\n")
    mallory.git("commit", "-qam", "trust me")
    _, mallory_sha = mallory.run_pipeline(MLOPS_LITE_SIGN_RUNS="1")
    forged = forge_output(mallory, mallory_sha, marker, record_says_msgpack=False)
    # Her forged run is signed by her, for real, after the rewrite.
    signed_forgery = subprocess.run(
        ["git", "commit-tree", "-S", f"{forged}^{{tree}}", "-p", f"{forged}^1"],
        cwd=mallory.dir, env=mallory.env, input="mlops-lite run\n",
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ref = mallory.git("for-each-ref", "--format=%(refname)", "--points-at", forged, "refs/mlops/")
    mallory.git("update-ref", ref, signed_forgery, forged)
    mallory.mlops("push", "--quiet")

    bob = join(Person(tmp_path, "bob"), remote)
    bob.mlops("pull", "--quiet")
    (bob.dir / "load_make.py").write_text(LOAD_MAKE)
    assert "WEIGHT 3" in bob.python("load_make.py", signed).stdout
    stdout, _ = bob.run_pipeline()
    assert "make executed" not in stdout  # Alice's signed pickle is a cache hit

    refused = bob.python("load_make.py", signed_forgery, check=False)
    assert "UntrustedPickleError" in refused.stderr
    assert not marker.exists()

    # Trusting a key is a line in Bob's checkout: without it, Alice is a stranger.
    (bob.dir / ".mlops-lite" / "allowed_signers").write_text("")
    refused = bob.python("load_make.py", signed, check=False)
    assert "UntrustedPickleError" in refused.stderr


def test_signing_is_opt_in_and_an_unsigned_commit_is_what_git_would_write(
    tmp_path: Path, remote: Path
) -> None:
    alice = join(Person(tmp_path, "alice"), remote)
    _, unsigned = alice.run_pipeline()
    body = subprocess.run(
        ["git", "cat-file", "commit", unsigned], cwd=alice.dir, capture_output=True, text=True
    ).stdout
    assert "gpgsig" not in body
    # git commit-tree, given the same tree, parent, identity and date, writes
    # the very commit mlops_lite wrote: signing changes nothing but the header.
    headers, _, message = body.partition("\n\n")
    fields = dict(line.split(" ", 1) for line in headers.splitlines())
    name, _, rest = fields["author"].partition(" <")
    email, _, date = rest.partition("> ")
    env = {
        **alice.env,
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": f"@{date}",
        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": f"@{date}",
    }  # fmt: skip
    again = subprocess.run(
        ["git", "commit-tree", fields["tree"], "-p", fields["parent"]],
        cwd=alice.dir, env=env, input=message, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert again == unsigned

    # Asked to sign without a signing key, the run is recorded unsigned, with a warning.
    unsigned_again = subprocess.run(
        [sys.executable, "trusty.py"],
        cwd=alice.dir,
        env={**alice.env, "MLOPS_LITE_SIGN_RUNS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "recorded unsigned" in unsigned_again.stderr
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=alice.dir, check=True)


@pytest.fixture
def gnupg_homes() -> Iterator[Callable[[], str]]:
    """Short-pathed gpg homes (agent sockets have a length limit), their agents stopped after."""
    homes: list[str] = []

    def new_home() -> str:
        home = tempfile.mkdtemp(prefix="gpg-")
        homes.append(home)
        return home

    yield new_home
    for home in homes:
        subprocess.run(
            ["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": home}, check=False
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")
def test_gpg_signed_runs_are_trusted_for_keys_your_keyring_trusts_fully(
    tmp_path: Path, remote: Path, gnupg_homes: Callable[[], str]
) -> None:
    alice = join(Person(tmp_path, "alice"), remote)
    alice.env["GNUPGHOME"] = gnupg_homes()
    gpg = ["gpg", "--batch", "--quiet", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--quick-gen-key", "alice <alice@example.com>", "ed25519", "sign", "never"],
        env=alice.env, check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--list-keys", "--with-colons"], env=alice.env, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    alice.git("config", "--global", "user.signingKey", fingerprint)
    _, signed = alice.run_pipeline(MLOPS_LITE_SIGN_RUNS="1")
    assert "BEGIN PGP SIGNATURE" in alice.git("cat-file", "commit", signed)
    alice.mlops("push", "--quiet")
    public_key = subprocess.run(
        ["gpg", "--export", "--armor", fingerprint], env=alice.env, check=True,
        capture_output=True,
    ).stdout  # fmt: skip

    bob = join(Person(tmp_path, "bob"), remote)
    bob.env["GNUPGHOME"] = gnupg_homes()
    bob.mlops("pull", "--quiet")
    (bob.dir / "load_make.py").write_text(LOAD_MAKE)
    subprocess.run([*gpg, "--import"], input=public_key, env=bob.env, check=True)
    # A key in the keyring is not a trusted key: importing it proves nothing.
    refused = bob.python("load_make.py", signed, check=False)
    assert "UntrustedPickleError" in refused.stderr
    subprocess.run(
        ["gpg", "--batch", "--import-ownertrust"], input=f"{fingerprint}:6:\n".encode(),
        env=bob.env, check=True, capture_output=True,
    )  # fmt: skip
    assert "WEIGHT 3" in bob.python("load_make.py", signed).stdout
