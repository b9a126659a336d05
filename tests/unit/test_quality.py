"""The code stays as clean as pyproject.toml asks: ruff, ruff format and mypy run with the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_is_clean() -> None:
    pytest.importorskip("ruff")
    result = run_tool("ruff", "check", "mlops_lite", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    pytest.importorskip("ruff")
    result = run_tool("ruff", "format", "--check", "mlops_lite", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy")
    result = run_tool("mypy", "--config-file", "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
