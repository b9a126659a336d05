"""Running one step: inputs in, materialized outputs (bytes) out.

``execute_step`` touches no repository, so it runs the same in the driver
process or in a worker (which only needs the task, by cloudpickle).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.context import StepContext, reset_step_context, set_step_context
from mlops_lite.errors import DefinitionError, MaterializerError
from mlops_lite.execution.logs import capture_logs
from mlops_lite.materializers import Materializer, materializer_for_value
from mlops_lite.steps import Step


@dataclass
class StepTask:
    """Everything needed to run one step invocation."""

    invocation: str
    step: Step
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    context: StepContext
    seed: bool = False


@dataclass
class MaterializedOutput:
    payload: bytes
    materializer: str
    materializer_version: int
    type_name: str
    uses_pickle: bool


@dataclass
class StepResult:
    invocation: str
    ok: bool
    outputs: dict[str, MaterializedOutput] = field(default_factory=dict)
    logs: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exception: BaseException | None = None
    start_time: float = 0.0
    end_time: float = 0.0


def _seed_everything(seed: int) -> None:
    import random
    import sys

    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)


def execute_step(task: StepTask) -> StepResult:
    """Call the step function, capture its logs, and materialize what it returns."""
    start = time.time()
    token = set_step_context(task.context)
    try:
        with capture_logs() as log_buffer:
            try:
                if task.seed:
                    _seed_everything(task.context.seed)
                value = task.step.entrypoint(**task.inputs, **task.parameters)
                outputs = materialize_outputs(task.step, task.invocation, value)
            except (Exception, SystemExit) as error:
                return StepResult(
                    task.invocation,
                    ok=False,
                    logs=log_buffer.getvalue(),
                    metadata=dict(task.context.metadata),
                    error="".join(traceback.format_exception(error)),
                    exception=error,
                    start_time=start,
                    end_time=time.time(),
                )
        return StepResult(
            task.invocation,
            ok=True,
            outputs=outputs,
            logs=log_buffer.getvalue(),
            metadata=dict(task.context.metadata),
            start_time=start,
            end_time=time.time(),
        )
    finally:
        reset_step_context(token)


def split_outputs(step: Step, invocation: str, value: Any) -> dict[str, Any]:
    names = [output.name for output in step.outputs]
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: value}
    if not isinstance(value, tuple) or len(value) != len(names):
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else f"a {type(value).__qualname__}"
        raise DefinitionError(
            f"step {invocation!r} declares {len(names)} outputs {names} but returned {got}; "
            f"return a tuple of {len(names)} values in that order"
        )
    return dict(zip(names, value, strict=True))


def materialize_outputs(step: Step, invocation: str, value: Any) -> dict[str, MaterializedOutput]:
    outputs = {}
    for name, output_value in split_outputs(step, invocation, value).items():
        materializer = _materializer(step, invocation, name, output_value)
        try:
            payload = materializer.save(output_value)
        except MaterializerError:
            raise
        except Exception as error:
            raise MaterializerError(
                f"step {invocation!r}, output {name!r}: materializer {materializer.name!r} could not "
                f"save a value of type {type(output_value).__qualname__}: {error}; register a "
                "materializer for this type with mlops_lite.register_materializer"
            ) from error
        outputs[name] = MaterializedOutput(
            bytes(payload),
            materializer.name,
            materializer.version,
            f"{type(output_value).__module__}.{type(output_value).__qualname__}",
            materializer.uses_pickle,
        )
    return outputs


def _materializer(step: Step, invocation: str, output: str, value: Any) -> Materializer:
    chosen = step.options.output_materializers.get(output)
    if chosen is None:
        return materializer_for_value(value, step_name=invocation, output_name=output)
    return chosen() if isinstance(chosen, type) else chosen  # type: ignore[no-any-return]
