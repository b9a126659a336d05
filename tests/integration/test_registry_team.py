"""Two teammates, one file:// remote: model and artifact versions made offline stay unique.

Alice and Bob each train offline, both making "version 2" of the same model and
both promoting it. Alice pushes first. Bob's push is refused (nothing is forced);
his pull merges: Alice's version 2 keeps its number, his becomes version 3, and
both promotions are in the stage history. After Bob pushes and Alice pulls, both
clones read the same registry.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import Client
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
