"""Running one step: inputs in, materialized outputs (bytes) out.

``execute_step`` touches no repository, so it runs the same in the driver
process or in a worker (which only needs the task, by cloudpickle). Inputs may
travel as materialized bytes (``input_payloads``) and are loaded inside the
step's own error handling; ``encode_task`` / ``run_encoded_task`` /
``decode_result`` carry a task across a process boundary and its result back.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from mlops_lite.core.payload import Payload, output_too_large
from mlops_lite.core.secrets import scrub_text, scrub_value
from mlops_lite.definition.context import (
    PendingWrite,
    StepContext,
    reset_step_context,
    set_step_context,
)
from mlops_lite.definition.hooks import run_hook
from mlops_lite.definition.steps import Step
from mlops_lite.definition.typecheck import describe_annotation, matches_annotation
from mlops_lite.errors import (
    DefinitionError,
    ExecutionError,
    MaterializerError,
    OutputTypeError,
    UntrustedPickleError,
)
from mlops_lite.execution.data_files import track_reads
from mlops_lite.execution.logs import capture_logs
from mlops_lite.materializers import (
    Materializer,
    get_materializer,
    loading_unpickles,
    materializer_for_value,
)

__all__ = [
    "MaterializedOutput",
    "StepInterrupted",
    "StepResult",
    "StepTask",
    "WorkerSetup",
    "decode_result",
    "encode_task",
    "execute_step",
    "run_encoded_task",
    "run_with_setup",
]


@dataclass
class StepTask:
    """Everything needed to run one step invocation."""

    invocation: str
    step: Step
    parameters: dict[str, Any]
    context: StepContext
    seed: bool = False
    # The work tree whose files the step reads are recorded (None: not tracked).
    data_root: str | None = None
    # A file the step's logs are appended to as they come, for `mlops-lite logs -f`.
    live_log: str | None = None
    # Inputs as bytes, loaded by their materializer when the step starts: a list
    # is a gathered input (one argument receiving several step outputs).
    input_payloads: dict[str, MaterializedOutput | list[MaterializedOutput]] = field(
        default_factory=dict
    )


@dataclass
class MaterializedOutput:
    """A value as bytes, with the materializer that wrote them."""

    # A Payload holds views of the step's own value (a large array): never copied whole.
    payload: bytes | Payload
    materializer: str
    materializer_version: int
    type_name: str
    uses_pickle: bool
    # Set only by the driver, for bytes it knows may be unpickled here: this
    # run's own outputs, and cache hits from trusted runs. Whatever process
    # loads the bytes (the driver, a pool or Dask worker) refuses a pickle
    # without it, so no path can forget the trust check.
    may_unpickle: bool = False
    # The payload is a directory's files, stored as a git tree (BaseMaterializer).
    stores_files: bool = False

    def load(self) -> Any:
        """The value again, through the materializer that saved it."""
        materializer = get_materializer(self.materializer, version=self.materializer_version)
        if not self.may_unpickle and loading_unpickles(self.materializer):
            raise UntrustedPickleError(
                f"an input saved by {self.materializer!r} would be unpickled, and it comes from "
                "a run that is not trusted here; the driver did not clear it for loading"
            )
        payload = self.payload
        data = payload.contiguous() if isinstance(payload, Payload) else payload
        return materializer.load_as(data, self.type_name)


@dataclass
class StepResult:
    """What running a step gave: outputs as bytes, logs, metadata, or the error."""

    invocation: str
    ok: bool
    outputs: dict[str, MaterializedOutput] = field(default_factory=dict)
    logs: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exception: BaseException | None = None
    start_time: float = 0.0
    end_time: float = 0.0
    data_files: dict[str, str] = field(default_factory=dict)
    # Registry writes the step asked for; the driver makes them (only it moves refs).
    pending_writes: list[PendingWrite] = field(default_factory=list)


class StepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a step ran: carries what the step had printed and logged."""

    def __init__(self, result: StepResult) -> None:
        super().__init__(f"step {result.invocation!r} was interrupted")
        self.result = result


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)


