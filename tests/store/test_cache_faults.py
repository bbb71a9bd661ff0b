"""The JSONL ledger when its cache is deleted, damaged or cannot be written (issue 8, items 4, 7, 9).

`.exp-cache/` may be deleted at any moment (`git clean -X` does): the write lock is not in
it, and the index rebuilds itself from any damage with one warning. Once a line is in the
ledger the write has happened, whatever the index does afterwards.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

from expledger.store import open_store
from expledger.store.index import LedgerIndex

WRITER = """
import sys
from expledger.store import open_store
path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    with open_store(path, warn=lambda m: None) as store:
        print(store.add(name=f"{worker}-{i}").id, flush=True)
"""


def test_deleting_the_cache_while_writers_write_never_shares_an_id(tmp_path):
    path = tmp_path / "memory" / "experiments" / "experiments.jsonl"
    cache = path.parent / ".exp-cache"
    stop = threading.Event()

    def delete_cache() -> None:
        while not stop.is_set():
            shutil.rmtree(cache, ignore_errors=True)
            time.sleep(0.01)

    deleter = threading.Thread(target=delete_cache)
    deleter.start()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", "30"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for n in range(6)]
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        stop.set()
        deleter.join()
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    acked = [exp_id for out, _ in outputs for exp_id in out.split()]
    assert len(acked) == len(set(acked)) == 180
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len({r["id"] for r in records}) == len({r["uuid"] for r in records}) == 180


def test_an_index_with_garbage_in_the_middle_rebuilds_itself_with_one_warning(tmp_path, exp):
    for n in range(40):
        assert exp("add", "--name", f"run {n}", "--params", json.dumps({"n": n, "pad": "x" * 200})).code == 0
    index = next((tmp_path / "memory" / "experiments" / ".exp-cache").glob("*.sqlite3"))
    sqlite3.connect(index).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = bytearray(index.read_bytes())
    assert len(data) > 3 * 4096
    data[4096:8192] = b"\xde\xad" * 2048  # a damaged page in the middle
    index.write_bytes(bytes(data))
    listed = exp("list", "--json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["total"] == 40
    assert listed.err.count("warning:") == 1 and "rebuilt" in listed.err
    again = exp("list", "--json")
    assert again.code == 0 and again.err == "" and json.loads(again.out)["total"] == 40
    assert exp("add", "--name", "after").out.startswith("EXP-041")


def test_a_cache_file_that_is_not_a_database_is_replaced(tmp_path, exp):
    assert exp("add", "--name", "a").code == 0
    index = next((tmp_path / "memory" / "experiments" / ".exp-cache").glob("*.sqlite3"))
    for suffix in ("-wal", "-shm"):
        index.with_name(index.name + suffix).unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 500)
    result = exp("add", "--name", "b")
    assert result.code == 0 and "EXP-002" in result.out and "rebuilt" in result.err


def test_a_failing_index_update_after_the_line_is_written_is_a_warning_not_a_failure(tmp_path, exp, monkeypatch):
    ledger = tmp_path / "memory" / "experiments" / "experiments.jsonl"
    real, failed = LedgerIndex._catch_up, []

    def full_disk(self, stat):  # the disk fills up just after the line was appended
        if stat is not None and not failed:
            failed.append(stat)
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, stat)

    monkeypatch.setattr(LedgerIndex, "_catch_up", full_disk)
    result = exp("add", "--name", "kept")
    assert result.code == 0, result.err
    assert result.out.startswith("EXP-001")
    listed = exp("list", "--json")  # the index follows the line on the next read: that is where the disk is full
    assert listed.code == 0 and "warning:" in listed.err and "disk is full" in listed.err
    assert json.loads(listed.out)["total"] == 1
    monkeypatch.setattr(LedgerIndex, "_catch_up", real)
    assert [json.loads(line)["name"] for line in ledger.read_text().splitlines()] == ["kept"]
    assert exp("add", "--name", "next").out.startswith("EXP-002")  # no retry needed, no duplicate


def test_doctor_fix_writes_through_a_symlinked_ledger(tmp_path, exp):
    real = tmp_path / "shared" / "experiments.jsonl"
    assert exp("--store", str(real), "add", "--name", "a").code == 0
    with open(real, "ab") as handle:
        handle.write(b'{"id": "EXP-0')  # a torn line to repair
    link = tmp_path / "memory" / "experiments" / "experiments.jsonl"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    fixed = exp("doctor", "--fix")
    assert fixed.code == 0, fixed.err
    assert link.is_symlink() and link.resolve() == real
    assert exp("add", "--name", "b").code == 0
    assert [json.loads(line)["name"] for line in real.read_text().splitlines()] == ["a", "b"]
    with open_store(str(real)) as store:
        assert store.doctor()["healthy"]
