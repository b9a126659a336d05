"""The public exception hierarchy: every error mlops_lite raises on purpose.

    MlopsLiteError
    ├── ProjectNotFoundError          not inside a git repository
    ├── DefinitionError               a @step / @pipeline used the wrong way
    │   ├── OutputUsedAsValueError    a step output handle used as a real value
    │   └── UnrecordableParameterError a parameter that cannot be recorded
    ├── ConfigError                   a run configuration file or option is wrong
    ├── MaterializerError
    │   ├── NoMaterializerError       nothing can save this value
    │   ├── UnknownMaterializerError  an artifact names a materializer not installed here
    │   └── UntrustedPickleError      loading would unpickle a value nobody trusted
    ├── RecordError
    │   └── UnknownSchemaVersionError a record written by a newer mlops_lite
    ├── StoreError                    the git store refused or is damaged
    │   ├── RefConflictError          a ref moved under us and could not be retried
    │   └── MissingObjectError        a git object the records point at is absent
    ├── ModelStageError               set_stage refused (the stage is taken, or not a stage)
    ├── NotFoundError
    │   ├── RunNotFoundError          (also AmbiguousRunError for a short prefix)
    │   ├── PipelineNotFoundError
    │   ├── NameNotFoundError         (also a KeyError: run.steps["x"], step.outputs["x"])
    │   │   ├── StepNotFoundError
    │   │   ├── ArtifactNotFoundError
    │   │   │   └── ArtifactVersionNotFoundError  no artifact version matches (ZenML's KeyError)
    │   │   └── ModelVersionNotFoundError         no model or model version matches (same)
    │   └── SecretNotFoundError       mlops_lite.secret() found the name nowhere
    ├── ProtectedRunError             deleting a pinned run (or one in a model stage)
    ├── StepFailedError               a step raised; the run was recorded as failed
    ├── OutputTooLargeError           a step's output did not fit in memory to be saved
    ├── ExecutionError                the orchestrator could not run a step
    │   ├── WorkerDiedError
    │   ├── StepTimeoutError
    │   ├── EnvironmentMismatchError  a worker's Python or packages differ (strict_env)
    │   └── UnsatisfiableResourcesError no worker has what a step's resources ask for
    └── RemoteError                   push / pull
        ├── RemoteUnreachableError
        ├── AuthenticationError
        └── RemoteRejectedError

Messages name the step, output or run involved and say what to do next.
``CompatibilityWarning`` is the one warning: a ZenML option accepted and recorded
that has no effect here, or an unknown configuration key.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousRunError",
    "ArtifactNotFoundError",
    "ArtifactVersionNotFoundError",
    "AuthenticationError",
    "CompatibilityWarning",
    "ConfigError",
    "DefinitionError",
    "EnvironmentMismatchError",
    "ExecutionError",
    "MaterializerError",
    "MissingObjectError",
    "MlopsLiteError",
    "ModelStageError",
    "ModelVersionNotFoundError",
    "NameNotFoundError",
    "NoMaterializerError",
    "NotFoundError",
    "OutputTooLargeError",
    "OutputTypeError",
    "OutputUsedAsValueError",
    "PipelineNotFoundError",
    "ProjectNotFoundError",
    "ProtectedRunError",
    "RecordError",
    "RefConflictError",
    "RemoteError",
    "RemoteRejectedError",
    "RemoteUnreachableError",
    "RunNotFoundError",
    "SecretNotFoundError",
    "StepFailedError",
    "StepNotFoundError",
    "StepTimeoutError",
    "StoreError",
    "UnknownMaterializerError",
    "UnknownSchemaVersionError",
    "UnrecordableParameterError",
    "UnsatisfiableResourcesError",
    "UntrustedPickleError",
    "WorkerDiedError",
]


class MlopsLiteError(Exception):
    """Base class of every error raised by mlops_lite."""


class ProjectNotFoundError(MlopsLiteError):
    """The working directory is not inside a git repository."""


class DefinitionError(MlopsLiteError):
    """A step or pipeline is defined or called in a way mlops_lite cannot record."""


class OutputUsedAsValueError(DefinitionError):
    """A step's output handle was used as a value while the pipeline was being traced."""


