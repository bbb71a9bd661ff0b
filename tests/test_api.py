"""The Python API without sharp edges (issue 10): each edge a user met, as a test."""

from __future__ import annotations

import inspect
import logging
import sys
import threading

import pytest

import expledger
from expledger.models import Status
from expledger.run import Run
from expledger.store import Store, open_store


@pytest.fixture
def store(ledger):
    with open_store(str(ledger)) as opened:
        yield opened


def test_statuses_are_read_in_any_form_everywhere(store):
    store.add(name="a")
    assert store.result(1, status="failed", reason="OOM").status is Status.FAILED  # was AttributeError
    store.add(name="b", status="running")
    assert [e.name for e in store.search(status=("failed",))] == ["a"]  # was silently nothing
    assert [e.name for e in store.search(status="RUNNING")] == ["b"]  # was iterated letter by letter
    assert [e.name for e in store.search(status="failed, running", sort="name")] == ["a", "b"]  # as the CLI reads it


def test_a_result_status_that_cannot_be_one_names_only_those_that_can(store):
    from expledger.errors import BadInput

    store.add(name="a")
    for status in ("weird", "queued"):
        with pytest.raises(BadInput, match="valid are success, failed, cancelled$"):
            store.result(1, status=status)
    assert store.get(1).status is Status.QUEUED


def test_add_and_result_show_their_arguments():
    for method in (Store.add, Store.result):
        kinds = {p.kind for p in inspect.signature(method).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, method
    assert "priority" in inspect.signature(Store.add).parameters


def test_a_misspelt_field_is_a_type_error(store):
    with pytest.raises(TypeError):
        store.add(name="x", modle="m")


def test_open_store_without_a_url_finds_the_ledger_as_exp_does(exp, tmp_path, monkeypatch):
    assert exp("add", "--name", "from the CLI").code == 0
    deeper = tmp_path / "src" / "deeper"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    with open_store() as found:
        assert [e.name for e in found.search()] == ["from the CLI"]


def test_a_run_is_inert_until_it_starts_and_never_closes_a_store_it_was_given(store):
    threads, hook = threading.active_count(), sys.excepthook
    run = Run(store, store.add(name="given", status="running"))
    assert (threading.active_count(), sys.excepthook, run.started) == (threads, hook, False)
    assert run.dir == store.run_dir(run.experiment) == run.run_dir
    run.log({"loss": 0.5})
    assert run.started and sys.excepthook != hook
    run.result()
    assert sys.excepthook == hook
    assert store.get(run.id).metrics == {"loss": 0.5}  # the store it was given is still open


def test_start_owns_and_closes_its_store(tmp_path):
    with expledger.start(name="owned") as run:
        run.log({"acc": 1.0})
        assert run.owns_store and run.started
    assert run.experiment.status is Status.SUCCESS


def test_warnings_go_through_logging_and_exp_shows_one_line(exp, ledger, caplog):
    assert exp("add", "--name", "fine").code == 0
    with open(ledger, "ab") as handle:
        handle.write(b"{not json}\n")
    with caplog.at_level(logging.WARNING, logger="expledger"), open_store(str(ledger)) as store:
        store.search()
    assert any("skipped unreadable lines" in r.getMessage() for r in caplog.records if r.name == "expledger")
    listed = exp("list")
    assert [line for line in listed.err.splitlines() if line.startswith("warning: skipped unreadable lines")]


def test_a_store_shows_where_it_is(store, ledger):
    assert repr(store) == f"<JsonlStore {ledger}>"  # the URL as messages show it: no password
