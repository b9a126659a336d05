"""A run's models and named artifacts, for the runner.

The runner calls a ``RunRegistry`` at its marked hook points:

1. ``prepare`` (before anything is recorded): resolve the model versions the
   run works on (``@pipeline(model=...)``, step models) and the existing
   artifact versions its steps receive. A missing stage or version, or an
   untrusted pickle, fails here and records nothing.
2. ``start`` (the run is recorded as running): create the new model versions,
   attach the run to existing ones, note them in the run record.
3. ``step_context`` / ``input_records`` / ``input_payloads`` (a step is about to
   run): what the step sees of its model and its artifact-version inputs.
4. ``step_recorded`` (a step is recorded): each named output becomes a new
   artifact version (a cache hit reuses the version it hit), linked to the
   step's model version; then the registry writes the step asked for
   (``set_stage``, ``log_metadata``, ``save_artifact``) are made, before any
   step downstream starts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_lite.client import ArtifactVersion, Client, ModelVersion
from mlops_lite.core.records import OutputRecord, RunRecord, StepRecord
from mlops_lite.core.references import ArtifactSelector
from mlops_lite.core.registry import EXCLUSIVE_STAGES, LATEST, RegistryState, VersionState
from mlops_lite.definition.context import PendingWrite, RunConfiguration
from mlops_lite.definition.model import Model
from mlops_lite.definition.pipelines import Pipeline
from mlops_lite.definition.steps import OutputSpec
from mlops_lite.definition.tracing import Invocation, PipelineTrace
from mlops_lite.errors import (
    ArtifactVersionNotFoundError,
    MlopsLiteError,
    ModelVersionNotFoundError,
    UntrustedPickleError,
)
from mlops_lite.execution.task import MaterializedOutput
from mlops_lite.materializers import loading_unpickles
from mlops_lite.store.interface import Store
from mlops_lite.store.keeps import Keep
from mlops_lite.store.objects import GitObject
from mlops_lite.store.registry import (
    append_events,
    build_output,
    log_version_metadata,
    new_event,
    read_registry,
    save_artifact_version,
    set_stage,
)
from mlops_lite.store.runs import RunWriter
from mlops_lite.store.trust import trust_advice

__all__ = ["RunRegistry"]

logger = logging.getLogger("mlops_lite")


@dataclass
class _ModelPlan:
    """One model a run works on: an existing version, or one to create when the run starts."""

    model: Model
    version_id: str
    existing: VersionState | None
    state: RegistryState | None

    @property
    def bound(self) -> Model:
        return self.model.in_version(self.version_id)


@dataclass(frozen=True)
class _Input:
    """An existing artifact version a step receives."""

    artifact: str
    version: VersionState

    @property
    def record(self) -> dict[str, str]:
        event = self.version.event
        assert event is not None
        return {
            "artifact_id": event.artifact_id,
            "step": "",
            "output": "",
            "artifact": self.artifact,
            "version": self.version.name,
            "version_id": self.version.version_id,
        }


class RunRegistry:
    """The models and named artifacts of one run (see the module docstring)."""

    def __init__(self, store: Store, pipeline: Pipeline, trace: PipelineTrace) -> None:
        self.store = store
        self.pipeline = pipeline
        self.trace = trace
        self.client = Client(store=store)
        self.models: dict[tuple[str, str | int | None, str | None], _ModelPlan] = {}
        self.inputs: dict[str, dict[str, _Input]] = {}
        self.run: dict[str, str] = {"pipeline": pipeline.name}

    # 1. before anything is recorded -------------------------------------------------

    @classmethod
    def prepare(cls, store: Store, pipeline: Pipeline, trace: PipelineTrace) -> RunRegistry:
        """Resolve models and artifact-version inputs; raise before anything is recorded."""
        registry = cls(store, pipeline, trace)
        if pipeline.options.model is not None:
            registry._plan(pipeline.options.model)
        for invocation in trace.invocations.values():
            if invocation.step.options.model is not None:
                registry._plan(invocation.step.options.model)
            resolved = {
                argument: registry._resolve_input(invocation.name, argument, selector)
                for argument, selector in invocation.artifacts.items()
            }
            if resolved:
                registry.inputs[invocation.name] = resolved
        return registry

    def _plan(self, model: Model) -> _ModelPlan:
        key = (model.name, model.version, model.version_id)
        if key in self.models:
            return self.models[key]
        state = read_registry(self.store, "model", model.name)
        existing = _existing_version(model, state)
        plan = _ModelPlan(
            model, existing.version_id if existing else uuid.uuid4().hex, existing, state
        )
        self.models[key] = plan
        return plan

    def _model_for(self, invocation: Invocation) -> _ModelPlan | None:
        model = invocation.step.options.model or self.pipeline.options.model
        return None if model is None else self._plan(model)

    def _resolve_input(self, step: str, argument: str, selector: ArtifactSelector) -> _Input:
        where = f"step {step!r}, argument {argument!r}"
        if selector.version_id is not None:
            found = self.client.get_artifact_version(uuid.UUID(selector.version_id))
            return self._checked(found, where)
        name = selector.artifact_name
        assert name is not None
        if selector.from_run_model or selector.model_name is not None:
            model_version = self._selector_model_version(selector, where)
            kind = f"{selector.link_kind}_" if selector.link_kind else ""
            found_linked = getattr(model_version, f"get_{kind}artifact")(name, selector.version)
            if found_linked is None:
                raise ArtifactVersionNotFoundError(
                    f"{where}: {selector.describe()} is not linked to model "
                    f"{model_version.model_name!r} version {model_version.name}; a run with "
                    "that model version links the artifacts it produces"
                )
            return self._checked(found_linked, where)
        return self._checked(self.client.get_artifact_version(name, selector.version), where)

    def _selector_model_version(self, selector: ArtifactSelector, where: str) -> ModelVersion:
        if selector.from_run_model:
            model = self.pipeline.options.model
            plan = self._plan(model)
            if plan.existing is None:
                raise ModelVersionNotFoundError(
                    f"{where}: {selector.describe()} cannot be found: this run creates a new "
                    f"version of model {model.name!r}, which has no artifacts yet; name an "
                    "existing version (version='production', a number) to use its artifacts"
                )
            return self.client.get_model_version(model.name, uuid.UUID(plan.version_id))
        assert selector.model_name is not None
        return self.client.get_model_version(selector.model_name, selector.model_version)

    def _checked(self, found: ArtifactVersion, where: str) -> _Input:
        if loading_unpickles(found.materializer):
            trust = found.trust()
            if not trust:
                raise UntrustedPickleError(
                    f"{where}: artifact {found.name!r} version {found.version} was saved by "
                    f"{found.materializer!r}, which unpickles, and loading a pickle runs code. "
                    f"It is {trust.reason}. {trust_advice(self.store.root)}"
                )
        return _Input(found.name, found._version)

    # 2. the run is recorded as running ---------------------------------------------

    def start(self, record: RunRecord) -> None:
        """Create or attach the model versions; note them (and ZenML options) in the record."""
        self.run = {"pipeline": record.pipeline_name, "run": record.run_name}
        for plan in self.models.values():
            events = []
            model = plan.model
            known = plan.state
            if known is None or not (
                model.card.items() <= known.card.items() and set(model.tags) <= set(known.tags)
            ):
                events.append(
                    new_event(self.store, "describe", card=model.card, tags=list(model.tags))
                )
            if plan.existing is None:
                latest = known.latest() if known is not None else None
                name = None if model.version is None else str(model.version)
                events.append(
                    new_event(
                        self.store,
                        "create_version",
                        version_id=plan.version_id,
                        number=(latest.number if latest else 0) + 1,
                        name=name,
                        run=dict(self.run),
                    )
                )
            else:
                events.append(
                    new_event(
                        self.store, "attach_run", version_id=plan.version_id, run=dict(self.run)
                    )
                )
            state = append_events(self.store, "model", model.name, events)
            plan.existing = state.versions[plan.version_id]
            plan.state = state
        options = self.pipeline.options
        pipeline_model = options.model
        if pipeline_model is not None:
            plan = self._plan(pipeline_model)
            assert plan.existing is not None
            record.extra["model"] = {
                "name": pipeline_model.name,
                "version": plan.existing.name,
                "number": plan.existing.number,
                "version_id": plan.version_id,
            }
        if options.settings:
            record.extra["settings"] = dict(options.settings)

    # 3. a step is about to run ------------------------------------------------------

    def step_context(self, invocation: Invocation) -> dict[str, Any]:
        """The model, configuration and artifact names a step's context holds."""
        plan = self._model_for(invocation)
        options = self.pipeline.options
        names = {
            spec.name: name
            for spec in invocation.step.outputs
            if (name := spec.artifact_name(self.pipeline.name, invocation.name)) is not None
        }
        return {
            "bound_model": plan.bound if plan is not None else None,
            "config": RunConfiguration(
                enable_cache=options.enable_cache,
                extra=dict(options.extra),
                settings=dict(options.settings),
            ),
            "artifact_names": names,
        }

    def input_records(self, invocation: Invocation) -> dict[str, dict[str, str]]:
        """The artifact-version inputs of a step, as its record keeps them."""
        return {
            argument: found.record
            for argument, found in self.inputs.get(invocation.name, {}).items()
        }

    def input_payloads(self, invocation: Invocation) -> dict[str, MaterializedOutput]:
        """The artifact-version inputs of a step, as bytes for its process."""
        payloads = {}
        for argument, found in self.inputs.get(invocation.name, {}).items():
            event = found.version.event
            assert event is not None
            meta, data = self.store.read_artifact(
                event.artifact_id,
                digest=event.digest,
                where=f"artifact {found.artifact!r} version {found.version.name}",
            )
            payloads[argument] = MaterializedOutput(
                bytes(data),
                meta.materializer,
                meta.materializer_version,
                meta.type_name,
                meta.uses_pickle,
                may_unpickle=True,  # trusted in prepare(), or refused there
            )
        return payloads

    # 4. a step is recorded ----------------------------------------------------------

    def step_recorded(
        self,
        invocation: Invocation,
        record: StepRecord,
        pending: list[PendingWrite],
        writer: RunWriter,
    ) -> None:
        """Version the step's named outputs, then make the writes it asked for.

        The run's objects not yet written are taken from ``writer`` and written in
        one pack with the first version's commit; that pack stays kept until the
        run's own ref reaches them (``writer.hold``).
        """
        plan = self._model_for(invocation)
        link_to = plan.version_id if plan is not None else None
        run = {**self.run, "step": invocation.name}
        output_metadata = _metadata_for_outputs(pending)
        if record.status in ("completed", "cached"):
            versioned = [
                (spec, name)
                for spec in invocation.step.outputs
                if (name := spec.artifact_name(self.pipeline.name, invocation.name)) is not None
                and spec.name in record.outputs
            ]
            carried = writer.take_pending() if versioned and record.status == "completed" else []
            try:
                for spec, name in versioned:
                    self._version_output(
                        spec, name, record, {**run, "output": spec.name}, plan, link_to,
                        output_metadata.get(spec.name, {}), carried, writer.hold,
                    )  # fmt: skip
                    carried = []
            finally:
                if carried:  # not written with a version: the run writes them at its end
                    writer.put_back(carried)
        for write in pending:
            try:
                self._apply(write, run, plan)
            except MlopsLiteError as error:
                logger.warning(
                    "step %r of run %s asked for %s, which could not be done: %s",
                    invocation.name,
                    self.run.get("run"),
                    write.action,
                    error,
                )

    def _version_output(
        self,
        spec: OutputSpec,
        name: str,
        record: StepRecord,
        run: dict[str, str],
        plan: _ModelPlan | None,
        link_to: str | None,
        extra_metadata: Mapping[str, Any],
        objects: list[GitObject],
        hold: Callable[[Keep], None],
    ) -> None:
        output = record.outputs[spec.name]
        config = spec.config
        kind = config.link_kind if config is not None else "data"
        link = (
            {"model": plan.model.name, "version_id": link_to, "kind": kind}
            if plan is not None and link_to is not None
            else None
        )
        if record.status == "cached" and record.cached_from is not None:
            reused = _reused_version(
                read_registry(self.store, "artifact", name), record.cached_from, spec.name, output
            )
            if reused is not None:
                events = []
                if link is not None:
                    events.append(
                        new_event(
                            self.store,
                            "link_model",
                            version_id=reused.version_id,
                            run=run,
                            model_name=link["model"],
                            model_version_id=link["version_id"],
                            link_kind=link["kind"],
                        )
                    )
                if extra_metadata:
                    events.append(
                        new_event(
                            self.store,
                            "log_metadata",
                            version_id=reused.version_id,
                            metadata=dict(extra_metadata),
                            run=run,
                        )
                    )
                if events:
                    append_events(self.store, "artifact", name, events)
                return
        artifact_type = (config.artifact_type if config else None) or _type_for(kind, output)
        save_artifact_version(
            self.store,
            name,
            output,
            artifact_tree=output.artifact_id,
            version=None if config is None or config.version is None else str(config.version),
            tags=config.tags if config is not None else (),
            artifact_type=artifact_type,
            metadata={**(config.run_metadata if config else {}), **extra_metadata},
            run=run,
            link=link,
            objects=objects,
            hold=hold,
        )

    def _apply(self, write: PendingWrite, run: dict[str, str], plan: _ModelPlan | None) -> None:
        arguments = write.arguments
        if write.action == "set_stage":
            set_stage(
                self.store,
                arguments["model"],
                arguments["version_id"],
                arguments["stage"],
                force=bool(arguments["force"]),
                run=run,
            )
        elif write.action == "model_metadata":
            log_version_metadata(
                self.store, "model", arguments["model"], arguments["version_id"],
                arguments["metadata"], run=run,
            )  # fmt: skip
        elif write.action == "artifact_metadata" and "version_id" in arguments:
            log_version_metadata(
                self.store, "artifact", arguments["artifact"], arguments["version_id"],
                arguments["metadata"], run=run,
            )  # fmt: skip
        elif write.action == "save_artifact":
            payload = MaterializedOutput(**arguments["payload"])
            output, objects = build_output(payload)
            kind = arguments["link_kind"]
            link = (
                {"model": plan.model.name, "version_id": plan.version_id, "kind": kind}
                if plan is not None
                else None
            )
            save_artifact_version(
                self.store,
                arguments["name"],
                output,
                artifact_tree=output.artifact_id,
                objects=objects,
                version=arguments["version"],
                tags=arguments["tags"],
                artifact_type=arguments["artifact_type"] or _type_for(kind, output),
                metadata=arguments["metadata"],
                run=run,
                link=link,
            )


