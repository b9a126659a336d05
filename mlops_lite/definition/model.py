"""``Model``: a model and one of its versions, as ZenML's Model Control Plane has them.

Declared on a pipeline (``@pipeline(model=Model(name="churn"))``, ``model:`` in a
configuration file) or a step, a ``Model`` says which version a run works on:
``version=None`` creates the next numbered version when the run starts; a name
attaches to that version (creating it the first time); a number or a stage
(``production``, ``staging``, ``latest``) must exist already. Every artifact
the run produces is linked to that version.

A ``Model`` is also a handle on the registry: ``number``, ``stage``,
``get_artifact``, ``set_stage``, ``log_metadata``. Inside a pipeline body,
``get_artifact`` returns a lazy reference resolved when the run starts; elsewhere
these calls read (and write) the registry through ``mlops_lite.operations.models``,
imported only when called, so declaring a model loads nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_lite.core.names import NAME_RULE, did_you_mean, is_valid_name
from mlops_lite.core.references import ArtifactSelector
from mlops_lite.definition.tracing import current_trace
from mlops_lite.errors import ArtifactVersionNotFoundError, ConfigError, DefinitionError

if TYPE_CHECKING:
    import uuid

    from mlops_lite.client.registry import ModelVersion

__all__ = ["CARD_FIELDS", "Model"]

CARD_FIELDS = (
    "license",
    "description",
    "audience",
    "use_cases",
    "limitations",
    "trade_offs",
    "ethics",
)
# ZenML keys accepted in a configuration's ``model:`` that change nothing here.
_ACCEPTED_KEYS = ("save_models_to_registry", "suppress_class_validation_warnings")
_CONFIG_KEYS = ("name", "version", *CARD_FIELDS, "tags", "model_version_id", *_ACCEPTED_KEYS)


class Model:
    """A model, and which of its versions a run (or a call) works on."""

    def __init__(
        self,
        name: str,
        version: str | int | None = None,
        license: str | None = None,
        description: str | None = None,
        audience: str | None = None,
        use_cases: str | None = None,
        limitations: str | None = None,
        trade_offs: str | None = None,
        ethics: str | None = None,
        tags: Sequence[str] | None = None,
        save_models_to_registry: bool = True,
        suppress_class_validation_warnings: bool = False,
        model_version_id: str | uuid.UUID | None = None,
    ) -> None:
        if not is_valid_name(name):
            raise DefinitionError(
                f"Model(name={name!r}): a model name is part of a git ref; use {NAME_RULE}"
            )
        if isinstance(version, bool) or not (
            version is None
            or (isinstance(version, int) and version > 0)
            or (isinstance(version, str) and version.strip())
        ):
            raise DefinitionError(
                f"Model {name!r}: version={version!r} is not a version; give a name, a number, "
                "a stage (production, staging, latest) or None for a new version"
            )
        if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags or ()):
            raise DefinitionError(f"Model {name!r}: tags must be a list of strings")
        self.name = name
        # A StrEnum stage (ModelStages.PRODUCTION) is kept as its plain string.
        self.version: str | int | None = version if isinstance(version, int) else (
            str(version) if version is not None else None
        )  # fmt: skip
        self.license = license
        self.description = description
        self.audience = audience
        self.use_cases = use_cases
        self.limitations = limitations
        self.trade_offs = trade_offs
        self.ethics = ethics
        self.tags = list(tags or [])
        self.save_models_to_registry = save_models_to_registry
        self.suppress_class_validation_warnings = suppress_class_validation_warnings
        # Set once resolved: by the run that works on this version, or by model_version_id.
        self.version_id: str | None = (
            str(model_version_id).replace("-", "").lower() if model_version_id else None
        )

    # -- configuration -----------------------------------------------------------

    @classmethod
    def from_config(cls, content: Any, *, source: str) -> Model:
        """A ``Model`` from a configuration's ``model:`` mapping (ConfigError when it is wrong)."""
        if not isinstance(content, Mapping) or "name" not in content:
            raise ConfigError(
                f"{source}: model must be a mapping with at least a name, e.g. "
                "model: {name: churn_classifier, version: production}"
            )
        for key in content:
            if key not in _CONFIG_KEYS:
                raise ConfigError(
                    f"{source}: unknown key model.{key}; {did_you_mean(str(key), _CONFIG_KEYS)}"
                    "the keys allowed here are "
                    f"{', '.join(_CONFIG_KEYS)}"
                )
        try:
            return cls(**{str(key): value for key, value in content.items()})
        except DefinitionError as error:
            raise ConfigError(f"{source}: {error}") from None

    @property
    def card(self) -> dict[str, str]:
        """The descriptive fields given (license, description, audience, ...)."""
        return {
            key: str(getattr(self, key)) for key in CARD_FIELDS if getattr(self, key) is not None
        }

    def to_config(self) -> dict[str, Any]:
        """The model as recorded with a run (JSON-like)."""
        return {"name": self.name, "version": self.version, **self.card, "tags": list(self.tags)}

    def in_version(self, version_id: str) -> Model:
        """A copy bound to one version (what a run's steps get as ``get_step_context().model``)."""
        bound = copy.copy(self)
        bound.tags = list(self.tags)
        bound.version_id = version_id
        return bound

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return (self.name, self.version, self.version_id) == (
            other.name,
            other.version,
            other.version_id,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.version_id))

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version!r})"

    # -- artifacts of this version -----------------------------------------------

    def get_artifact(self, name: str, version: str | None = None) -> Any:
        """The artifact version ``name`` linked to this model version (the newest one linked).

        Inside a pipeline body: a lazy reference, resolved when the run starts.
        """
        return self._artifact(name, version, None)

    def get_model_artifact(self, name: str, version: str | None = None) -> Any:
        """Like ``get_artifact``, among the artifacts linked as model artifacts."""
        return self._artifact(name, version, "model")

    def get_data_artifact(self, name: str, version: str | None = None) -> Any:
        """Like ``get_artifact``, among the artifacts linked as data artifacts."""
        return self._artifact(name, version, "data")

    def get_deployment_artifact(self, name: str, version: str | None = None) -> Any:
        """Like ``get_artifact``, among the artifacts linked as deployment artifacts."""
        return self._artifact(name, version, "deployment")

    def load_artifact(self, name: str, version: str | None = None) -> Any:
        """The value of ``get_artifact(name, version)`` (lazy inside a pipeline body).

        ``ArtifactVersionNotFoundError`` (a ``KeyError``) when no such artifact is linked.
        """
        found = self._artifact(name, version, None)
        if isinstance(found, ArtifactSelector):
            return found
        if found is None:
            raise ArtifactVersionNotFoundError(
                f"model {self.name!r} version {self.version or 'latest'} has no artifact "
                f"{name!r} linked: runs with this model version link the artifacts they produce"
            )
        return found.load()

    def _artifact(self, name: str, version: str | None, kind: str | None) -> Any:
        trace = current_trace()
        if trace is not None:
            return ArtifactSelector(
                artifact_name=name,
                version=None if version is None else str(version),
                link_kind=kind,
                **self._selector_target(getattr(trace, "context", None)),
            )
        from mlops_lite.operations import models

        return models.model_artifact(self, name, None if version is None else str(version), kind)

    def _selector_target(self, context: Any) -> dict[str, Any]:
        if getattr(context, "model", None) == self:
            return {"from_run_model": True}
        if self.version_id is not None:
            return {"model_name": self.name, "model_version": self.version_id}
        version = None if self.version is None else str(self.version)
        return {"model_name": self.name, "model_version": version}

    # -- the version in the registry ---------------------------------------------

    @property
    def id(self) -> uuid.UUID:
        """The model version's id."""
        return self._version().id

    @property
    def number(self) -> int:
        """The model version's number (``KeyError`` when there is no such version)."""
        return self._version().number

    @property
    def stage(self) -> str | None:
        """The model version's stage, or None."""
        return self._version().stage

    @property
    def run_metadata(self) -> dict[str, Any]:
        """Metadata logged on the model version."""
        return self._version().run_metadata

    def set_stage(self, stage: str, force: bool = False) -> None:
        """Move this version to ``stage``; with ``force``, archive the version holding it.

        Inside a step, the move is made when the step is recorded.
        """
        from mlops_lite.operations import models

        models.set_model_stage(self, str(stage), force=force)

    def log_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into this version's ``run_metadata``."""
        from mlops_lite.operations import models

        models.log_model_metadata(self, metadata)

    def _version(self) -> ModelVersion:
        from mlops_lite.operations import models

        return models.model_version(self)
