"""ZenML's pipeline and step options in real runs: hooks, context, metadata, settings, stack."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from mlops_lite import Client
from tests.conftest import run_script

SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    from typing import Annotated
    from mlops_lite import (
        ArtifactConfig, Model, get_step_context, log_metadata, pipeline, step,
    )
    from mlops_lite.client import Client

    def report(name):
        def hook(exception: BaseException = None):
            context = get_step_context()
            print("HOOK", name, context.step_name, type(exception).__name__ if exception else "-")
        hook.__qualname__ = f"report_{name}"
        return hook

    pipeline_failure, step_success = report("pipeline_failure"), report("step_success")

    @step
    def prepare() -> Annotated[list, ArtifactConfig(name="rows", run_metadata={"origin": "x"})]:
        log_metadata({"rows": 3}, artifact_name="rows", infer_artifact=True)
        return [1, 2, 3]

    @step(on_success=step_success)
    def inspect(rows: list) -> None:
        context = get_step_context()
        print("CONTEXT", json.dumps({
            "run": context.pipeline_run.name,
            "run_id": str(context.pipeline_run.id),
            "extra": context.pipeline_run.config.extra,
            "step": context.step_run.name,
            "step_id": str(context.step_run.id),
            "pipeline": context.pipeline.name,
            "model": [context.model.name, context.model.number],
            "stack": Client().active_stack.orchestrator.flavor,
        }))
        log_metadata({"quality": "good"}, infer_model=True)
        log_metadata({"step_level": 1})

    @step
    def fail(rows: list) -> None:
        raise ValueError("broken on purpose")

    @pipeline(
        model=Model(name="options-model"),
        on_failure=pipeline_failure,
        settings={"docker": {"requirements": ["pandas"]}},
        extra={"notify": True},
    )
    def options(broken: bool = False):
        log_metadata({"run_level": True})
        rows = prepare()
        inspect(rows, id="look", after=["prepare"])
        if broken:
            fail(rows)

    if __name__ == "__main__":
        try:
            options(broken=sys.argv[1:] == ["broken"])
        except Exception as error:
            print("FAILED", type(error).__name__)
    """
)


def test_hooks_context_metadata_and_settings_in_real_runs(project: Path) -> None:
    (project / "options.py").write_text(SCRIPT)
    completed = run_script(project, "options.py")
    assert "settings 'docker' are recorded with the run but have no effect" in completed.stderr
    assert "HOOK step_success look -" in completed.stdout

    client = Client(project)
    run = client.get_pipeline("options").last_run
    context = json.loads(completed.stdout.split("CONTEXT ", 1)[1].splitlines()[0])
    assert context == {
        "run": run.name,
        "run_id": str(run.id),
        "extra": {"notify": True},
        "step": "look",
        "step_id": str(run.steps["look"].id),
        "pipeline": "options",
        "model": ["options-model", 1],
        "stack": "local",
    }
    assert run.record.extra["settings"] == {"docker": {"requirements": ["pandas"]}}
    look = run.steps["look"]
    assert look.record.settings["hooks"]["on_success"].endswith("report_step_success")
    assert look.record.settings["hooks"]["on_failure"].endswith("report_pipeline_failure")
    assert "hooks" not in look.parameters and look.parameters == {}
    # .run_metadata on the run, a step, an artifact version and a model version.
    assert run.run_metadata == {"run_level": True}
    assert look.run_metadata == {"step_level": 1}
    rows = client.get_artifact_version("rows")
    assert rows.run_metadata == {"origin": "x", "rows": 3}
    assert run.steps["prepare"].outputs["rows"].run_metadata == rows.run_metadata
    assert client.get_model_version("options-model").run_metadata == {"quality": "good"}

    broken = run_script(project, "options.py", "broken")
    assert "FAILED StepFailedError" in broken.stdout
    # The pipeline's failure hook ran in the failing step, with its exception.
    assert "HOOK pipeline_failure fail ValueError" in broken.stdout
    assert Client(project).get_pipeline("options").last_run.status == "failed"