def execute_step(task: StepTask) -> StepResult:
    """Call the step function, capture its logs, and materialize what it returns."""
    start = time.time()
    token = set_step_context(task.context)
    reads = track_reads(task.data_root) if task.data_root is not None else nullcontext(None)
    try:
        with capture_logs(task.live_log) as log_buffer, reads as file_reads:
            try:
                inputs = _load_inputs(task)
                if task.seed:
                    _seed_everything(task.context.seed)
                value = task.step.entrypoint(**inputs, **task.parameters)
                outputs = _materialize_outputs(task.step, task.invocation, value)
            except (Exception, SystemExit) as error:
                run_hook(task.step.options.on_failure, "on_failure", error)
                return StepResult(
                    task.invocation,
                    ok=False,
                    logs=scrub_text(log_buffer.getvalue()),
                    metadata=scrub_value(dict(task.context.metadata)),
                    error=scrub_text("".join(traceback.format_exception(error))),
                    exception=error,
                    start_time=start,
                    end_time=time.time(),
                    pending_writes=list(task.context.pending_writes),
                )
            except KeyboardInterrupt as interruption:
                # Still raised (the run stops), with the partial logs for the record.
                partial = StepResult(
                    task.invocation,
                    ok=False,
                    logs=scrub_text(log_buffer.getvalue()),
                    metadata=scrub_value(dict(task.context.metadata)),
                    error=scrub_text("".join(traceback.format_exception(interruption))),
                    start_time=start,
                    end_time=time.time(),
                )
                raise StepInterrupted(partial) from interruption
            run_hook(task.step.options.on_success, "on_success")
        return StepResult(
            task.invocation,
            ok=True,
            outputs=outputs,
            # Scrubbed here, where the step ran: a worker knows the secrets it handed out.
            logs=scrub_text(log_buffer.getvalue()),
            metadata=scrub_value(dict(task.context.metadata)),
            start_time=start,
            end_time=time.time(),
            data_files=file_reads.content_ids() if file_reads is not None else {},
            pending_writes=list(task.context.pending_writes),
        )
    finally:
        reset_step_context(token)


def _load_inputs(task: StepTask) -> dict[str, Any]:
    """The step's input values, loaded from their bytes (a list for a gathered input)."""
    values: dict[str, Any] = {}
    for arg, payload in task.input_payloads.items():
        try:
            if isinstance(payload, list):
                values[arg] = [item.load() for item in payload]
            else:
                values[arg] = payload.load()
        except MaterializerError:
            raise
        except Exception as error:
            raise MaterializerError(
                f"step {task.invocation!r}, input {arg!r}: its materializer could not load the "
                f"value: {error}"
            ) from error
    return values


# -- across a process boundary ----------------------------------------------


@dataclass
class WorkerSetup:
    """What a worker process needs from the driver before running its tasks."""

    # The driver's import path, so steps pickled by reference import the same modules.
    sys_path: list[str] | None = None
    # Materializers the user registered in the driver: without them a worker would
    # choose another one and write different bytes (different artifact ids).
    materializers: list[Materializer] = field(default_factory=list)
    root_log_level: int | None = None

    @classmethod
    def from_driver(cls, *, with_sys_path: bool) -> WorkerSetup:
        """The setup of the driver process as it is now."""
        from mlops_lite.materializers import user_materializers

        # Newest registration first; replayed oldest first.
        user = user_materializers()
        return cls(
            sys_path=list(sys.path) if with_sys_path else None,
            materializers=user,
            root_log_level=logging.getLogger().level,
        )

    def apply(self) -> None:
        """Make this worker process match the driver."""
        from mlops_lite.materializers import register_materializer

        if self.sys_path is not None:
            sys.path[:] = [*self.sys_path, *(p for p in sys.path if p not in self.sys_path)]
        for materializer in reversed(self.materializers):
            register_materializer(materializer, override=True)
        if self.root_log_level is not None:
            logging.getLogger().setLevel(self.root_log_level)


def encode_task(task: StepTask) -> bytes:
    """A task as bytes for a worker (cloudpickle: functions of ``__main__`` travel by value)."""
    import cloudpickle

    # cloudpickle pickles functions of __main__ (the user's script) by value.
    return cloudpickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def _decode_task(data: bytes) -> StepTask:
    """A task sent by ``encode_task``."""
    task = pickle.loads(data)
    assert isinstance(task, StepTask)
    return task


def run_encoded_task(data: bytes) -> bytes:
    """The worker side: decode, execute, and encode a result the driver can load."""
    try:
        task = _decode_task(data)
    except BaseException as error:
        # No invocation name to report: the driver knows which task this was.
        result = StepResult(
            "?",
            ok=False,
            error="".join(traceback.format_exception(error)),
            exception=ExecutionError(
                f"the worker could not load the step: {type(error).__name__}: {error}; steps "
                "and the modules they import must be importable in the worker"
            ),
        )
        return _encode_result(result)
    return _encode_result(execute_step(task))


def run_with_setup(setup: bytes, data: bytes) -> bytes:
    """A task on a shared worker (Dask): apply the driver's setup, then run it."""
    worker_setup = pickle.loads(setup)
    assert isinstance(worker_setup, WorkerSetup)
    worker_setup.apply()
    return run_encoded_task(data)


