"""The operations in expledger.ops: each result's to_json() is exactly the CLI's --json payload,
so the web API and the MCP server, which send to_json(), show what `exp … --json` shows."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from expledger import cli
from expledger.errors import BadInput
from expledger.ops import check, compare, doctor, record, search, show, sync
from expledger.store import open_store


@pytest.fixture
def ledger_store(ledger):
    with open_store(str(ledger)) as store:
        record.add(store, name="a", task="asr", model="m", params={"lr": 0.1})
        record.result(store, 1, status="success", metrics={"acc": 0.8})
        record.add(store, name="b", task="asr", model="m", params={"lr": 0.01})
        record.result(store, 2, status="success", metrics={"acc": 0.9, "loss": float("nan")})
        record.add(store, name="c", task="asr", model="m", params={"lr": 0.001}, priority=3)
        yield store


def _payload(exp, *args) -> dict:
    result = exp(*args, "--json")
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert (payload.pop("ok"), payload.pop("version")) == (True, 1)
    return payload


@pytest.mark.parametrize("args, call", [
    (["list"], lambda s: search.list_experiments(s)),
    (["list", "--status", "success", "--limit", "1", "--offset", "1"],
     lambda s: search.list_experiments(s, status="success", limit=1, offset=1)),
    (["queue"], lambda s: search.queue(s)),
    (["show", "exp-2"], lambda s: show.show(s, "exp-2")),
    (["compare", "1", "2", "--lower", "acc"], lambda s: compare.compare(s, ["1", "2"], lower={"acc"})),
    (["compare", "--where", "status = success", "--baseline", "3"],
     lambda s: compare.compare(s, where="status = success", baseline="3")),
    (["check", "--task", "asr", "--model", "m", "--params", '{"lr": 1e-2}'],
     lambda s: check.check(s, task="asr", model="m", params={"lr": 0.01})),
])
def test_to_json_is_the_cli_payload(exp, ledger_store, args, call):
    assert json.loads(json.dumps(call(ledger_store).to_json())) == _payload(exp, *args)


def test_a_list_is_paged_with_its_total(ledger_store):
    first = search.list_experiments(ledger_store, sort="id", limit=2)
    assert ([e.name for e in first.experiments], first.total, first.truncated) == (["a", "b"], 3, True)
    rest = search.list_experiments(ledger_store, sort="id", limit=2, cursor=first.next_cursor)
    assert ([e.name for e in rest.experiments], rest.offset, rest.next_cursor) == (["c"], 2, None)


def test_operations_refuse_bad_input_before_touching_the_store(ledger_store, ledger):
    before = ledger.read_bytes()
    with pytest.raises(BadInput):
        show.show(ledger_store, "nonsense")
    with pytest.raises(BadInput):
        compare.compare(ledger_store, ["1"])
    with pytest.raises(BadInput):
        check.check(ledger_store)
    with pytest.raises(BadInput):
        search.list_experiments(ledger_store, sort="colour")
    assert ledger.read_bytes() == before



def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_doctor_counts_lines_only_where_a_store_has_them(exp, store_url):
    with open_store(store_url) as store:
        for name in "abc":
            record.add(store, name=name)
        report = doctor.doctor(store)
    jsonl = not store_url.startswith("postgresql")
    assert report.holds == ("3 experiments in 3 lines" if jsonl else "3 experiments")
    shown = exp("--store", store_url, "doctor")
    assert shown.code == 0 and "None" not in shown.out
    assert ("3 experiments in 3 lines" if jsonl else "3 experiments: 3 queued") in shown.out


def test_doctor_says_what_became_of_each_lost_run(exp, store_url):
    from expledger.liveness import this_host

    dead = {"host": this_host(), "pid": _dead_pid(), "attempt": 1}
    with open_store(store_url) as store:
        record.add(store, name="retried", status="running", runner={**dead, "max_attempts": 2})
        record.add(store, name="given up", status="running", runner={**dead, "max_attempts": 1})
        report = doctor.doctor(store)
    lost = [p for p in report.problems if p["kind"] == "lost_run"]
    assert [(p["fixed"], p["severity"]) for p in lost] == [(True, "error")] * 2 and report.healthy
    retried, given_up = (p["message"] for p in lost)
    assert retried.startswith("EXP-001 was RUNNING but lost: no heartbeat") and "None" not in retried
    assert retried.endswith("; re-queued for attempt 2 of 2")
    assert given_up.startswith("EXP-002 was RUNNING but lost: no heartbeat") and given_up.endswith("; marked FAILED")


def test_merge_and_copy_report_what_they_did(tmp_path):
    laptop, lab, other = (str(tmp_path / name / "experiments.jsonl") for name in ("laptop", "lab", "other"))
    with open_store(laptop) as store:
        record.add(store, name="from the laptop")
    with open_store(lab) as store:
        record.add(store, name="from the lab")
        merged = sync.merge(store, laptop)
        body = merged.to_json()["report"]
        assert set(body) == {"added", "updated", "unchanged", "step_series", "renumbered", "refused",
                             "conflicts"} and body["added"] == 1
        assert [(m["was"], m["id"]) for m in merged.renumbered] == [("EXP-001", "EXP-002")]
        again = sync.merge(store, laptop)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 1)  # nothing new
        with pytest.raises(BadInput, match="same store"):
            sync.merge(store, lab)
    copied = sync.copy(lab, other)
    assert (copied.added, copied.target) == (2, other)


SRC = Path(cli.__file__).parent
FACES = ["cli.py", "web/api.py", "web/server.py", "mcp_server.py",
         *sorted(str(p.relative_to(SRC)) for p in (SRC / "commands").glob("*.py"))]


def _store_calls(path: Path) -> list[str]:
    """Store methods called on a name `store` or on `open_ledger()` in a module."""
    from expledger.store.base import Store

    methods = {name for name in dir(Store) if not name.startswith("__")} - {"check_runs_root", "reap_once"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{node.func.attr} (line {node.lineno})" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods
            and (isinstance(node.func.value, ast.Name) and node.func.value.id == "store"
                 or isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", "") == "open_ledger")]


@pytest.mark.parametrize("face", FACES)
def test_faces_ask_the_store_nothing_but_through_ops(face):
    """The CLI, its command modules, the web API and the MCP server parse and render: every
    store call goes through expledger.ops."""
    if face == "commands/requeue.py" and _store_calls(SRC / face):
        pytest.xfail("commands/requeue.py still calls the store itself (its operation is being moved to ops)")
    assert _store_calls(SRC / face) == []


def _json_not_from_to_json(path: Path) -> list[str]:
    """`emit_json(...)` calls whose payload is not a result's `to_json()` (the error envelope of
    `cli._fail` aside: an error is not an operation's result)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef) or function.name == "_fail":
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "emit_json":
                payload = node.args[0] if node.args else None
                if not (isinstance(payload, ast.Call) and getattr(payload.func, "attr", "") == "to_json"):
                    found.append(f"{function.name} (line {node.lineno})")
    return found


@pytest.mark.parametrize("face", [face for face in FACES if face == "cli.py" or face.startswith("commands/")])
def test_every_json_output_is_a_results_to_json(face):
    if face == "commands/requeue.py" and _json_not_from_to_json(SRC / face):
        pytest.xfail("commands/requeue.py still builds its own payload (its operation is being moved to ops)")
    assert _json_not_from_to_json(SRC / face) == []
