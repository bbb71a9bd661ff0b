"""Fixtures for the dashboard: a TestClient over each store kind, and a real `exp ui` server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the ui extra: pip install 'expledger[ui]'")
pytest.importorskip("uvicorn", reason="the dashboard needs the ui extra: pip install 'expledger[ui]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")

from starlette.testclient import TestClient

from expledger.store import open_store
from expledger.web.server import build_app


@pytest.fixture
def ledger_store(store_url):
    """The store the dashboard under test serves, for the test to fill and check."""
    with open_store(store_url) as store:
        yield store


@pytest.fixture
def client(store_url, ledger_store):
    with TestClient(build_app(store_url), base_url="http://127.0.0.1") as test_client:
        yield test_client


@contextmanager
def served(*args: str, cwd=None, env=None):
    """A real `exp ui --port 0 --json …` in a subprocess; yields its start-up JSON; stopped by its pid."""
    proc = subprocess.Popen([sys.executable, "-m", "expledger", "ui", "--port", "0", "--json", *args], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"exp ui did not start: {proc.stderr.read()}")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
