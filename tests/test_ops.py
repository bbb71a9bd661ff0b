"""The operations in expledger.ops: each result's to_json() is exactly the CLI's --json payload,
so the web API and the MCP server, which send to_json(), show what `exp … --json` shows."""

from __future__ import annotations

import json

import pytest

from expledger.errors import BadInput
from expledger.ops import check, compare, record, search, show
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

