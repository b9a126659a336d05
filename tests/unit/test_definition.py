"""@step and @pipeline: signatures, outputs, tracing, and the errors for misuse."""

from __future__ import annotations

from typing import Annotated

import pytest

from mlops_lite import pipeline, step
from mlops_lite.definition.tracing import OutputHandle
from mlops_lite.errors import DefinitionError, OutputUsedAsValueError, UnrecordableParameterError


@step
def load(n: int = 3) -> list[int]:
    return list(range(n))


@step
def split(data: list[int]) -> tuple[Annotated[list[int], "train"], Annotated[list[int], "test"]]:
    return data[:-1], data[-1:]


@step
def pair(x: int) -> tuple[int, str]:
    return x, str(x)


@step
def inc(x: int) -> int:
    return x + 1


@step
def nothing() -> None:
    return None


def test_outputs_follow_annotations() -> None:
    assert [o.name for o in load.outputs] == ["output"]
    assert [o.name for o in split.outputs] == ["train", "test"]
    assert [o.name for o in pair.outputs] == ["output_0", "output_1"]
    assert nothing.outputs == ()


def test_step_outside_a_pipeline_is_the_plain_function() -> None:
    assert load(n=2) == [0, 1]
    assert split([1, 2, 3]) == ([1, 2], [3])


def test_trace_builds_graph_with_inputs_parameters_and_unique_names() -> None:
    @pipeline
    def chain(start: int = 1) -> None:
        data = load(n=start)
        train, _ = split(data)
        inc(inc(5))

    trace = chain.trace({"start": 4})
    assert list(trace.invocations) == ["load", "split", "inc", "inc_2"]
    assert trace.invocations["load"].parameters == {"n": 4}
    assert trace.invocations["split"].upstream == ["load"]
    assert trace.invocations["inc_2"].upstream == ["inc"]
    assert trace.invocations["inc"].parameters == {"x": 5}


def test_using_an_output_as_a_value_names_the_step_and_output() -> None:
    @pipeline
    def bad() -> None:
        data = load()
        if data:
            pass

    with pytest.raises(OutputUsedAsValueError, match="output 'output' of step 'load'"):
        bad.trace({})


def test_arithmetic_on_an_output_is_refused() -> None:
    handle = OutputHandle("load", "output")
    with pytest.raises(OutputUsedAsValueError):
        handle + 1
    with pytest.raises(OutputUsedAsValueError):
        f"{handle}"


def test_unpacking_the_wrong_number_of_outputs_is_explained() -> None:
    @pipeline
    def bad() -> None:
        a, b, c = split(load())

    with pytest.raises(
        DefinitionError, match=r"step 'split' returns 2 outputs \['train', 'test'\].*into 3"
    ):
        bad.trace({})


def test_unpacking_a_single_output_is_explained() -> None:
    @pipeline
    def bad() -> None:
        a, b = load()

    with pytest.raises(DefinitionError, match="single output"):
        bad.trace({})


def test_unrecordable_parameter_names_step_parameter_and_type() -> None:
    class Model:
        pass

    @step
    def fit(model: object) -> int:
        return 1

    @pipeline
    def bad() -> None:
        fit(model=Model())

    with pytest.raises(UnrecordableParameterError, match=r"step 'fit', parameter 'model'.*Model"):
        bad.trace({})


def test_unrecordable_pipeline_parameter() -> None:
    @pipeline
    def p(x: object = None) -> None:
        load()

    with pytest.raises(UnrecordableParameterError, match="pipeline 'p', parameter 'x'"):
        p.bind_parameters((), {"x": object()})


def test_wrong_arguments_to_a_step_name_it() -> None:
    @pipeline
    def bad() -> None:
        inc(1, 2)

    with pytest.raises(DefinitionError, match="step 'inc' called with the wrong arguments"):
        bad.trace({})


def test_pipeline_without_steps_is_an_error() -> None:
    @pipeline
    def empty() -> None:
        pass

    with pytest.raises(DefinitionError, match="calls no step"):
        empty.trace({})


