"""One operation, one JSON: the CLI's `--json`, the dashboard API's body and the MCP tool's
structured result are each the ops object's `to_json()` in the versioned envelope (the web API
adds only the fields it documents: `limit` on a list page, `log_tail` on an experiment)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the ui extra: pip install 'expledger[ui]'")
pytest.importorskip("mcp", reason="the MCP server needs the mcp extra: pip install 'expledger[mcp]'")

import anyio
from starlette.testclient import TestClient

import expledger
from expledger.ops import check, compare, export, files, logs, notes, record, search, show, steps, workers
from expledger.ops import next as suggestions
from expledger.output import envelope
from expledger.store import open_store

VOLATILE = {"generated", "last_beat_age"}  # the time of the answer, seconds since a beat


def _stable(value):
    """JSON as it travels, without what changes from one call to the next."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.fixture
def filled(store_url, tmp_path):
    """A ledger with every kind of thing a face shows: results, a failure, the queue, step
    series, kept output, a recorded file, a worker."""
    with open_store(store_url) as store:
        a = record.add(store, name="a", task="asr", model="m", params={"lr": 0.1, "seed": 1},
                       command="python train.py --lr 0.1").experiment
        record.result(store, a.id, status="success", metrics={"acc": 0.8, "loss": 0.5})
        store.append_steps(store.get(a.id), {"loss": ([0, 1, 2], [3.0, 2.0, float("nan")])})
        b = record.add(store, name="b", task="asr", model="m", params={"lr": 0.01, "seed": 1}).experiment
        record.result(store, b.id, status="success", metrics={"acc": 0.9, "loss": float("nan")})
        store.put_output(store.get(b.id), 20, "…epoch 3 done\n".encode())
        c = record.add(store, name="c", task="asr", model="m", params={"lr": 1.0, "seed": 1}).experiment
        record.result(store, c.id, status="failed", reason="diverged: loss is nan at step 12")
        record.add(store, name="d", task="asr", model="m", params={"lr": 0.001, "seed": 1}, priority=3,
                   command="python train.py --lr 0.001")
        store.beat_worker({"id": "box:1", "host": "box", "pid": 1, "machine": "box", "gpus": ["0"],
                           "running": [], "ran": 2, "started": "2026-11-27T09:00:00+00:00",
                           "stopped": "2026-11-27T10:00:00+00:00"})
    (tmp_path / "preds.csv").write_text("id,label\n1,猫\n", encoding="utf-8")
    with expledger.start(name="e", task="mt", store=store_url) as run:
        run.log_file("preds.csv", kind="prediction")
    return store_url


# name: (CLI arguments, web path and query, MCP tool and arguments, the operation, what the web adds)
CASES = {
    "list": (["list"], ("/api/experiments", {"limit": 100}), ("list", {}),
             lambda s: search.list_experiments(s).to_json(), {"limit"}),
    "list projected": (["list", "--status", "success", "--sort", "-metrics.acc", "--fields", "id,metrics.acc"],
                       ("/api/experiments", {"status": "success", "sort": "-metrics.acc", "fields": "id,metrics.acc",
                                             "limit": 100}),
                       ("list", {"status": ["success"], "sort": "-metrics.acc", "fields": ["id", "metrics.acc"]}),
                       lambda s: search.list_experiments(s, status="success", sort="-metrics.acc")
                       .to_json(("id", "metrics.acc")), {"limit"}),
    "queue": (["queue"], ("/api/queue", {}), ("queue", {}), lambda s: search.queue(s).to_json(), set()),
    "show": (["show", "exp-2"], ("/api/experiments/exp-2", {}), ("show", {"id": "exp-2"}),
             lambda s: show.show(s, "exp-2").to_json(), {"log_tail"}),
    "compare": (["compare", "1", "2", "--lower", "acc"], ("/api/compare", {"ids": "1,2", "lower": "acc"}),
                ("compare", {"ids": ["1", "2"], "lower": ["acc"]}),
                lambda s: compare.compare(s, ["1", "2"], lower={"acc"}).to_json(), set()),
    "compare ranked": (["compare", "--where", "task = asr", "--top", "2", "--by", "metrics.acc"],
                       ("/api/compare", {"where": "task = asr", "top": 2, "by": "metrics.acc"}),
                       ("compare", {"where": "task = asr", "top": 2, "by": "acc"}),
                       lambda s: compare.compare(s, where="task = asr", top=2, by="acc").to_json(), set()),
    "files": (["files", "5"], ("/api/experiments/5/files", {}), ("files", {"id": "5"}),
              lambda s: files.files(s, "5").to_json(), set()),
    "logs": (["logs", "2"], ("/api/experiments/EXP-002/logs", {}), ("logs", {"id": "2"}),
             lambda s: logs.logs(s, "2").to_json(), set()),
    "workers": (["workers"], ("/api/workers", {}), ("workers", {}), lambda s: workers.workers(s).to_json(), set()),
    "notes": (["notes", "--task", "asr"], ("/api/notes", {"task": "asr"}), ("notes", {"task": "asr"}),
              lambda s: notes.notes(s, task="asr").to_json(), set()),
    "next": (["next", "--by", "metrics.acc"], ("/api/next", {"by": "metrics.acc"}), ("next", {"by": "acc"}),
             lambda s: suggestions.suggest(s, by="acc").to_json(), set()),
    "check": (["check", "--task", "asr", "--params", '{"lr": 0.1}'],
              ("/api/check", {"task": "asr", "params": '{"lr": 0.1}'}),
              ("check", {"task": "asr", "params": {"lr": 0.1}}),
              lambda s: check.check(s, task="asr", params={"lr": 0.1}).to_json(), set()),
    "export": (["export", "--format", "json"], ("/api/export", {}), ("export", {}),
               lambda s: export.export(s).to_json(), set()),
    "export grouped": (["export", "--status", "success,failed", "--group-by", "params.lr", "--columns", "metrics.acc"],
                       ("/api/export", {"status": "success,failed", "group_by": "params.lr", "metrics": "metrics.acc"}),
                       ("export", {"status": ["success", "failed"], "group_by": ["params.lr"], "metrics": ["acc"]}),
                       lambda s: export.export(s, status=("success", "failed"), group_by=["params.lr"],
                                               metrics=["metrics.acc"]).to_json(), set()),
    "steps": (None, ("/api/experiments/1/steps", {"points": 100}), ("steps", {"id": "1", "points": 100}),
              lambda s: steps.series(s, "1", points=100).to_json(), set()),
    "counts": (None, ("/api/counts", {"task": "asr"}), None,
               lambda s: search.status_counts(s, task="asr").to_json(), set()),
}


