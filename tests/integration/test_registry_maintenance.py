"""Registry writes are protected from git's maintenance like a run's, and leave no keep behind.

A named output becomes an artifact version while its run is still recording:
the registry commit is written in one pack with the step's objects, which only
the run's final commit will reach. ``git gc --prune=now`` and ``git repack -a
-d`` in the middle of the run must drop none of them, and once everything is
recorded no ``.keep`` may stay (git never repacks a kept pack).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from mlops_lite.core.registry import RegistryState
from mlops_lite.store import GitStore
from mlops_lite.store.artifacts import build_artifact
from mlops_lite.store.registry import append_events, new_event
from tests.conftest import git, run_script

DURING_GC = textwrap.dedent(
    """
    import subprocess
    from typing import Annotated
    from mlops_lite import ArtifactConfig, Model, pipeline, save_artifact, step
    from mlops_lite.client import Client

    @step
    def make() -> Annotated[dict, ArtifactConfig(name="classifier")]:
        return {"weight": 2.0}

    @step
    def maintain(classifier: dict) -> Annotated[float, "score"]:
        # `make` is versioned by now: its step tree sits in the registry's pack.
        subprocess.run(["git", "gc", "--prune=now", "--quiet"], check=True)
        subprocess.run(["git", "repack", "-a", "-d", "-q"], check=True)
        return classifier["weight"] / 4

    @pipeline(model=Model(name="churn"))
    def training():
        maintain(make())

    if __name__ == "__main__":
        run = training()
        save_artifact({"outside": "a run"}, name="notes")
        Client().get_model_version("churn", 1).set_stage("production")
        with Client() as client:
            version = client.get_artifact_version("classifier")
            print("LOADED", version.load(), client.get_artifact_version("notes").load())
            print("STEPS", run.steps["make"].output.load(), run.steps["maintain"].output.load())
        print("RUN", run.sha)
    """
)


def test_registry_writes_survive_gc_during_the_run_and_release_their_keeps(
    project: Path,
) -> None:
    (project / "during_gc.py").write_text(DURING_GC)
    git(project, "add", "during_gc.py")
    git(project, "commit", "-q", "-m", "script")
    done = run_script(project, "during_gc.py")
    assert "LOADED {'weight': 2.0} {'outside': 'a run'}" in done.stdout
    assert "STEPS {'weight': 2.0} 0.5" in done.stdout
    assert not list((project / ".git/objects/pack").glob("*.keep"))
    subprocess.run(["git", "gc", "--prune=now", "--quiet"], cwd=project, check=True)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
    sha = done.stdout.split()[-1]
    check = (
        "import sys\nfrom mlops_lite import Client\n"
        "print(Client().get_pipeline_run(sys.argv[1]).steps['make'].output.load())\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check, sha], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert loaded.stdout.strip() == "{'weight': 2.0}", loaded.stderr


def test_a_version_written_on_a_second_attempt_keeps_its_artifact_protected_until_then(
    project: Path,
) -> None:
    # The artifact's objects go with the first attempt's commit; when a concurrent
    # writer wins that race, the second attempt's commit names them from that pack.
    keeps = project / ".git/objects/pack"
    kept_during_retry: list[int] = []
    with GitStore.open(project) as store:
        artifact, objects = build_artifact(
            b"weights", materializer="builtins.bytes", materializer_version=1,
            type_name="builtins.bytes", uses_pickle=False,
        )  # fmt: skip
        version_id = uuid.uuid4().hex
        event = new_event(
            store, "create_version", version_id=version_id, artifact_id=artifact.id, size=7
        )

        def check(state: RegistryState) -> None:
            if not kept_during_retry:
                kept_during_retry.append(-1)
                concurrent = new_event(store, "describe", card={"by": "someone else"})
                append_events(store, "artifact", "weights", [concurrent])
            else:
                kept_during_retry.append(len(list(keeps.glob("*.keep"))))

        append_events(
            store, "artifact", "weights", [event], artifacts={version_id: artifact.id},
            objects=objects, check=check,
        )  # fmt: skip
    assert kept_during_retry == [-1, 1]
    assert not list(keeps.glob("*.keep"))
    subprocess.run(["git", "gc", "--prune=now", "--quiet"], cwd=project, check=True)
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=project, check=True)
