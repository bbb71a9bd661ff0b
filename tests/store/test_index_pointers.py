"""The index points into the log instead of copying it (issue 11): each row knows where its
record's line is (offset, length, CRC-32) and reads it back from there. A pointer is never
followed into a file the index did not read, nor to a line that changed in place; a record
that no single line holds (a conflict's merged record) keeps its JSON in the index."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import zlib

import pytest

from expledger.conflicts import resolve
from expledger.errors import NotFound
from expledger.models import Experiment
from expledger.store import index as index_module
from expledger.store import open_store


def _rows(path, sql: str) -> list:
    db = sqlite3.connect(path.parent / ".exp-cache" / f"{path.name}.sqlite3")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _ledger(tmp_path, names) -> object:
    path = tmp_path / "experiments.jsonl"
    with open_store(str(path)) as store:
        for name in names:
            store.add(name=name)
        store.search(limit=0)  # writes leave the index to the next read: this one has it read every line
    return path


def test_a_record_is_read_back_from_its_line_not_from_a_copy(tmp_path):
    path = _ledger(tmp_path, ["a", "b"])
    with open_store(str(path)) as store:
        assert [e.name for e in store.search(sort="id")] == ["a", "b"]
    assert _rows(path, "SELECT count(*) FROM exp WHERE data IS NULL AND pos IS NOT NULL") == [(2,)]


def test_a_long_lived_reader_never_follows_a_pointer_into_a_replaced_file(tmp_path):
    path = _ledger(tmp_path, ["first", "second", "third"])
    with open_store(str(path)) as reader:
        assert reader.get(3).name == "third"  # the index is read; the store will not sync again for reads
        lines = path.read_bytes().splitlines(keepends=True)
        other = tmp_path / "other.jsonl"
        other.write_bytes(lines[0].replace(b'"first"', b'"FIRST!!"') + lines[2])  # shifted offsets
        os.replace(other, path)
        assert reader.get(1).name == "FIRST!!"
        assert reader.get(3).name == "third"
        with pytest.raises(NotFound):
            reader.get(2)


def test_a_long_lived_reader_of_a_file_cut_shorter_in_place_reads_what_is_left(tmp_path):
    path = _ledger(tmp_path, ["first", "second", "third"])
    with open_store(str(path)) as reader:
        assert reader.get(3).name == "third"
        first = path.read_bytes().splitlines(keepends=True)[0]
        with open(path, "r+b") as handle:  # the same inode, shorter
            handle.truncate(0)
            handle.write(first)
        with pytest.raises(NotFound):
            reader.get(3)
        assert reader.search().total == 1 and reader.get(1).name == "first"


def test_a_read_that_meets_a_line_edited_in_place_rebuilds_with_a_warning(tmp_path):
    path = _ledger(tmp_path, ["before", "second"])
    text = path.read_text(encoding="utf-8").replace('"before"', '"edited"')
    with open(path, "r+", encoding="utf-8") as handle:  # same inode, same size
        handle.write(text)
    warnings: list[str] = []
    with open_store(str(path), warn=warnings.append) as store:
        assert store.get(1).name == "edited"
        assert [e.name for e in store.search(where="name = edited")] == ["edited"]
    assert len(warnings) == 1 and "changed in place" in warnings[0]


def test_a_merged_record_exists_only_in_the_index_and_reads_back_whole(tmp_path):
    path = _ledger(tmp_path, ["shared"])
    with open_store(str(path)) as store:
        base = store.get(1)
    common = path.read_bytes()
    with open_store(str(path)) as store:
        store.result(1, status="success", metrics={"acc": 0.9})
    ours = path.read_bytes()[len(common):]
    path.write_bytes(common)
    with open_store(str(path)) as store:
        store.cancel(1)
    theirs = path.read_bytes()[len(common):]
    path.write_bytes(common + ours + theirs)  # what git's union merge leaves
    expected, conflicted = resolve(Experiment.from_line(ours), Experiment.from_line(theirs))
    assert conflicted and expected.to_line() not in (ours, theirs)
    with open_store(str(path)) as store:
        got = store.get(1)
        assert got.to_dict() == expected.to_dict() and got.uuid == base.uuid
        assert store.search(where="metrics.acc = 0.9").total == 1
        assert [p["kind"] for p in store.doctor()["problems"]] == ["conflict"]  # the index agrees with the log
    assert _rows(path, "SELECT pos, data IS NOT NULL FROM exp") == [(None, 1)]


def test_fields_without_a_column_are_queried_through_the_line(tmp_path):
    path = tmp_path / "experiments.jsonl"
    with open_store(str(path)) as store:
        store.add(name="one gpu", gpus=1)
        store.add(name="two gpus", gpus=2)
    with open_store(str(path)) as store:
        assert [e.name for e in store.search(where="gpus > 1")] == ["two gpus"]
        assert [e.name for e in store.search(sort="-gpus")] == ["two gpus", "one gpu"]


def test_the_index_is_much_smaller_than_the_log_it_points_into(tmp_path):
    path = tmp_path / "experiments.jsonl"
    with open_store(str(path)) as store:
        for n in range(400):
            exp = store.add(name=f"run {n}", task="bench", model="m", tags=["a", "b"],
                            params={**{f"p{i}": round(n * 0.001 + i, 4) for i in range(9)}, "kind": "abcd"[n % 4]})
            store.start(exp.id)
            store.result(exp.id, status="success", metrics={f"m{i}": round(n / 1000 + i, 4) for i in range(5)})
    with open_store(str(path)) as store:
        assert store.search(limit=0).total == 400
    cache = path.parent / ".exp-cache" / f"{path.name}.sqlite3"
    index = sum(os.path.getsize(f"{cache}{suffix}") for suffix in ("", "-wal") if os.path.exists(f"{cache}{suffix}"))
    assert index < 0.5 * path.stat().st_size  # a copy of each record would be more than a third of the log alone


def test_a_first_build_cut_short_leaves_no_rows_behind(tmp_path, monkeypatch):
    path = tmp_path / "experiments.jsonl"
    with open_store(str(path)) as store:
        for n in range(20):
            store.add(name=f"run {n}")
    shutil.rmtree(path.parent / ".exp-cache")
    monkeypatch.setattr(index_module, "COLD_BYTES", 0)  # the bulk path, whatever the size

    class Killed(BaseException):
        pass

    class Dying:  # the process dies after the rows, before the index says how far it read
        crc32 = staticmethod(zlib.crc32)

        @staticmethod
        def adler32(*args):
            raise Killed

    monkeypatch.setattr(index_module, "zlib", Dying)
    with pytest.raises(Killed), open_store(str(path)) as store:
        store.search()
    assert _rows(path, "SELECT count(*) FROM exp") == [(0,)]
    monkeypatch.undo()
    with open_store(str(path)) as store:
        assert store.search(limit=0).total == 20 and store.index.counters()["builds"] == 1
    with open_store(str(path)) as store:
        assert json.loads(store.get(20).to_line())["name"] == "run 19"


def test_an_index_written_before_the_machine_restarted_is_read_anew(tmp_path):
    """It is written without waiting for the disk: after a machine crash its pages may be from
    different moments. A process crash needs no such care (the WAL makes each catch-up whole)."""
    path = _ledger(tmp_path, ["a", "b"])
    with open_store(str(path)) as store:
        assert store.search(limit=0).total == 2 and store.index.counters()["builds"] == 1
    db = sqlite3.connect(path.parent / ".exp-cache" / f"{path.name}.sqlite3")
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'boot'", (json.dumps("an-earlier-boot"),))
        assert db.execute("SELECT count(*) FROM meta WHERE key = 'boot'").fetchone() == (1,)
    db.close()
    with open_store(str(path)) as store:
        assert store.search(limit=0).total == 2 and store.index.counters()["builds"] == 2
    with open_store(str(path)) as store:
        assert store.search(limit=0).total == 2 and store.index.counters()["builds"] == 2  # once


def test_threads_sharing_one_store_read_while_another_writes(tmp_path):
    path = _ledger(tmp_path, [f"run {n}" for n in range(20)])
    errors: list[BaseException] = []
    with open_store(str(path)) as store:
        def read() -> None:
            try:
                for _ in range(30):
                    assert store.search(limit=None).total >= 20
                    store.get(1)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for n in range(20):
            store.add(name=f"more {n}")
            store.refresh()
        for thread in threads:
            thread.join()
    assert errors == []
