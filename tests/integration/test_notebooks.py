"""Fingerprints follow code wherever it lives: notebook cells, `python -i`, exec'd strings.

The notebook is executed by a real Jupyter kernel (nbclient + ipykernel); each
"edit" is what re-running an edited cell does: the cell's new text executes in
the same kernel, rebinding names in the same namespace.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_lite import pipeline, step
from mlops_lite.definition import fingerprint

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

RUN = "print(run_it())"

CELLS = [
    "from mlops_lite import step, pipeline",
    "SCALE = 2",
    "def helper(x):\n    return x * SCALE",
    "@step\ndef compute(x: int) -> int:\n    return helper(x)\n\n"
    "@pipeline\ndef notebook_pipeline(x: int = 10):\n    compute(x=x)",
    "def run_it():\n    step_run = notebook_pipeline().steps['compute']\n"
    "    return step_run.output.load(), step_run.cached",
    RUN,  # (20, False): first run
    RUN,  # (20, True): nothing changed
    "SCALE = 3",  # the constant cell, edited
    RUN,  # (30, False)
    "def helper(x):\n    return x * SCALE * 10",  # the helper cell, edited
    RUN,  # (300, False)
    "def unrelated():\n    return 'not used by the step'",
    "FEATURES = ['a', 'b']",
    RUN,  # (300, True): unrelated edits keep the cache
]


def test_editing_helper_and_constant_cells_invalidates_the_cache_and_unrelated_cells_do_not(
    project: Path,
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(project)}}
    )
    client.execute()

    printed = [
        "".join(
            output.get("text", "") for output in cell.outputs if output.get("name") == "stdout"
        ).strip()
        for cell in notebook.cells
        if cell.source == RUN
    ]
    assert printed == ["(20, False)", "(20, True)", "(30, False)", "(300, False)", "(300, True)"]


def test_python_interactive_redefinitions_invalidate_the_cache(project: Path) -> None:
    (project / "script.py").write_text(
        textwrap.dedent(
            """
            from mlops_lite import step, pipeline
            SCALE = 2
            def helper(x):
                return x * SCALE
            @step
            def compute(x: int) -> int:
                return helper(x)
            @pipeline
            def interactive(x: int = 10):
                compute(x=x)
            def run_it():
                step_run = interactive().steps["compute"]
                return step_run.output.load(), step_run.cached
            """
        )
    )
    typed = "print(run_it())\nSCALE = 3\nprint(run_it())\ndef helper(x): return x * 100\n\n"
    typed += "print(run_it())\nprint(run_it())\n"
    completed = subprocess.run(
        [sys.executable, "-q", "-i", "script.py"],
        input=typed, cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [
        "(20,", "False)", "(30,", "False)", "(1000,", "False)", "(1000,", "True)",
    ]  # fmt: skip


def test_code_from_exec_strings_is_fingerprinted_with_what_it_reaches() -> None:
    namespace: dict[str, object] = {}
    exec("SCALE = 2\ndef helper(x):\n    return x * SCALE\n", namespace)
    exec("def compute(x):\n    return helper(x)\n", namespace)
    compute = namespace["compute"]
    first = fingerprint.code_fingerprint(compute)
    assert fingerprint.code_fingerprint(compute) == first

    exec("SCALE = 3\n", namespace)
    changed_constant = fingerprint.code_fingerprint(compute)
    assert changed_constant != first

    exec("def helper(x):\n    return x + SCALE\n", namespace)
    changed_helper = fingerprint.code_fingerprint(compute)
    assert changed_helper not in (first, changed_constant)

    exec("def unrelated():\n    return 1\nOTHER = 5\n", namespace)
    assert fingerprint.code_fingerprint(compute) == changed_helper


def test_rebound_container_constants_and_class_attributes_are_seen() -> None:
    namespace: dict[str, object] = {}
    exec(
        "FEATURES = ['a']\nclass Model:\n    DEPTH = 2\n"
        "def compute():\n    return FEATURES, Model.DEPTH\n",
        namespace,
    )
    compute = namespace["compute"]
    first = fingerprint.code_fingerprint(compute)
    namespace["FEATURES"].append("b")  # type: ignore[attr-defined]
    assert fingerprint.code_fingerprint(compute) == first  # state the step changes: no miss
    exec("FEATURES = ['a', 'c']\n", namespace)  # the cell, edited and run again
    second = fingerprint.code_fingerprint(compute)
    assert second != first
    namespace["Model"].DEPTH = 3  # type: ignore[attr-defined]
    assert fingerprint.code_fingerprint(compute) != second


def test_a_step_defined_in_a_test_module_still_hits_its_memo() -> None:
    @step
    def stable(x: int) -> int:
        return x

    @pipeline
    def unused() -> None:
        stable(1)

    first = fingerprint.code_fingerprint(stable.entrypoint)
    assert fingerprint._cache[id(stable.entrypoint)][1] == first
    assert fingerprint.code_fingerprint(stable.entrypoint) == first
