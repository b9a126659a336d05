"""Stacks in pyproject.toml, how a run's orchestrator is chosen, the ready queue, Step.map."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mlops_lite import pipeline, step
from mlops_lite.definition.steps import unmapped
from mlops_lite.errors import ConfigError, DefinitionError
from mlops_lite.execution import stacks
from mlops_lite.execution.plan import ReadyQueue


def tool_table(root: Path) -> dict[str, object]:
    return tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mlops-lite"]  # type: ignore[no-any-return]


# -- reading and writing stacks ------------------------------------------------------


def test_without_configuration_the_default_stack_is_local(tmp_path: Path) -> None:
    assert stacks.list_stacks(str(tmp_path)) == {"default": stacks.Stack("default")}
    assert stacks.active_stack_name(str(tmp_path)) == ("default", "default")
    choice = stacks.choose_orchestrator(str(tmp_path), None, {})
    assert (choice.stack, choice.orchestrator, dict(choice.settings), choice.source) == (
        "default",
        "local",
        {},
        "stack",
    )


def test_register_and_set_keep_the_rest_of_pyproject_intact(tmp_path: Path) -> None:
    original = (
        '[project]\nname = "demo"  # a comment worth keeping\n\n[tool.ruff]\nline-length = 100\n'
    )
    (tmp_path / "pyproject.toml").write_text(original)
    stacks.register_stack(str(tmp_path), stacks.Stack("fast", "pool", {"workers": 2}))
    stacks.set_active_stack(str(tmp_path), "fast")
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(original)
    assert tool_table(tmp_path) == {
        "active_stack": "fast",
        "stacks": {"fast": {"orchestrator": "pool", "workers": 2}},
    }
    assert text.index("[tool.mlops-lite]") < text.index("[tool.mlops-lite.stacks.fast]")

    # Replacing a stack rewrites its table only; a second stack is added after it.
    stacks.register_stack(
        str(tmp_path), stacks.Stack("fast", "dask", {"address": "tcp://10.0.0.5:8786"})
    )
    stacks.register_stack(str(tmp_path), stacks.Stack("wide", "pool", {"workers": 8}))
    stacks.set_active_stack(str(tmp_path), "wide")
    assert tool_table(tmp_path) == {
        "active_stack": "wide",
        "stacks": {
            "fast": {"orchestrator": "dask", "address": "tcp://10.0.0.5:8786"},
            "wide": {"orchestrator": "pool", "workers": 8},
        },
    }
    assert (tmp_path / "pyproject.toml").read_text().startswith(original)
    assert stacks.active_stack(str(tmp_path)) == stacks.Stack("wide", "pool", {"workers": 8})


def test_register_creates_pyproject_when_missing(tmp_path: Path) -> None:
    stacks.register_stack(str(tmp_path), stacks.Stack("ci", "pool", {}))
    assert tool_table(tmp_path) == {"stacks": {"ci": {"orchestrator": "pool"}}}


def test_an_inline_table_the_editor_cannot_handle_is_refused_untouched(tmp_path: Path) -> None:
    original = '[tool.mlops-lite]\nstacks = { fast = { orchestrator = "pool" } }\n'
    (tmp_path / "pyproject.toml").write_text(original)
    with pytest.raises(ConfigError, match="add this by hand"):
        stacks.register_stack(str(tmp_path), stacks.Stack("wide", "pool", {"workers": 8}))
    assert (tmp_path / "pyproject.toml").read_text() == original


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('orchestrator = "spark"', "unknown orchestrator 'spark'"),
        ('orchestrator = "pool"\nworker = 2', "unknown setting\\(s\\) worker"),
    ],
)
def test_a_wrong_stack_is_a_config_error_naming_it(
    tmp_path: Path, table: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.mlops-lite.stacks.broken]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        stacks.list_stacks(str(tmp_path))


def test_bad_names_and_the_builtin_default_cannot_be_registered(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        stacks.register_stack(str(tmp_path), stacks.Stack("a b", "pool"))
    with pytest.raises(ConfigError, match="builtin"):
        stacks.register_stack(str(tmp_path), stacks.Stack("default", "pool"))
    with pytest.raises(ConfigError, match="no stack named 'nope'"):
        stacks.set_active_stack(str(tmp_path), "nope")
    assert not (tmp_path / "pyproject.toml").exists()


# -- choosing the orchestrator ----------------------------------------------------------


def test_precedence_environment_then_pipeline_then_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path)
    stacks.register_stack(root, stacks.Stack("fast", "pool", {"workers": 3}))
    stacks.register_stack(root, stacks.Stack("cluster", "dask", {"address": "tcp://h:1"}))
    stacks.set_active_stack(root, "fast")

    choice = stacks.choose_orchestrator(root, None, {})
    assert (choice.stack, choice.orchestrator, dict(choice.settings)) == (
        "fast",
        "pool",
        {"workers": 3},
    )
    # Pipeline options win over the stack; workers from with_options win over the stack's.
    choice = stacks.choose_orchestrator(root, "pool", {"workers": 5, "fail_fast": True})
    assert (choice.orchestrator, dict(choice.settings), choice.source) == (
        "pool",
        {"workers": 5},
        "pipeline",
    )
    # The stack's settings only configure the stack's own orchestrator.
    assert dict(stacks.choose_orchestrator(root, "local", {}).settings) == {}

    monkeypatch.setenv("MLOPS_LITE_STACK", "cluster")
    choice = stacks.choose_orchestrator(root, None, {})
    assert (choice.stack, choice.orchestrator, dict(choice.settings)) == (
        "cluster",
        "dask",
        {"address": "tcp://h:1"},
    )
    monkeypatch.setenv("MLOPS_LITE_ORCHESTRATOR", "local")
    choice = stacks.choose_orchestrator(root, "pool", {})
    assert (choice.stack, choice.orchestrator, choice.source) == ("cluster", "local", "environment")


def test_an_unknown_active_stack_or_orchestrator_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_LITE_STACK", "missing")
    with pytest.raises(ConfigError, match="from environment variable MLOPS_LITE_STACK"):
        stacks.choose_orchestrator(str(tmp_path), None, {})
    monkeypatch.delenv("MLOPS_LITE_STACK")
    monkeypatch.setenv("MLOPS_LITE_ORCHESTRATOR", "ray")
    with pytest.raises(
        ConfigError, match="unknown orchestrator 'ray' \\(from MLOPS_LITE_ORCHESTRATOR\\)"
    ):
        stacks.choose_orchestrator(str(tmp_path), None, {})


def test_pool_workers_must_be_a_positive_integer() -> None:
    from mlops_lite.execution.orchestrators import create_orchestrator

    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        create_orchestrator("pool", {"workers": 0})
    assert create_orchestrator("pool", {"workers": "3"}).capacity == 3


# -- the ready queue --------------------------------------------------------------


def test_ready_queue_hands_out_in_trace_order_once_upstream_is_done() -> None:
    queue = ReadyQueue({"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["b", "d"]})
    assert [queue.pop(), queue.pop()] == ["a", "d"]
    assert not queue
    queue.done("d")
    assert not queue  # e still waits for b
    queue.done("a")
    assert queue.pop() == "b"
    queue.done("b")
    assert [queue.pop(), queue.pop()] == ["c", "e"]


# -- Step.map (definition only) ---------------------------------------------------------


@step
def evaluate(data: list[int], lr: float, tags: list[str]) -> float:
    return sum(data) * lr


@step
def produce() -> list[int]:
    return [1, 2]


@step
def gather(scores: list[float]) -> float:
    return max(scores)


def test_map_traces_one_invocation_per_element_and_gathers_them() -> None:
    @pipeline
    def sweep() -> None:
        scores = evaluate.map(data=produce(), lr=[0.1, 0.2, 0.3], tags=unmapped(["x", "y"]))
        gather(scores)

    trace = sweep.trace({})
    assert list(trace.invocations) == [
        "produce",
        "evaluate_0",
        "evaluate_1",
        "evaluate_2",
        "gather",
    ]
    assert trace.invocations["evaluate_1"].parameters == {"lr": 0.2, "tags": ["x", "y"]}
    assert trace.invocations["evaluate_1"].upstream == ["produce"]
    gathered = trace.invocations["gather"].gathered["scores"]
    assert [h.invocation for h in gathered] == ["evaluate_0", "evaluate_1", "evaluate_2"]
    assert trace.invocations["gather"].upstream == ["evaluate_0", "evaluate_1", "evaluate_2"]


def test_map_needs_a_list_of_equal_lengths_inside_a_pipeline() -> None:
    with pytest.raises(DefinitionError, match="inside a @pipeline"):
        evaluate.map(data=[1], lr=[0.1], tags=unmapped([]))

    @pipeline
    def uneven() -> None:
        evaluate.map(data=produce(), lr=[0.1, 0.2], tags=[["a"]])

    with pytest.raises(DefinitionError, match="differ in length"):
        uneven.trace({})

    @pipeline
    def nothing_mapped() -> None:
        evaluate.map(data=produce(), lr=0.1, tags=unmapped([]))

    with pytest.raises(DefinitionError, match="at least one argument given as a list"):
        nothing_mapped.trace({})
