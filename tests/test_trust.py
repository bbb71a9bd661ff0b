"""Records from elsewhere never make `exp` act outside its own experiments (issue 9, cases 1-2).

A record that arrives by merge, copy or a git union is data written by someone else: it is
checked at the door, never used to build a path outside the ledger's folders, and never
gets a process signalled unless that process is provably this host's runner of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid as uuidlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expledger.cli import main
from expledger.liveness import this_host
from expledger.store import open_store

from .conftest import LEDGER, needs_postgres


def _record(**fields) -> dict:
    base = {"id": "EXP-001", "name": "from elsewhere", "status": "QUEUED", "uuid": str(uuidlib.uuid4()), "rev": 3,
            "created": "2026-01-01T00:00:00+00:00", "updated": "2026-01-01T00:00:00+00:00", "v": 1}
    return {**base, **fields}


def _ledger_with(path: Path, *records: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("started", ["2026-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00"])
def test_a_merged_running_record_cannot_get_a_process_killed(exp, tmp_path, store_url, sleeper, started):
    other = _ledger_with(tmp_path / "other" / "experiments.jsonl", _record(
        status="RUNNING", started=started, runner={"host": this_host(), "pid": sleeper.pid, "attempt": 1}))
    assert exp("--store", store_url, "merge", other).code == 0
    result = exp("--store", store_url, "cancel", "1")
    assert sleeper.poll() is None, "a process named by a merged record was signalled"
    if result.code == 0:
        assert "could not be verified" in result.err and "not signalled" in result.err
    else:  # the next read already found no runner of ours behind it and marked it lost
        assert "already FAILED" in result.err
    with open_store(store_url) as store:
        assert store.get(1).status.value in ("CANCELLED", "FAILED")  # not RUNNING forever


def test_a_crafted_uuid_is_refused_at_the_door_and_writes_nothing_outside(exp, tmp_path, ledger):
    workspace = tmp_path / "a" / "b" / "ws"
    workspace.mkdir(parents=True)
    os.chdir(workspace)
    evil = _record(uuid="../../../../../outside/x", command="echo hi")
    other = _ledger_with(tmp_path / "a" / "b" / "other" / "experiments.jsonl", evil)
    merged = exp("merge", other, "--json")
    assert merged.code == 0
    report = json.loads(merged.out)["report"]
    assert report["added"] == 0 and report["refused"] and "uuid" in report["refused"][0]["reason"]
    assert exp("run", "--id", "1", "--", "echo", "hi").code == 1  # nothing was merged to run
    # The same line arriving by a git union is skipped with a warning, never used.
    own = workspace / LEDGER
    with open(own, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(evil) + "\n")
    listed = exp("list")
    assert "skipped unreadable lines" in listed.err
    assert exp("run", "--id", "1", "--", "echo", "hi").code == 1
    assert not (tmp_path / "outside").exists() and not any(tmp_path.parent.glob("outside"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.parametrize("runner_dir", ["/etc", "../../..", "/tmp/elsewhere/EXP-001-zzzzzzzz"])
def test_a_recorded_run_folder_outside_the_ledger_is_not_used(tmp_path, runner_dir):
    path = tmp_path / LEDGER
    with open_store(str(path)) as store:
        exp = store.add(name="x")
        import dataclasses

        crafted = dataclasses.replace(exp, runner={"dir": runner_dir})
        assert store.run_dir(crafted) == store.runs_root / f"EXP-001-{exp.uuid[:8]}"


HOSTILE_TEXT = st.sampled_from(["../../../../x", "/etc/passwd", "..", "", "EXP-001/../../x", "\x00", "EXP-١",
                                "exp-1", "EXP-99999999999", "a" * 300, "2099-01-01T00:00:00+00:00", "not a time"])
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False), HOSTILE_TEXT,
                   st.text(max_size=20), st.lists(HOSTILE_TEXT, max_size=2))
RUNNER = st.fixed_dictionaries({}, optional={
    "host": st.one_of(st.just(this_host()), VALUES), "pid": VALUES, "pid_start": VALUES, "attempt": VALUES,
    "dir": VALUES, "token": st.one_of(VALUES, st.just("0" * 32)), "worker": VALUES})
RECORDS = st.fixed_dictionaries({"id": st.one_of(st.just("EXP-001"), st.just("EXP-002"), HOSTILE_TEXT, VALUES)}, optional={
    "uuid": st.one_of(st.builds(lambda: str(uuidlib.uuid4())), HOSTILE_TEXT, VALUES),
    "status": st.one_of(st.sampled_from(["QUEUED", "RUNNING", "SUCCESS", "running"]), VALUES),
    "name": VALUES, "command": st.one_of(st.just("touch pwned"), VALUES), "workdir": VALUES,
    "started": VALUES, "created": VALUES, "updated": VALUES, "rev": VALUES, "aliases": VALUES,
    "runner": st.one_of(RUNNER, VALUES), "params": st.one_of(st.just({"a\\b": 1}), VALUES), "tags": VALUES,
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORDS, min_size=1, max_size=4))
def test_merging_random_records_never_raises_and_touches_nothing_outside(tmp_path_factory, capsys, records):
    root = tmp_path_factory.mktemp("tree")
    inner = root / "x" / "y" / "z"
    workspace, other = inner / "ws", inner / "other" / "experiments.jsonl"
    workspace.mkdir(parents=True)
    sentinel = subprocess.Popen(["sleep", "300"])
    for record in records:
        runner = record.get("runner")
        if isinstance(runner, dict) and "pid" in runner and runner["pid"] is None:
            runner["pid"] = sentinel.pid
    other.parent.mkdir(parents=True)
    other.write_text("".join(json.dumps(r, default=str) + "\n" for r in records), encoding="utf-8")
    previous = os.getcwd()
    os.chdir(workspace)
    try:
        codes = [main(["merge", str(other)]), main(["list", "--limit", "0"]), main(["queue"])]
        for number in (1, 2):
            codes.append(main(["cancel", str(number)]))
            codes.append(main(["show", str(number)]))
        codes.append(main(["run", "--id", "1", "--", "true"]))
        capsys.readouterr()
        assert all(code in (0, 1, 2) for code in codes), codes
        assert sentinel.poll() is None, "a process named by a merged record was signalled"
        outside = [p for p in root.rglob("*") if inner not in p.parents and p != inner and p not in inner.parents]
        assert outside == [], outside
    finally:
        os.chdir(previous)
        sentinel.kill()
        sentinel.wait()


def test_a_worker_takes_only_what_its_options_trust(exp_proc, tmp_path):
    env = {**os.environ, "EXP_MACHINE": "lab"}
    assert exp_proc("add", "--name", "ours", "--command", "true", "--tag", "mine", cwd=tmp_path, env=env).code == 0
    stranger = _record(id="EXP-002", uuid=str(uuidlib.uuid4()), command="touch pwned", tags=["mine"],
                       provenance={"added_on": "somewhere-else"}, workdir=str(tmp_path))
    other = _ledger_with(tmp_path / "other" / "experiments.jsonl", stranger)
    assert exp_proc("merge", other, cwd=tmp_path, env=env).code == 0
    result = exp_proc("worker", "--until-empty", "--poll", "0.05", "--only-from-host", "lab", "--only-tag", "mine",
                      "--json", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    assert [r["experiment"]["name"] for r in json.loads(result.out)["ran"]] == ["ours"]
    assert not (tmp_path / "pwned").exists()
    untagged = exp_proc("worker", "--until-empty", "--poll", "0.05", "--only-tag", "nobody-has-it", "--json",
                        cwd=tmp_path, env=env)
    assert json.loads(untagged.out)["ran"] == [] and not (tmp_path / "pwned").exists()


def test_secret_looking_arguments_are_stored_hidden_when_asked(exp_proc, tmp_path):
    env = {**os.environ, "EXP_REDACT_ARGS": "1"}
    args = ["echo", "--token", "tok-SECRET1", "--api-key=key-SECRET2", "HF_TOKEN=hf-SECRET3", "--lr", "0.1"]
    result = exp_proc("run", "--name", "x", "--", *args, cwd=tmp_path, env=env)
    assert result.code == 0 and "tok-SECRET1 --api-key=key-SECRET2 HF_TOKEN=hf-SECRET3" in result.out  # ran as typed
    stored = (tmp_path / LEDGER).read_text(encoding="utf-8")
    assert "SECRET" not in stored
    shown = json.loads(exp_proc("show", "1", "--json", cwd=tmp_path).out)["experiment"]
    assert shown["command"] == "echo --token '***' '--api-key=***' 'HF_TOKEN=***' --lr 0.1"
    assert shown["provenance"]["argv"][1:4] == ["--token", "***", "--api-key=***"]
    plain = exp_proc("run", "--name", "y", "--", "echo", "--token", "visible", cwd=tmp_path)
    assert plain.code == 0 and "visible" in (tmp_path / LEDGER).read_text(encoding="utf-8")  # opt-in only


def test_run_folders_and_logs_are_private_to_their_owner(exp_proc, tmp_path):
    old = os.umask(0o022)
    try:
        assert exp_proc("run", "--name", "x", "--", "echo", "hi", cwd=tmp_path).code == 0
    finally:
        os.umask(old)
    (folder,) = (tmp_path / LEDGER).parent.joinpath("runs").iterdir()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "stdout.log").stat().st_mode & 0o777 == 0o600


@needs_postgres
def test_a_database_row_that_fails_the_checks_is_passed_over_by_workers(postgres_url, tmp_path, capsys):
    with open_store(postgres_url) as store:
        bad = store.add(name="tampered", command="touch pwned", workdir=str(tmp_path), priority=9)
        good = store.add(name="fine", command="true", workdir=str(tmp_path))
        store.db.execute("UPDATE experiments SET data = jsonb_set(data, '{runner}', '{\"pid\": \"1; rm\"}') "
                         "WHERE uuid = %s", (bad.uuid,))
        claimed = store.claim(runner={"host": "elsewhere", "pid": 1})
    assert claimed is not None and claimed.uuid == good.uuid
    assert "fails the checks" in capsys.readouterr().err
