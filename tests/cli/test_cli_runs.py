"""The mlops-lite command as a user types it: runs list/show, logs, --json, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import git, run_script

SCRIPT = textwrap.dedent(
    """
    from mlops_lite import step, pipeline

    @step
    def hello(name: str = "world") -> str:
        print(f"hello {name}")
        return name.upper()

    @step
    def shout(text: str) -> str:
        return text + "!"

    @pipeline
    def greet(name: str = "world"):
        shout(hello(name=name))

    if __name__ == "__main__":
        run = greet()
        print("RUN", run.sha, run.name)
    """
)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_lite", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_run(project: Path) -> tuple[str, str]:
    (project / "greet.py").write_text(SCRIPT)
    git(project, "add", "greet.py")
    git(project, "commit", "-qm", "greet")
    line = next(
        x for x in run_script(project, "greet.py").stdout.splitlines() if x.startswith("RUN")
    )
    _, sha, name = line.split()
    return sha, name


def test_runs_list_shows_the_run(project: Path) -> None:
    sha, name = make_run(project)
    listing = cli(project, "runs", "list")
    assert listing.returncode == 0
    assert sha[:10] in listing.stdout and name in listing.stdout and "completed" in listing.stdout


def test_runs_list_json_and_filters(project: Path) -> None:
    sha, name = make_run(project)
    data = json.loads(cli(project, "runs", "list", "--json").stdout)
    assert [entry["sha"] for entry in data] == [sha]
    assert data[0]["pipeline"] == "greet" and data[0]["name"] == name
    assert json.loads(cli(project, "runs", "list", "--json", "--status", "failed").stdout) == []
    # A pipeline with no run is a typo more often than an empty history: say so.
    other = cli(project, "runs", "list", "--json", "--pipeline", "other")
    assert other.returncode == 1 and "no run of pipeline 'other'" in other.stderr


def test_runs_show_lists_steps_with_status_cache_duration_outputs(project: Path) -> None:
    sha, _ = make_run(project)
    second = next(
        x for x in run_script(project, "greet.py").stdout.splitlines() if x.startswith("RUN")
    ).split()[1]
    shown = cli(project, "runs", "show", second[:12])
    assert shown.returncode == 0, shown.stderr
    assert "hello" in shown.stdout and "shout" in shown.stdout and "cached" in shown.stdout
    assert "output (" in shown.stdout
    data = json.loads(cli(project, "runs", "show", sha, "--json").stdout)
    assert data["steps"]["hello"]["status"] == "completed"
    assert data["steps"]["shout"]["outputs"]["output"]["materializer"] == "builtins.msgpack"


def test_logs_prints_the_step_output(project: Path) -> None:
    sha, name = make_run(project)
    logs = cli(project, "logs", name, "hello")
    assert logs.returncode == 0 and "hello world" in logs.stdout


def test_unknown_run_is_a_one_line_error_with_nonzero_exit(project: Path) -> None:
    result = cli(project, "runs", "show", "no-such-run")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "no-such-run" in result.stderr
    assert cli(project, "logs", "no-such-run", "x").returncode != 0


def test_unknown_step_is_a_one_line_error(project: Path) -> None:
    sha, _ = make_run(project)
    result = cli(project, "logs", sha, "nope")
    assert result.returncode != 0 and "nope" in result.stderr and "hello" in result.stderr


def test_help_everywhere(project: Path) -> None:
    for args in (
        ["--help"],
        ["runs", "--help"],
        ["runs", "list", "--help"],
        ["runs", "show", "--help"],
        ["logs", "--help"],
    ):
        result = cli(project, *args)
        assert result.returncode == 0 and "usage" in result.stdout


def test_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    result = cli(tmp_path, "runs", "list")
    assert result.returncode != 0 and "git init" in result.stderr


def test_version(project: Path) -> None:
    result = cli(project, "--version")
    assert result.returncode == 0 and result.stdout.startswith("mlops-lite ")


def test_each_command_line_registers_its_commands_module_only_and_help_lists_them_all(
    project: Path,
) -> None:
    import argparse

    from mlops_lite import cli as command

    def commands(parser: argparse.ArgumentParser) -> set[str]:
        (subparsers,) = [
            action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
        ]
        return set(subparsers.choices)

    everything = commands(command.build_parser())
    assert everything == set(command._COMMAND_MODULES)  # the map names every command
    for name in everything:
        assert name in commands(command.build_parser(name))
        assert commands(command.build_parser(name)) < everything
    assert command._command_of(["-C", "runs", "push", "x"]) == "push"  # -C's value is a folder
    assert command._command_of(["--version"]) is None
    assert command._command_of(["-h", "push"]) is None  # top-level help: every command
    assert command._command_of(["push", "-h"]) == "push"
    assert "fsck" in cli(project, "-h", "push").stdout
    # A typo is told every command there is, as before.
    result = cli(project, "psuh")
    assert result.returncode == 2 and "'push'" in result.stderr and "'fsck'" in result.stderr
    listed = cli(project, "--help").stdout
    assert all(name in listed for name in everything)
    assert cli(project, "-C", str(project), "runs", "list").returncode == 0