def _mcp(url: str, tool: str, arguments: dict) -> dict:
    from mcp import Client

    from expledger.mcp_server import build_server

    async def call():
        async with Client(build_server(url)) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(call)
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.parametrize("case", CASES)
def test_every_face_sends_the_operations_to_json(case, filled, exp):
    cli_args, web, tool, operation, web_adds = CASES[case]
    with open_store(filled) as store:
        expected = _stable(json.loads(json.dumps(envelope(operation(store)))))
    if cli_args is not None:
        shown = exp("--store", filled, *cli_args, "--json")
        assert shown.code == 0, shown.err
        assert _stable(json.loads(shown.out)) == expected
    if web is not None:
        from expledger.web.server import build_app

        with TestClient(build_app(filled), base_url="http://127.0.0.1") as client:
            response = client.get(web[0], params=web[1])
        assert response.status_code == 200, response.text
        body = _stable(response.json())
        assert set(body) - set(expected) == web_adds
        assert {k: v for k, v in body.items() if k not in web_adds} == expected
    if tool is not None:
        assert _stable(_mcp(filled, *tool)) == expected


@pytest.mark.parametrize("command, path, tool", [
    (["files", "EXP-042"], "/api/experiments/EXP-042/files", ("files", {"id": "EXP-042"})),
    (["logs", "42"], "/api/experiments/42/logs", ("logs", {"id": "42"})),
    (["show", "exp-42"], "/api/experiments/exp-42", ("show", {"id": "exp-42"})),
    (["notes", "--since", "soon"], "/api/notes?since=soon", ("notes", {"since": "soon"})),
    (["compare", "1"], "/api/compare?ids=1", ("compare", {"ids": ["1"]})),
])
def test_an_error_is_the_same_object_on_every_face(filled, exp, command, path, tool):
    """The CLI's `--json` error object; the web API adds the HTTP status, the MCP tool error
    carries the object and the message after its kind. Only the flag a CLI user typed differs."""
    from expledger.web.server import build_app

    failed = exp("--store", filled, *command, "--json")
    cli_error = json.loads(failed.out)["error"]
    assert failed.code == cli_error["exit_code"] and failed.code in (1, 2)
    with TestClient(build_app(filled), base_url="http://127.0.0.1") as client:
        response = client.get(path)
    web_error = response.json()["error"]
    assert response.status_code == web_error.pop("status") == (404 if cli_error["type"] == "not_found" else 400)
    cli_error["message"] = cli_error["message"].removeprefix("--since ")
    assert web_error == cli_error

    async def call():
        from mcp import Client

        from expledger.mcp_server import build_server

        async with Client(build_server(filled)) as client:
            return await client.call_tool(*tool)

    result = anyio.run(call)
    assert result.is_error and result.content[0].text == f"{cli_error['type']}: {cli_error['message']}"
    assert result.structured_content == {"ok": False, "version": 1, "error": cli_error}


def test_the_ledger_above_gives_every_face_something_to_show(filled):
    with open_store(filled) as store:
        assert files.files(store, "5").files[0]["state"] == "ok"
        assert logs.logs(store, "2").text == "…epoch 3 done\n" and logs.logs(store, "2").skipped == 20 - 16
        assert [w["state"] for w in workers.workers(store).workers] == ["stopped"]
        assert steps.series(store, "1").series["loss"]["values"] == [3.0, 2.0, None]
        assert notes.notes(store, task="asr").notes.tasks[0].failures
        assert search.status_counts(store, task="asr").counts["FAILED"] == 1


def test_a_cancel_answers_alike_on_every_face(filled, exp):
    """Writes too: the CLI's, the web API's and the MCP tool's answers to a cancel are one schema."""
    from expledger.web.server import build_app

    with open_store(filled) as store:
        queued = [record.add(store, name=f"q{n}", command="true").experiment.id for n in range(3)]
    shown = exp("--store", filled, "cancel", queued[0], "--reason", "superseded", "--json")
    assert shown.code == 0, shown.err
    answers = [json.loads(shown.out)]
    with TestClient(build_app(filled), base_url="http://127.0.0.1") as client:
        answers.append(client.post(f"/api/experiments/{queued[1]}/cancel", json={"reason": "superseded"}).json())

    async def call():
        from mcp import Client

        from expledger.mcp_server import build_server

        async with Client(build_server(filled)) as client:
            return await client.call_tool("cancel", {"id": queued[2], "reason": "superseded"})

    answers.append(anyio.run(call).structured_content)
    cli, web, mcp = ({**answer, "experiment": sorted(answer["experiment"])} for answer in answers)
    assert cli == web == mcp and cli["process"] is None
    assert [a["experiment"]["status"] for a in answers] == ["CANCELLED"] * 3
    assert [a["experiment"]["summary"] for a in answers] == ["superseded"] * 3
