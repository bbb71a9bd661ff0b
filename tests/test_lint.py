"""ruff and mypy --strict (on the public API) as tests, so `python -m pytest` is the one check;
their settings are in pyproject.toml."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed: pip install -e '.[test]'")
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = _run("ruff", "check", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes_on_the_public_modules():
    result = _run("mypy")  # files and --strict from [tool.mypy]
    assert result.returncode == 0, result.stdout + result.stderr
