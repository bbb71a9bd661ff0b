"""The store contract: the same behaviour from every backend."""

from __future__ import annotations

import pytest

from expledger.errors import BadInput, IllegalTransition, NotFound
from expledger.models import Status
from expledger.store import Search


@pytest.fixture(params=["jsonl", "postgres", "sqlite"])
def store_url(request, tmp_path):
    """Each backend: JSONL, PostgreSQL, and the example third one (tests/store/sqlite_store.py),
    registered through the real registry for the test's length."""
    if request.param == "jsonl":
        yield str(tmp_path / "ledger" / "experiments.jsonl")
    elif request.param == "postgres":
        yield request.getfixturevalue("postgres_url")
    else:
        from expledger.store import _BUILDERS, register_store

        from .sqlite_store import SQLiteStore

        register_store("sqlite", SQLiteStore)
        try:
            yield f"sqlite:{tmp_path / 'ledger.sqlite3'}"
        finally:
            del _BUILDERS["sqlite"]


def _add(store, name="run", **fields):
    return store.add(name=name, **fields)


def test_ids_are_allocated_in_order_from_exp_001(store):
    ids = [_add(store, f"r{i}").id for i in range(3)]
    assert ids == ["EXP-001", "EXP-002", "EXP-003"]


def test_any_spelling_finds_the_experiment_and_unknown_ids_are_not_found(store):
    created = _add(store, "lens", task="t", params={"lr": 0.1})
    for ref in ("EXP-001", "exp-1", "1", 1):
        assert store.get(ref) == created
    with pytest.raises(NotFound, match="EXP-002"):
        store.get("EXP-002")
    with pytest.raises(BadInput):
        store.get("nope")


def test_lifecycle_moves_bump_rev_and_stamp_times(store):
    created = _add(store)
    assert (created.status, created.rev, created.created) == (Status.QUEUED, 1, "2026-01-01T00:00:01.000+00:00")
    running = store.start("1")
    assert (running.status, running.rev) == (Status.RUNNING, 2)
    assert running.started == running.updated
    done = store.result("1", status=Status.SUCCESS, metrics={"acc": 0.9}, summary="fine")
    assert (done.status, done.rev, done.metrics) == (Status.SUCCESS, 3, {"acc": 0.9})
    assert store.get(1) == done
    with pytest.raises(IllegalTransition):
        store.start(1)
    with pytest.raises(IllegalTransition):
        store.cancel(1)
    with pytest.raises(IllegalTransition):
        store.result(1, status=Status.FAILED, reason="x")
    assert store.get(1) == done  # refused moves leave no trace


def test_forced_result_keeps_the_old_one_in_history(store):
    _add(store)
    store.result(1, status=Status.SUCCESS, metrics={"acc": 0.9})
    redone = store.result(1, status=Status.FAILED, reason="eval leaked test data", force=True)
    assert redone.failed_reason == "eval leaked test data"
    assert [h["status"] for h in store.get(1).history] == ["SUCCESS"]


def test_cancel_a_queued_experiment(store):
    _add(store)
    cancelled = store.cancel("EXP-001", reason="superseded")
    assert cancelled.status is Status.CANCELLED and cancelled.summary == "superseded"


def test_search_filters_combine(store):
    _add(store, "a", task="asr", model="whisper-base", machine="lab", tags=["baseline"])
    _add(store, "b", task="asr", model="whisper-large", machine="mac", tags=["baseline", "big"])
    _add(store, "c", task="lm", model="whisper-base", machine="lab")
    store.result(1, status=Status.SUCCESS)
    store.result(2, status=Status.FAILED, reason="OOM")

    def names(**criteria):
        return [e.name for e in store.search(sort="id", **criteria)]

    assert names(task="asr") == ["a", "b"]
    assert names(status=(Status.SUCCESS, Status.FAILED)) == ["a", "b"]
    assert names(status=(Status.SUCCESS,), task="asr") == ["a"]
    assert names(model="whisper-base", machine="lab") == ["a", "c"]
    assert names(tags=("baseline",)) == ["a", "b"]
    assert names(tags=("baseline", "big")) == ["b"]
    assert names(task="nothing") == []


def test_sort_by_metric_puts_missing_last_and_limit_reports_the_total(store):
    for i, acc in enumerate([0.5, None, 0.9, 0.7]):
        _add(store, f"r{i}", params={"lr": 10.0 ** -i})
        if acc is not None:
            store.result(i + 1, status=Status.SUCCESS, metrics={"acc": acc})
    found = store.search(sort="-metrics.acc")
    assert [e.name for e in found] == ["r2", "r3", "r0", "r1"]
    found = store.search(sort="metrics.acc", limit=2)
    assert ([e.name for e in found], found.total) == (["r0", "r3"], 4)
    assert [e.name for e in store.search(sort="params.lr")] == ["r3", "r2", "r1", "r0"]
    assert [e.id for e in store.search()] == ["EXP-004", "EXP-003", "EXP-002", "EXP-001"]  # newest first


def test_bad_sort_fields_are_bad_input(store):
    with pytest.raises(BadInput, match="cannot sort by"):
        store.search(sort="colour")


def test_every_scalar_field_sorts_the_same_way_on_every_store(store):
    # The sortable fields come from schema.py: `--sort command` used to be refused though
    # `--where 'command ~ x'` worked.
    from expledger.store.base import SORTABLE

    _add(store, "b", command="python train.py --lr 2", gpus=2, workdir="/w/b")
    _add(store, "a", command="Python eval.py", gpus=1)
    _add(store, "c", command="bash run.sh", workdir="/w/a")
    _add(store, "d")

    def names(sort):
        return [e.name for e in store.search(sort=sort)]

    assert names("command") == ["a", "c", "b", "d"]  # by code point (upper case first), missing last
    assert names("-command") == ["b", "c", "a", "d"]
    assert names("gpus") == ["a", "b", "c", "d"]
    assert names("-workdir,id") == ["b", "c", "a", "d"]
    assert names("summary,name") == ["a", "b", "c", "d"]
    for field in SORTABLE:
        assert len(store.search(sort=field)) == len(store.search(sort=f"-{field}")) == 4
    assert names("runner.host") == ["b", "a", "c", "d"]  # nobody has one: then by ID