def _existing_version(model: Model, state: RegistryState | None) -> VersionState | None:
    """The version a model declaration names, None when the run should create it.

    A number or a stage must exist; a name is attached to, or created the first time.
    """
    spec = model.version_id or model.version
    if spec is None:
        return None
    found = state.find(spec) if state is not None else None
    if found is not None:
        return found
    text = str(spec)
    if model.version_id is not None or isinstance(spec, int) or text.isdigit():
        raise ModelVersionNotFoundError(
            f"model {model.name!r} has no version {text}: a run creates numbered versions "
            "itself; give version=None for a new one, or an existing name or number"
        )
    if text in (*EXCLUSIVE_STAGES, LATEST):
        where = "" if state is None else f" (stages held: {dict(state.stages) or 'none'})"
        raise ModelVersionNotFoundError(
            f"model {model.name!r} has no version in stage {text}{where}: promote a version "
            f"first, e.g. `mlops-lite model stage {model.name} <version> {text}` or "
            f"set_stage({text!r}) in a training step"
        )
    return None


def _reused_version(
    state: RegistryState | None, cached_from: Mapping[str, str], output: str, record: OutputRecord
) -> VersionState | None:
    """The version a cache hit reuses: the one its execution made, else one with equal content."""
    if state is None:
        return None
    producer = {
        "pipeline": cached_from.get("pipeline"),
        "run": cached_from.get("run"),
        "step": cached_from.get("step"),
        "output": output,
    }
    same_content = [
        version
        for version in state.ordered()
        if version.event is not None and version.event.artifact_id == record.artifact_id
    ]
    for version in same_content:
        if version.run == producer:
            return version
    return same_content[-1] if same_content else None


def _metadata_for_outputs(pending: list[PendingWrite]) -> dict[str, dict[str, Any]]:
    """Metadata a step logged for its own outputs (``log_metadata(infer_artifact=True)``)."""
    found: dict[str, dict[str, Any]] = {}
    for write in pending:
        if write.action == "artifact_metadata" and "output" in write.arguments:
            found.setdefault(write.arguments["output"], {}).update(write.arguments["metadata"])
    return found


def _type_for(kind: str, output: OutputRecord) -> str:
    if kind == "model":
        return "ModelArtifact"
    if kind == "deployment":
        return "ServiceArtifact"
    try:
        from mlops_lite.materializers import get_materializer

        chosen = get_materializer(output.materializer)
    except MlopsLiteError:
        return "DataArtifact"
    return str(getattr(chosen, "artifact_type", "DataArtifact"))
