"""Two teammates, one file:// remote: model and artifact versions made offline stay unique.

Alice and Bob each train offline, both making "version 2" of the same model and
both promoting it. Alice pushes first. Bob's push is refused (nothing is forced);
his pull merges: Alice's version 2 keeps its number, his becomes version 3, and
both promotions are in the stage history. After Bob pushes and Alice pulls, both
clones read the same registry. The merge starts from the value the pull was
planned from, and a remote chain that cannot be read stays refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from uuid import uuid4

import pytest

from mlops_lite import Client
from mlops_lite.operations.registry_sync import merge_diverged_registries
from mlops_lite.store import GitStore
from mlops_lite.store.objects import blob
from mlops_lite.store.registry import append_events, is_ancestor, new_event, registry_ref
from mlops_lite.store.transport.result import TransferResult
from tests.conftest import git
from tests.integration.test_team import alice_shares, as_user

TRAINING = textwrap.dedent(
    """
    import sys
    from typing import Annotated
    from mlops_lite import ArtifactConfig, Model, get_step_context, pipeline, step

    @step(enable_cache=False)
    def train(weight: float) -> Annotated[dict, ArtifactConfig(name="classifier")]:
        get_step_context().model.set_stage("production", force=True)
        return {"weight": weight}

    @pipeline(model=Model(name="churn"))
    def training(weight: float = 1.0):
        train(weight=weight)

    if __name__ == "__main__":
        print("RUN", training(weight=float(sys.argv[1])).name)
    """
)


def run(
    cwd: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"{args} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed


def registry(cwd: Path) -> dict[str, object]:
    with Client(cwd) as client:
        versions = client.list_model_versions("churn")
        return {
            "versions": [(v.number, v.author, v.stage) for v in versions],
            "ids": [str(v.id) for v in versions],
            "history": [(c["version"], c["author"], c["archived"]) for c in
                        client.get_model("churn").stage_history],
            "classifier": [(v.version, v.author, v.load(trust_pickle=False)) for v in
                           client.list_artifact_versions("classifier")],
        }  # fmt: skip


@pytest.mark.parametrize("transport", ["git", "dulwich"])
def test_versions_made_offline_by_two_clones_stay_unique_after_push_and_pull(
    tmp_path: Path, transport: str
) -> None:
    remote, alice_dir = alice_shares(tmp_path, "train.py", TRAINING)
    url = remote.resolve().as_uri()  # file://: git's own transport, not a local path copy
    git(alice_dir, "remote", "set-url", "origin", url)
    alice, bob = as_user("alice"), as_user("bob")
    mlops = ["-m", "mlops_lite"]
    run(alice_dir, alice, "train.py", "1")  # version 1, shared by both
    run(alice_dir, alice, *mlops, "push", "--transport", transport, "--quiet")
    bob_dir = tmp_path / "bob"
    git(tmp_path, "clone", "-q", url, str(bob_dir))
    run(bob_dir, bob, *mlops, "pull", "--transport", transport, "--quiet")

    # Offline, each makes "version 2" and promotes it.
    run(alice_dir, alice, "train.py", "2")
    run(bob_dir, bob, "train.py", "3")
    run(alice_dir, alice, *mlops, "push", "--transport", transport, "--quiet")
    refused = run(bob_dir, bob, *mlops, "push", "--transport", transport, "--quiet", check=False)
    assert refused.returncode == 3 and "refs/mlops/models/churn" in refused.stderr

    pulled = run(bob_dir, bob, *mlops, "pull", "--transport", transport, "--json")
    result = json.loads(pulled.stdout)
    assert set(result["merged"]) == {"refs/mlops/models/churn", "refs/mlops/artifacts/classifier"}
    assert result["rejected"] == {}
    assert "model 'churn': your version 2 (run " in pulled.stderr
    assert "is now version 3: a teammate's version 2 reached the remote first" in pulled.stderr
    assert "replaced version 2, which a teammate had put there" in pulled.stderr
    run(bob_dir, bob, *mlops, "push", "--transport", transport, "--quiet")
    run(alice_dir, alice, *mlops, "pull", "--transport", transport, "--quiet")

    seen_by_alice, seen_by_bob = registry(alice_dir), registry(bob_dir)
    assert seen_by_alice == seen_by_bob
    assert seen_by_bob["versions"] == [
        (1, "alice@example.com", "archived"),
        (2, "alice@example.com", "archived"),
        (3, "bob@example.com", "production"),
    ]
    # Both promotions are kept: Alice's took production from 1, Bob's from Alice's 2.
    assert seen_by_bob["history"] == [
        ("1", "alice@example.com", None),
        ("2", "alice@example.com", "1"),
        ("3", "bob@example.com", "2"),
    ]
    assert seen_by_bob["classifier"] == [
        ("1", "alice@example.com", {"weight": 1.0}),
        ("2", "alice@example.com", {"weight": 2.0}),
        ("3", "bob@example.com", {"weight": 3.0}),
    ]
    for clone in (alice_dir, bob_dir, remote):
        subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=clone, check=True)
    assert git(remote, "rev-parse", "refs/mlops/models/churn") == git(
        alice_dir, "rev-parse", "refs/mlops/models/churn"
    )


def _diverged_registry(store: GitStore) -> tuple[str, str, str]:
    """``(ref, ours, theirs)``: a model registry forked into two heads, ours at the ref."""
    ref = registry_ref("model", "churn")

    def new_version() -> str:
        append_events(
            store, "model", "churn", [new_event(store, "create_version", version_id=uuid4().hex)]
        )
        head = store.refs.read(ref)
        assert head is not None
        return head

    base = new_version()
    theirs = new_version()
    store.refs.compare_and_swap(ref, theirs, base)
    return ref, new_version(), theirs


def _refused(ref: str, theirs: str) -> TransferResult:
    """What a pull reports for a registry ref it fetched but could not fast-forward."""
    # A remote that cannot be reached: the merge must need nothing more from it.
    result = TransferResult("pull", "/nowhere/at/all", "git", advertised={ref: theirs})
    result.rejected[ref] = "non-fast-forward"
    return result


def test_a_refused_registry_is_merged_from_the_value_the_pull_was_planned_from(
    project: Path,
) -> None:
    with GitStore.open(project) as store:
        ref, ours, theirs = _diverged_registry(store)
    result = _refused(ref, theirs)
    messages = merge_diverged_registries(str(project), result)
    assert result.merged == [ref] and result.rejected == {}
    assert "your version 2 is now version 3" in messages[0]
    with GitStore.open(project) as store:
        merged = store.refs.read(ref)
        assert merged is not None and is_ancestor(store, theirs, merged)
        assert is_ancestor(store, ours, merged)
    assert "advertised" not in result.to_dict()


def test_a_remote_registry_that_is_no_chain_stays_refused_with_the_reason(project: Path) -> None:
    # A hostile remote's registry ref names a blob that reads like a commit.
    with GitStore.open(project) as store:
        ref, ours, theirs = _diverged_registry(store)
        forged = blob(store.read_object(theirs))
        store.write_objects([forged]).release()
    result = _refused(ref, forged.id)
    assert merge_diverged_registries(str(project), result) == []
    assert result.merged == [] and "cannot be merged" in result.rejected[ref]
    assert "is a blob, where a commit belongs" in result.rejected[ref]
    with GitStore.open(project) as store:
        assert store.refs.read(ref) == ours