def test_varargs_steps_are_refused_at_decoration() -> None:
    with pytest.raises(DefinitionError, match=r"\*args"):

        @step
        def bad(*values: int) -> int:
            return 0


def test_bad_pipeline_name_is_refused() -> None:
    with pytest.raises(DefinitionError, match="not allowed"):
        pipeline(name="has space")(lambda: None)


def test_with_options_returns_a_new_step() -> None:
    uncached = inc.with_options(enable_cache=False)
    assert uncached.options.enable_cache is False
    assert inc.options.enable_cache is None
    decorated = step(enable_cache=False, retries=2)(lambda x: x)
    assert decorated.options.enable_cache is False and decorated.options.retries == 2


def test_output_materializers_must_name_real_outputs() -> None:
    with pytest.raises(DefinitionError, match="unknown outputs"):
        split.with_options(output_materializers={"nope": object()})


def test_secret_looking_options_never_reach_the_record() -> None:
    from mlops_lite.execution.entrypoint import REDACTED, redact_secrets

    argv = [
        "train.py",
        "--lr",
        "0.1",
        "--api-key",
        "sk-123",
        "--db-password=hunter2",
        "--token",
        "--verbose",
    ]
    assert redact_secrets(argv) == [
        "train.py",
        "--lr",
        "0.1",
        "--api-key",
        REDACTED,
        f"--db-password={REDACTED}",
        "--token",
        # What follows a secret option is its value to some parsers, even when it
        # starts with a dash (`--password -VALUE`): better a lost flag than a leak.
        REDACTED,
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--password", "-VALUE"], ["--password", "<redacted>"]),
        (["--pass", "VALUE"], ["--pass", "<redacted>"]),
        (["--passphrase=VALUE"], ["--passphrase=<redacted>"]),
        (["--key", "VALUE"], ["--key", "<redacted>"]),
        (["--aws_secret_access_key", "VALUE"], ["--aws_secret_access_key", "<redacted>"]),
        (["-p", "VALUE"], ["-p", "<redacted>"]),
        (["-pVALUE"], ["-p<redacted>"]),
        (["--Authorization", "VALUE"], ["--Authorization", "<redacted>"]),
        (
            ["--db", "postgres://alice:VALUE@db:5432/x"],
            ["--db", "postgres://alice:<redacted>@db:5432/x"],
        ),
        (["redis://:VALUE@cache/0"], ["redis://:<redacted>@cache/0"]),
        (["-H", "Authorization: Bearer VALUE"], ["-H", "Authorization: <redacted>"]),
        (["-H", "X-Api-Key: VALUE"], ["-H", "X-Api-Key: <redacted>"]),
        (["--header=Authorization: Bearer VALUE"], ["--header=Authorization: Bearer <redacted>"]),
        (["API_TOKEN=VALUE", "lr=0.1"], ["API_TOKEN=<redacted>", "lr=0.1"]),
        (["--param", "db_password=VALUE"], ["--param", "db_password=<redacted>"]),
        (["train.py", "--lr", "0.1", "data/x.csv"], ["train.py", "--lr", "0.1", "data/x.csv"]),
        (["https://github.com/o/r.git", "-v"], ["https://github.com/o/r.git", "-v"]),
    ],
)
def test_every_spelling_of_a_secret_on_the_command_line_is_redacted(
    argv: list[str], expected: list[str]
) -> None:
    from mlops_lite.execution.entrypoint import redact_secrets

    assert redact_secrets(argv) == expected
    assert not any("VALUE" in argument for argument in redact_secrets(argv))


def test_values_handed_out_by_secret_are_redacted_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlops_lite import secret
    from mlops_lite.execution.entrypoint import redact_secrets

    monkeypatch.setenv("SOME_TOKEN", "tok-8c1f2e")
    value = secret("SOME_TOKEN")
    assert redact_secrets(["run.py", "--note", f"uses {value}"]) == [
        "run.py",
        "--note",
        "uses <redacted>",
    ]
