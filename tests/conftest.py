"""Shared fixtures: every test runs in its own folder with a clean environment.

`exp` runs the CLI in-process (fast, exact output); `exp_proc` runs it as a real
subprocess, as users and assistants do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from expledger.cli import main

LEDGER = Path("memory/experiments/experiments.jsonl")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Run in tmp_path, with no store or machine leaking in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("EXP_") and name != "EXP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("EXP_MACHINE", "testbox")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def ledger(tmp_path) -> Path:
    """Where the default store of a test's workspace lives."""
    return tmp_path / LEDGER


@pytest.fixture
def exp(capsys):
    """Run `exp ARGS…` in this process and return its exit code, stdout and stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_exp(*args: str, cwd=None, env=None, timeout=60) -> Result:
    """Run `python -m expledger ARGS…` as a real subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "expledger", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def exp_proc():
    return run_exp


POSTGRES_URL = os.environ.get("EXP_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="set EXP_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) "
                             "to run the PostgreSQL tests; .ci/run sets it")


@pytest.fixture
def postgres_url():
    """A store URL on the test server, in a fresh schema dropped afterwards."""
    yield from _schema()


@pytest.fixture(scope="module")
def postgres_schema():
    """Like postgres_url, shared by one test module."""
    yield from _schema()


@pytest.fixture(params=["jsonl", "postgres"])
def store_url(request, tmp_path):
    """The URL of an empty store of each kind: JSONL in tmp_path, PostgreSQL in a fresh schema."""
    if request.param == "jsonl":
        yield str(tmp_path / "ledger" / "experiments.jsonl")
    else:
        yield request.getfixturevalue("postgres_url")


def _schema():
    if not POSTGRES_URL:
        pytest.skip("set EXP_TEST_POSTGRES_URL to run the PostgreSQL tests; .ci/run sets it")
    import uuid

    import psycopg

    schema = f"exp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
