"""No output of any command shows the store URL's password (issue 9, case 3).

The test server trusts local connections, so a URL with a password still connects: every
command really runs against PostgreSQL with a secret in its URL, and stdout, stderr, the
`--json` envelope, the run folders and the records are searched for that secret.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from expledger.redact import passwords, redact

from .conftest import needs_postgres, run_exp

SECRET = "Hunter2xyzzy"


def _with_password(url: str, shape: str) -> str:
    """The test server's URL carrying SECRET in one of the shapes users write."""
    scheme, rest = url.split("://", 1)
    user_host, _, path = rest.partition("/")
    user, at, host = user_host.rpartition("@")
    user = user if at else "postgres"
    if shape == "userinfo":
        return f"{scheme}://{user}:{SECRET}@{host}/{path}"
    if shape == "at-encoded":
        return f"{scheme}://{user}:{SECRET}%40x@{host}/{path}"
    joiner = "&" if "?" in path else "?"
    return f"{scheme}://{user}@{host}/{path}{joiner}password={SECRET}"


@pytest.mark.parametrize("text", [
    f"postgresql://me:{SECRET}@db/x",
    f"cannot connect to 'postgresql://me:{SECRET}@db:5432/x?sslmode=require': refused",
    f"postgresql://me:a@{SECRET}@db/x",
    f"postgresql://me@db/x?password={SECRET}&sslmode=require",
    f"host=db password={SECRET} dbname=x",
    f"host=db password='{SECRET} 2' dbname=x",
])
def test_redact_hides_every_shape(text):
    assert SECRET not in redact(text)
    assert "***" in redact(text)


def test_redact_keeps_urls_without_a_secret():
    for text in ("postgresql://me@db:5432/x", "memory/experiments/experiments.jsonl", "a:b@c is a name",
                 "postgresql://db/x?sslmode=require"):
        assert redact(text) == text


def test_passwords_of_a_url():
    assert passwords(f"postgresql://me:{SECRET}@db/x") >= {SECRET}
    assert passwords(f"postgresql://me@db/x?password={SECRET}") == {SECRET}
    assert passwords("postgresql://me@db/x") == set()


@needs_postgres
@pytest.mark.parametrize("shape", ["userinfo", "param", "at-encoded"])
def test_no_command_prints_the_password(shape, postgres_url, tmp_path):
    url = _with_password(postgres_url, shape)
    env = {**os.environ, "EXP_STORE": url, "EXP_RUNS_DIR": str(tmp_path / "runs"), "EXP_HEARTBEAT": "0.2"}
    local = tmp_path / "local.jsonl"
    outputs = []

    def exp(*args, code=None):
        result = run_exp(*args, env=env, cwd=tmp_path)
        outputs.append((args, result))
        if code is not None:
            assert result.code == code, (args, result)
        return result

    # The messages for every shape; the rest of the commands once (they share the path).
    exp("add", "--name", "queued", "--command", "echo hi", code=0)
    exp("worker", "--once", code=0)
    exp("show", "999", code=1)
    exp("show", "999", "--json", code=1)
    exp("copy", "--from", url, "--to", str(local), code=0)
    broken = url + ("&" if "?" in url else "?") + "bogus=1"
    exp("--store", broken, "list", "--json", code=2)
    if shape == "userinfo":
        exp("add", "--name", "by hand", code=0)
        exp("run", "--name", "ran", "--", "echo", "done", code=0)
        exp("show", "1", "--json", code=0)
        exp("doctor", "--json")
        exp("cancel", "2")
        exp("copy", "--from", str(local), "--to", url, "--json", code=0)
        exp("merge", str(local), code=0)
        exp("--store", url.replace("postgresql", "postgresq", 1), "list", code=2)
        exp("--store", url.replace(":5432/", ":1/", 1), "list", code=2)

    for args, result in outputs:
        assert SECRET not in result.out + result.err, args
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "stdout.log" for path in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert any(re.search(r":\*\*\*@|password=\*\*\*", r.err) for _, r in outputs)


@needs_postgres
def test_a_raw_at_in_the_password_is_refused_without_showing_it(postgres_url, tmp_path):
    scheme, rest = postgres_url.split("://", 1)
    host_path = rest.rpartition("@")[2]
    url = f"{scheme}://postgres:ab@{SECRET}@{host_path}"
    result = run_exp("--store", url, "list", "--json", cwd=tmp_path)
    assert result.code == 2
    assert SECRET not in result.out + result.err
    assert "%40" in result.err and len(result.err.strip().splitlines()) == 1
    assert not Path(tmp_path, "memory").exists()