def _encode_result(result: StepResult) -> bytes:
    """A result as bytes for the driver; an exception that cannot travel is described instead."""
    import cloudpickle

    exception = result.exception
    if exception is not None:
        try:
            # Round-trip here: some exceptions pickle but cannot be rebuilt.
            pickle.loads(cloudpickle.dumps(exception))
        except Exception as error:
            exception = ExecutionError(
                f"{type(exception).__module__}.{type(exception).__qualname__}: {exception} "
                f"(the original exception could not be sent back from the worker: {error})"
            )
    portable = dataclasses.replace(result, exception=exception)
    return cloudpickle.dumps(portable, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def decode_result(data: bytes) -> StepResult:
    """A result sent by ``_encode_result``."""
    result = pickle.loads(data)
    assert isinstance(result, StepResult)
    return result


def _split_outputs(step: Step, invocation: str, value: Any) -> dict[str, Any]:
    """The step's return value split into its declared outputs, by name."""
    names = [output.name for output in step.outputs]
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: value}
    if not isinstance(value, tuple) or len(value) != len(names):
        got = (
            f"a tuple of {len(value)}"
            if isinstance(value, tuple)
            else f"a {type(value).__qualname__}"
        )
        raise DefinitionError(
            f"step {invocation!r} declares {len(names)} outputs {names} but returned {got}; "
            f"return a tuple of {len(names)} values in that order"
        )
    return dict(zip(names, value, strict=True))


def _materialize_outputs(step: Step, invocation: str, value: Any) -> dict[str, MaterializedOutput]:
    """Each output saved by its materializer (the step's choice, else by type)."""
    outputs = {}
    annotations = {output.name: output.annotation for output in step.outputs}
    for name, output_value in _split_outputs(step, invocation, value).items():
        if not matches_annotation(output_value, annotations[name], deep=False):
            actual = type(output_value)
            raise OutputTypeError(
                f"step {invocation!r}, output {name!r}: declared "
                f"{describe_annotation(annotations[name])} but the step returned "
                f"{describe_annotation(actual)} ({_short_repr(output_value)}); return a value "
                "of the declared type or change the step's return annotation"
            )
        materializer = _materializer(step, invocation, name, output_value)
        try:
            payload = materializer.save_payload(output_value)
        except (MemoryError, MaterializerError) as error:
            if not isinstance(error, MemoryError) and not isinstance(error.__cause__, MemoryError):
                raise
            raise output_too_large(
                invocation,
                name,
                _value_size(output_value),
                f"materializer {materializer.name!r} saved its "
                f"{type(output_value).__qualname__} value",
            ) from None
        except Exception as error:
            raise MaterializerError(
                f"step {invocation!r}, output {name!r}: "
                f"materializer {materializer.name!r} could not save a value "
                f"of type {type(output_value).__qualname__}: {error}; "
                "register a materializer for this type with mlops_lite.register_materializer"
            ) from error
        outputs[name] = MaterializedOutput(
            payload if isinstance(payload, Payload) else bytes(payload),
            materializer.name,
            materializer.version,
            f"{type(output_value).__module__}.{type(output_value).__qualname__}",
            type(materializer).uses_pickle,
            may_unpickle=True,  # made by this run's own step
            stores_files=type(materializer).stores_files,
        )
    return outputs


def _value_size(value: Any, depth: int = 0) -> int | None:
    """The bytes a value holds, when it says (arrays, buffers, data frames); else None.

    A dict, list or tuple adds up what its members say (two levels down).
    """
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return memoryview(value).nbytes
        nbytes = getattr(value, "nbytes", None)
        if isinstance(nbytes, int):
            return nbytes
        usage = getattr(value, "memory_usage", None)  # pandas
        if callable(usage):
            return int(usage(deep=True).sum())
        if isinstance(value, (dict, list, tuple)) and depth < 2:
            members = value.values() if isinstance(value, dict) else value
            sizes = [_value_size(member, depth + 1) for member in members]
            known = [size for size in sizes if size is not None]
            return sum(known) if known else None
    except Exception:
        return None
    return None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        return "unprintable"
    return text if len(text) <= 60 else text[:57] + "..."


def _materializer(step: Step, invocation: str, output: str, value: Any) -> Materializer:
    chosen = step.options.output_materializers.get(output)
    if chosen is None:
        return materializer_for_value(value, step_name=invocation, output_name=output)
    return chosen() if isinstance(chosen, type) else chosen  # type: ignore[no-any-return]