class UnrecordableParameterError(DefinitionError):
    """A parameter value is not a JSON-like value that can be recorded in the run."""


class OutputTypeError(DefinitionError):
    """A step returned a value whose type its return annotation does not allow."""


class ConfigError(MlopsLiteError):
    """A run configuration (file, option or environment variable) is invalid."""


class MaterializerError(MlopsLiteError):
    """A value could not be turned into bytes, or bytes back into a value."""


class NoMaterializerError(MaterializerError):
    """No registered materializer accepts the value."""


class UnknownMaterializerError(MaterializerError):
    """An artifact was written by a materializer that is not available here."""


class UntrustedPickleError(MaterializerError):
    """Loading the artifact would unpickle data that the user has not trusted."""


class RecordError(MlopsLiteError):
    """A record stored in git cannot be decoded."""


class UnknownSchemaVersionError(RecordError):
    """A record was written with a schema version this mlops_lite does not know."""


class StoreError(MlopsLiteError):
    """The git store refused an operation or holds damaged data."""


class RefConflictError(StoreError):
    """A ref kept changing under a compare-and-swap update."""


class MissingObjectError(StoreError):
    """A git object referenced by a record is not in the repository."""


class NotFoundError(MlopsLiteError, LookupError):
    """Something looked up by name or id does not exist."""


class RunNotFoundError(NotFoundError):
    """No run matches the given name, sha or sha prefix."""


class AmbiguousRunError(RunNotFoundError):
    """A sha prefix or code commit matches several runs."""


class PipelineNotFoundError(NotFoundError):
    """No run of the named pipeline is recorded."""


class NameNotFoundError(NotFoundError, KeyError):
    """A name missing from a mapping of the client (``run.steps``, ``step.outputs``).

    A ``KeyError`` too, so ``except KeyError`` and ``dict.get``-style code keep
    working; unlike a bare ``KeyError`` its message lists the names there are.
    """

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument (quotes and escapes).
        return str(self.args[0]) if self.args else ""


class StepNotFoundError(NameNotFoundError):
    """The run has no step of that name."""


class ArtifactNotFoundError(NameNotFoundError):
    """The step has no output of that name."""


class ArtifactVersionNotFoundError(ArtifactNotFoundError):
    """No artifact version matches the name, version or id (a KeyError, as in ZenML)."""


class ModelVersionNotFoundError(NameNotFoundError):
    """No model, or no version of it, matches (a KeyError, as in ZenML)."""


class ModelStageError(MlopsLiteError, RuntimeError):
    """A stage change was refused: another version holds the stage, or it is no stage."""


class CompatibilityWarning(UserWarning):
    """A ZenML option that is accepted and recorded but has no effect, or an unknown key."""


class SecretNotFoundError(NotFoundError):
    """``mlops_lite.secret(name)`` found the name in no place it looks."""


class ProtectedRunError(MlopsLiteError):
    """A run asked to be deleted is pinned or in a model stage: nothing was deleted."""


class StepFailedError(MlopsLiteError):
    """A step raised an exception; the run is recorded as failed.

    The step's own exception is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, step_name: str, run_name: str) -> None:
        super().__init__(message)
        self.step_name = step_name
        self.run_name = run_name


class OutputTooLargeError(MlopsLiteError):
    """A step's output ran out of memory while it was saved or recorded; the step failed."""


class ExecutionError(MlopsLiteError):
    """The orchestrator could not run a step."""


class WorkerDiedError(ExecutionError):
    """The worker process running a step exited without returning a result."""


class StepTimeoutError(ExecutionError):
    """A step ran longer than its timeout and its worker was stopped."""


class EnvironmentMismatchError(ExecutionError):
    """A worker's Python or package versions differ from the driver's, and strict_env is on."""


class UnsatisfiableResourcesError(ExecutionError):
    """No worker can give a step the CPUs, GPUs or memory its resources setting asks for."""


class RemoteError(MlopsLiteError):
    """A transfer to or from a git remote failed."""


class RemoteUnreachableError(RemoteError):
    """The remote could not be reached (no such path, host down, connection refused)."""


class AuthenticationError(RemoteError):
    """The remote refused our credentials."""


class RemoteRejectedError(RemoteError):
    """The remote rejected a ref update (for example a non-fast-forward)."""
