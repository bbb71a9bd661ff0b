"""The dashboard's JSON API on both stores: pages, filters, every error status, the actions, the token."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from expledger.models import Status
from expledger.web.server import build_app

from .conftest import served


def fill(store, count=7):
    """`count` experiments: odd ones succeed with acc = n/10, even ones stay queued; tag `odd` on odd ones."""
    for n in range(1, count + 1):
        exp = store.add(name=f"run {n}", task="asr" if n <= 4 else "mt", model="m", params={"lr": n / 1000, "seed": n},
                        command="true", tags=["odd"] if n % 2 else [], priority=n % 3)
        if n % 2:
            store.result(exp.id, status=Status.SUCCESS, metrics={"acc": n / 10})


def ids(response):
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["experiments"]]


def test_list_pages_with_a_total(client, ledger_store):
    fill(ledger_store)
    first = client.get("/api/experiments", params={"limit": 3})
    body = first.json()
    assert body["ok"] and body["version"] == 1
    assert "cpu;dur=" in first.headers["server-timing"]
    assert ids(first) == ["EXP-007", "EXP-006", "EXP-005"]
    assert (body["total"], body["offset"], body["limit"], body["truncated"]) == (7, 0, 3, True)
    last = client.get("/api/experiments", params={"limit": 3, "offset": 6})
    assert ids(last) == ["EXP-001"] and last.json()["next_cursor"] is None
    by_cursor = client.get("/api/experiments", params={"limit": 3, "cursor": body["next_cursor"]})
    assert ids(by_cursor) == ["EXP-004", "EXP-003", "EXP-002"]
    assert ids(client.get("/api/experiments", params={"limit": 3, "offset": 9})) == []


def test_list_filters_sort_and_fields(client, ledger_store):
    """Records as `list --json` gives them (compact), or the `fields` asked for."""
    fill(ledger_store)
    assert ids(client.get("/api/experiments", params={"status": "success", "sort": "-metrics.acc"})) == [
        "EXP-007", "EXP-005", "EXP-003", "EXP-001"]
    assert ids(client.get("/api/experiments", params=[("status", "queued"), ("task", "asr")])) == ["EXP-004", "EXP-002"]
    assert ids(client.get("/api/experiments", params={"where": "params.lr < 0.0035 and tags has odd",
                                                      "sort": "id"})) == ["EXP-001", "EXP-003"]
    assert ids(client.get("/api/experiments", params={"tag": "odd", "model": "m", "sort": "id", "limit": 1})) == ["EXP-001"]
    projected = client.get("/api/experiments", params={"fields": "id,params.lr,metrics.acc", "limit": 1}).json()
    assert projected["experiments"] == [{"id": "EXP-007", "params": {"lr": 0.007}, "metrics": {"acc": 0.7}}]
    compact = client.get("/api/experiments", params={"limit": 1}).json()["experiments"][0]
    assert "provenance" not in compact and compact["params"] == {"lr": 0.007, "seed": 7}
    assert client.get("/api/experiments", params={"fields": "bogus.x"}).status_code == 400


def test_counts_per_status_under_the_other_filters(client, ledger_store):
    fill(ledger_store)
    counts = client.get("/api/counts", params={"task": "asr", "status": "success"}).json()
    assert counts["counts"] == {"QUEUED": 2, "RUNNING": 0, "SUCCESS": 2, "FAILED": 0, "CANCELLED": 0}
    assert counts["total"] == 4


@pytest.mark.parametrize("params, column", [
    ({"where": "params.lr <"}, "column 12"),
    ({"where": "metrics.acc >= 0.5 and (task = asr"}, "column"),
    ({"sort": "bogus"}, "cannot sort by 'bogus'"),
    ({"status": "done"}, "unknown status"),
    ({"limit": "ten"}, "limit must be a whole number"),
    ({"limit": "5000"}, "limit must be between"),
    ({"offset": "-1"}, "offset must be between"),
])
def test_a_bad_query_is_400_naming_the_problem(client, ledger_store, params, column):
    response = client.get("/api/experiments", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "bad_input" and column in error["message"] and response.json()["ok"] is False


def test_unknown_things_are_404_and_malformed_ids_400(client, ledger_store):
    fill(ledger_store, 1)
    for path in ("/api/experiments/EXP-099", "/api/experiments/99/steps", "/api/nothing", "/api/experiments/1/nothing"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"]["type"] == "not_found", path
    assert client.post("/api/experiments/99/cancel", json={}).status_code == 404
    assert client.get("/api/experiments/EXP-x1").status_code == 400
    assert client.get("/api/compare", params={"ids": "1"}).status_code == 400


def test_show_gives_the_whole_record_and_step_summary(client, ledger_store):
    exp = ledger_store.add(name="训练 <b>", params={"lr": 0.1})
    ledger_store.append_steps(exp, {"loss": ([0, 1, 2], [3.0, 2.0, float("nan")])})
    body = client.get("/api/experiments/exp-1").json()
    assert body["experiment"]["name"] == "训练 <b>" and body["experiment"]["params"] == {"lr": 0.1}
    assert body["steps"]["loss"]["points"] == 3 and body["steps"]["loss"]["min"] == 2.0
    assert body["log_tail"] == []


def test_steps_are_downsampled_unless_asked_for_all(client, ledger_store):
    exp = ledger_store.add(name="long")
    values = [float(i % 100) for i in range(10_000)]
    values[4321] = -50.0  # a dip that downsampling must keep
    values[7000] = float("nan")
    ledger_store.append_steps(exp, {"loss": (list(range(10_000)), values), "acc": ([0, 1], [0.1, 0.2])})
    small = client.get(f"/api/experiments/{exp.id}/steps", params={"points": 200, "metric": "loss"}).json()
    loss = small["series"]["loss"]
    assert set(small["series"]) == {"loss"}
    assert loss["downsampled"] and loss["points"] == 10_000 and len(loss["steps"]) <= 200
    assert -50.0 in loss["values"] and loss["steps"] == sorted(loss["steps"])
    full = client.get(f"/api/experiments/{exp.id}/steps", params={"full": "1"}).json()["series"]
    assert len(full["loss"]["values"]) == 10_000 and full["loss"]["values"][7000] is None
    assert full["acc"] == {"steps": [0, 1], "values": [0.1, 0.2], "points": 2, "downsampled": False}


def test_compare_marks_the_best_with_the_cli_rules(client, ledger_store):
    fill(ledger_store, 3)
    body = client.get("/api/compare", params={"ids": "EXP-001,3"}).json()
    assert [e["id"] for e in body["experiments"]] == ["EXP-001", "EXP-003"]
    assert body["metrics"]["acc"]["best"] == ["EXP-003"] and body["metrics"]["acc"]["higher_is_better"]
    assert set(body["params"]["differ"]) == {"lr", "seed"}
    lower = client.get("/api/compare", params={"ids": "1,3", "lower": "acc"}).json()
    assert lower["metrics"]["acc"]["best"] == ["EXP-001"]


def test_queue_in_worker_order(client, ledger_store):
    fill(ledger_store)
    assert ids(client.get("/api/queue")) == ["EXP-002", "EXP-004", "EXP-006"]  # priority 2, 1, 0


def test_cancel_then_cancel_again_is_409(client, ledger_store):
    fill(ledger_store, 2)
    response = client.post("/api/experiments/EXP-002/cancel", json={"reason": "superseded"})
    assert response.status_code == 200 and response.json()["experiment"]["status"] == "CANCELLED"
    assert ledger_store.get(2).status is Status.CANCELLED and ledger_store.get(2).summary == "superseded"
    again = client.post("/api/experiments/EXP-002/cancel", json={})
    assert again.status_code == 409 and again.json()["error"]["type"] == "illegal_transition"


def test_requeue_a_finished_run_as_a_new_one(client, ledger_store):
    fill(ledger_store, 2)
    assert client.post("/api/experiments/2/requeue", json={}).status_code == 409  # still queued
    body = client.post("/api/experiments/1/requeue", json={}).json()
    assert body["from"] == "EXP-001" and body["experiment"]["id"] == "EXP-003"
    new = ledger_store.get(3)
    old = ledger_store.get(1)
    assert new.status is Status.QUEUED and (new.params, new.command, new.tags) == (old.params, old.command, old.tags)
    assert old.status is Status.SUCCESS


def test_edit_tags_and_summary(client, ledger_store):
    fill(ledger_store, 1)
    body = client.post("/api/experiments/1/edit", json={"tags": ["基线", "a,b"], "summary": "<script>x</script>"}).json()
    assert body["experiment"]["tags"] == ["基线", "a", "b"]
    assert ledger_store.get(1).summary == "<script>x</script>"
    assert client.post("/api/experiments/1/edit", json={"summary": ""}).json()["experiment"]["summary"] is None
    assert ledger_store.get(1).tags == ["基线", "a", "b"]
    for bad in ({"tags": "x"}, {"summary": 3}, {}):
        assert client.post("/api/experiments/1/edit", json=bad).status_code == 400, bad
    assert client.post("/api/experiments/1/edit", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 400


def test_writes_must_be_json_from_the_same_origin(client, ledger_store):
    fill(ledger_store, 2)
    form = client.post("/api/experiments/2/cancel", data={"reason": "x"})
    assert form.status_code == 415
    cross = client.post("/api/experiments/2/cancel", json={}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    assert ledger_store.get(2).status is Status.QUEUED
    same = client.post("/api/experiments/2/cancel", json={}, headers={"origin": "http://127.0.0.1"})
    assert same.status_code == 200


def test_a_loopback_server_answers_only_to_loopback_names(client, ledger_store):
    assert client.get("/api/experiments", headers={"host": "attacker.example"}).status_code == 403
    assert client.get("/api/experiments", headers={"host": "localhost:8765"}).status_code == 200


def test_every_response_forbids_inline_scripts(client, ledger_store):
    for path in ("/", "/exp/EXP-001", "/api/experiments", "/api/nothing", "/static/app.js"):
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp, path


ENDPOINTS = ["/", "/queue", "/static/app.js", "/api/experiments", "/api/counts", "/api/queue",
             "/api/experiments/1", "/api/experiments/1/steps", "/api/compare?ids=1,2"]


def test_off_loopback_every_request_needs_the_token(store_url, ledger_store):
    fill(ledger_store, 2)
    app = build_app(store_url, host="0.0.0.0", token="s3cret")
    with TestClient(app, base_url="http://lab-box.example:8765") as client:
        for path in ENDPOINTS:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401, path
            assert client.get(path, headers={"authorization": "Bearer s3cret"}).status_code == 200, path
        assert client.post("/api/experiments/2/cancel", json={}).status_code == 401
        assert ledger_store.get(2).status is Status.QUEUED
        assert client.get("/api/experiments?token=s3cret").status_code == 200
        opened = client.get("/queue?token=s3cret&x=1", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/queue?x=1"
        assert "httponly" in opened.headers["set-cookie"].lower() and "samesite=strict" in opened.headers["set-cookie"].lower()
        assert client.get("/api/experiments").status_code == 200  # the cookie now carries it
    with pytest.raises(ValueError):
        build_app(store_url, host="0.0.0.0")


def test_a_real_server_off_loopback_prints_a_token(tmp_path):
    with served("--host", "0.0.0.0", cwd=tmp_path) as started:
        token = started["token"]
        assert token and started["open"].endswith(f"?token={token}")
        assert httpx.get(started["url"] + "api/experiments").status_code == 401
        answer = httpx.get(started["url"] + "api/experiments", headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["total"] == 0


def test_a_real_server_on_loopback_serves_the_store(tmp_path, exp_proc):
    exp_proc("add", "--name", "first", cwd=tmp_path)
    with served(cwd=tmp_path, env={"EXP_UI_TOKEN": ""}) as started:
        assert started["token"] is None and started["url"].startswith("http://127.0.0.1:")
        assert ids(httpx.get(started["url"] + "api/experiments")) == ["EXP-001"]
        page = httpx.get(started["url"])
        assert page.status_code == 200 and "app.js" in page.text


def test_a_taken_port_is_one_line_exit_2(tmp_path, exp_proc):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        result = exp_proc("ui", "--port", held.getsockname()[1], cwd=tmp_path)
    assert result.code == 2 and result.err.startswith("error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in result.err