def test_queue_lists_queued_oldest_first(store):
    for name in "abc":
        _add(store, name)
    store.start(2)
    assert [e.name for e in store.queue()] == ["a", "c"]


def test_tried_before_matches_canonically_equal_configs(store):
    first = _add(store, "a", task="asr", model="m", params={"lr": 1e-3, "layers": 6})
    store.result(first.id, status=Status.FAILED, reason="diverged")
    _add(store, "other", task="asr", model="m", params={"lr": 1e-2, "layers": 6})
    again = _add(store, "b", task="asr", model="m", params={"layers": 6.0, "lr": 0.001})
    matches = store.tried_before(again)
    assert [(e.id, e.failed_reason) for e in matches] == [("EXP-001", "diverged")]


def test_search_accepts_a_search_object(store):
    _add(store, "a", task="x")
    assert store.search(Search(task="x")).total == 1


def test_pages_by_offset_and_cursor_cover_every_match_once(store):
    for i in range(7):
        _add(store, f"r{i}", task="asr" if i % 2 == 0 else "lm")
    first = store.search(sort="id", limit=3)
    assert ([e.name for e in first], first.total, first.offset) == (["r0", "r1", "r2"], 7, 0)
    assert first.truncated and first.next_cursor
    assert [e.name for e in store.search(sort="id", limit=3, offset=3)] == ["r3", "r4", "r5"]
    names, cursor = [], None
    while True:
        page = store.search(sort="id", limit=3, cursor=cursor)
        assert page.total == 7
        names += [e.name for e in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert names == [f"r{i}" for i in range(7)]
    beyond = store.search(sort="id", limit=3, offset=50)
    assert (list(beyond), beyond.total, beyond.next_cursor) == ([], 7, None)
    filtered = store.search(task="asr", sort="-id", limit=2, offset=1)  # plain filter
    assert ([e.name for e in filtered], filtered.total) == (["r4", "r2"], 4)
    queried = store.search(where="task = lm", sort="-id", limit=2, offset=2)  # --where path
    assert ([e.name for e in queried], queried.total) == (["r1"], 3)
    assert store.search(sort="id", limit=None, offset=5).total == 7


def test_a_cursor_is_bound_to_its_search(store):
    for i in range(4):
        _add(store, f"r{i}", task="asr")
    cursor = store.search(sort="id", limit=2).next_cursor
    with pytest.raises(BadInput, match="another search"):
        store.search(sort="-id", limit=2, cursor=cursor)
    with pytest.raises(BadInput, match="cursor"):
        store.search(sort="id", limit=2, cursor="not-a-cursor!")
    with pytest.raises(BadInput, match="offset"):
        store.search(offset=-1)


def test_statuses_read_in_any_form(store):
    _add(store, "a")
    store.result(1, status="success")
    _add(store, "b")
    for status in ("success", "SUCCESS", ("success",), [Status.SUCCESS], (" Success ",)):
        assert [e.name for e in store.search(status=status)] == ["a"], status
    with pytest.raises(BadInput, match="unknown status"):
        store.search(status="done")


def test_the_newest_version_of_a_record_wins_whatever_order_it_arrives_in(store):
    import dataclasses

    first = _add(store, "a")
    done = store.result(1, status="success", metrics={"acc": 0.5})
    assert store.put(first) is False and store.get(1) == done  # an older version never replaces a newer
    assert store.put(done) is False  # the same version again changes nothing
    later = dataclasses.replace(done, rev=done.rev + 1, updated="2030-01-01T00:00:00.000+00:00", summary="checked")
    assert store.put(later) is True and store.get(1).summary == "checked"
    tie = dataclasses.replace(later, updated="2031-01-01T00:00:00.000+00:00", summary="same rev, later")
    assert store.put(tie) is True and store.get(1).summary == "same rev, later"  # same rev: the later update


def test_a_seed_tool_record_rev_0_replaces_any_version_as_a_later_log_line_does(store):
    # schema.supersedes: the seed tool keeps no versions, so its record is the newer one; the
    # JSONL index always read a rev-0 line so, and PostgreSQL refused it (issue 10).
    import dataclasses

    done = store.result(_add(store, "a").id, status="success", metrics={"acc": 0.5})
    assert done.rev == 2
    seed = dataclasses.replace(done, rev=0, updated=None, summary="edited by the seed tool")
    assert store.put(seed) is True
    assert (store.get(1).rev, store.get(1).summary) == (0, "edited by the seed tool")
    assert store.put(seed) is False  # the same record again: nothing to write
    again = dataclasses.replace(seed, summary="edited again")
    assert store.put(again) is True and store.get(1).summary == "edited again"
    moved = store.modify(1, lambda exp, now: dataclasses.replace(exp, summary="ours now"))
    assert (moved.rev, store.get(1).summary) == (1, "ours now")  # a versioned change on top of it


def test_merging_an_older_version_changes_nothing(store, tmp_path):
    import dataclasses

    from expledger.store import open_store
    from expledger.transfer import merge

    first = _add(store, "a")
    done = store.result(1, status="success", metrics={"acc": 0.5})
    with open_store(f"jsonl://{tmp_path / 'other'}") as other:
        other.put(dataclasses.replace(first, summary="an old copy"))
        report = merge(other, store)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 0, 1)
    assert store.get(1) == done
