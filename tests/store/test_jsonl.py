"""What only the JSONL store promises: the file format, the index, torn lines, full disks."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from expledger.errors import StoreError
from expledger.models import Status
from expledger.store import open_store

SEED_LEDGER = [
    # What the original seed tool wrote: one complete record a line, no uuid, no version.
    {"id": "EXP-001", "name": "whisper logit lens", "task": "layer-analysis", "model": "whisper-base",
     "params": {"layers": 6}, "command": "python3 lens.py", "machine": "lab", "status": "queued",
     "created": "2025-06-01T10:00:00", "started": None, "completed": None, "metrics": {},
     "summary": "", "failed_reason": "", "tags": []},
    {"id": "EXP-002", "name": "whisper-large", "task": "layer-analysis", "model": "whisper-large",
     "params": {"layers": 32}, "command": "python3 big.py", "machine": "mac", "status": "queued",
     "created": "2025-06-01T11:00:00", "started": None, "completed": None, "metrics": {},
     "summary": "", "failed_reason": "", "tags": ["large"]},
    {"id": "EXP-001", "name": "whisper logit lens", "task": "layer-analysis", "model": "whisper-base",
     "params": {"layers": 6}, "command": "python3 lens.py", "machine": "lab", "status": "success",
     "created": "2025-06-01T10:00:00", "started": None, "completed": "2025-06-01T12:00:00",
     "metrics": {"accuracy": 0.934}, "summary": "2 clusters", "failed_reason": "", "tags": []},
]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "memory" / "experiments" / "experiments.jsonl"


def _write_lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _naive_read(path) -> dict:
    """The reader SPEC §1 promises to keep working: the last line per id."""
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_a_seed_ledger_is_read_and_continued(path):
    _write_lines(path, SEED_LEDGER)
    with open_store(str(path)) as store:
        one = store.get("EXP-001")
        assert (one.status, one.metrics, one.summary) == (Status.SUCCESS, {"accuracy": 0.934}, "2 clusters")
        assert [e.id for e in store.queue()] == ["EXP-002"]
        assert store.add(name="next").id == "EXP-003"
        store.result("EXP-002", status=Status.FAILED, summary="OOM")
    naive = _naive_read(path)
    assert naive["EXP-002"]["status"] == "FAILED" and naive["EXP-002"]["failed_reason"] == "OOM"
    assert naive["EXP-001"]["status"] == "success"  # untouched lines stay as the seed wrote them
    assert naive["EXP-003"]["status"] == "QUEUED"
    with open_store(str(path)) as store:  # and our update of a seed record is the current state
        assert store.get(2).status is Status.FAILED and store.get(2).tags == ["large"]
        assert [e.id for e in store.search(where="status = success and tags has large or id = 2")] == ["EXP-002"]
        assert store.doctor()["problems"] == []


def test_every_write_is_one_appended_line_and_earlier_lines_never_change(path):
    with open_store(str(path)) as store:
        store.add(name="a")
        before = path.read_bytes()
        store.start(1)
        store.result(1, status=Status.SUCCESS, metrics={"acc": 1.0})
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 3
    assert _naive_read(path)["EXP-001"]["status"] == "SUCCESS"


def test_the_index_follows_appends_from_other_writers_and_rebuilds_after_a_rewrite(path):
    with open_store(str(path)) as store:
        store.add(name="a")
    # Another tool appends a line behind our back: the next reader sees it.
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(SEED_LEDGER[1], id="EXP-002")) + "\n")
    with open_store(str(path)) as store:
        assert store.get(2).name == "whisper-large"
    # The file is replaced (git checkout, a merge): the index starts over.
    _write_lines(path, SEED_LEDGER)
    with open_store(str(path)) as store:
        assert store.get(1).name == "whisper logit lens" and store.search().total == 2
    # The index is deleted: it is rebuilt from the log, losing nothing.
    for cached in (path.parent / ".exp-cache").glob("*.sqlite3*"):
        cached.unlink()
    with open_store(str(path)) as store:
        assert store.get(1).status is Status.SUCCESS


def test_an_in_place_edit_of_an_earlier_line_is_found_by_doctor_and_fixed(path):
    with open_store(str(path)) as store:
        store.add(name="before")
        store.add(name="second")
        assert store.search().total == 2  # a read catches the index up with both lines
    assert (path.parent / ".exp-cache" / "experiments.jsonl.sqlite3").exists()
    text = path.read_text(encoding="utf-8").replace('"before"', '"edited"')
    with open(path, "r+", encoding="utf-8") as handle:  # same inode, same size: an editor saving in place
        handle.write(text)
    with open_store(str(path)) as store:
        report = store.doctor()
        assert [p["kind"] for p in report["problems"]] == ["index_stale"]
        assert store.doctor(fix=True)["healthy"]
    with open_store(str(path)) as store:
        assert store.get(1).name == "edited" and store.doctor()["problems"] == []


def test_a_torn_line_is_skipped_with_a_warning_and_quarantined_by_doctor(path):
    warnings = []
    with open_store(str(path)) as store:
        store.add(name="a")
    with open(path, "ab") as handle:
        handle.write(b'{"id": "EXP-002", "name": "cut o')  # a writer died mid-line
    with open_store(str(path), warn=warnings.append) as store:
        assert store.search().total == 1 and warnings == []  # it may still be a write in progress
    os.utime(path, (time.time() - 60, time.time() - 60))
    with open_store(str(path), warn=warnings.append) as store:
        assert store.search().total == 1
        assert warnings and "line 2) is incomplete" in warnings[-1]
        created = store.add(name="b")  # does not glue onto the torn line
        assert created.id == "EXP-002"
    assert path.read_bytes().count(b"\n") == 3
    with open_store(str(path), warn=warnings.append) as store:
        assert [e.name for e in store.search(sort="id")] == ["a", "b"]
        assert any("line 2" in w for w in warnings)
        report = store.doctor()
        assert [(p["kind"], p["line"]) for p in report["problems"]] == [("unreadable", 2)]
        assert not report["healthy"]
        fixed = store.doctor(fix=True)
        assert fixed["healthy"] and fixed["problems"][0]["fixed"]
    quarantine = path.with_name("experiments.jsonl.quarantine")
    assert quarantine.read_bytes() == b'{"id": "EXP-002", "name": "cut o\n'
    assert path.read_bytes().count(b"\n") == 2
    with open_store(str(path), warn=warnings.append) as store:
        assert [e.name for e in store.search(sort="id")] == ["a", "b"]
        assert store.doctor()["problems"] == []


def test_a_full_disk_leaves_the_ledger_byte_identical(path):
    with open_store(str(path)) as store:
        store.add(name="a")
    before = path.read_bytes()
    # The child may grow files only a few bytes past the ledger's size: the append is cut short.
    limit = len(before) + 10
    code = (
        "import sys\nfrom expledger.store import open_store\nfrom expledger.errors import StoreError\n"
        f"store = open_store({str(path)!r})\n"
        "try:\n    store.add(name='x' * 500)\nexcept StoreError as err:\n    print(err); sys.exit(7)\n"
    )

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-c", code], preexec_fn=limit_file_size, capture_output=True, text=True)
    assert proc.returncode == 7, proc.stderr
    assert "nothing was recorded" in proc.stdout
    assert path.read_bytes() == before
    with open_store(str(path)) as store:
        assert store.search().total == 1 and store.add(name="after").id == "EXP-002"


def test_an_unwritable_place_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with open_store(str(blocker / "experiments.jsonl")) as store:
        with pytest.raises(StoreError, match="cannot write the ledger"):
            store.add(name="a")
        with pytest.raises(StoreError, match="cannot read the ledger"):
            store.search()


def test_reads_work_when_the_index_folder_cannot_be_created(path):
    _write_lines(path, SEED_LEDGER)
    (path.parent / ".exp-cache").write_text("not a folder")
    with open_store(str(path)) as store:
        assert store.get(1).status is Status.SUCCESS


def test_a_missing_ledger_reads_as_empty_and_creates_nothing(tmp_path):
    with open_store(str(tmp_path / "nowhere" / "experiments.jsonl")) as store:
        found = store.search()
        assert (found, found.total) == ([], 0)
    assert not (tmp_path / "nowhere").exists()


def test_a_ledger_on_nfs_is_detected_so_writers_are_warned():
    from pathlib import Path

    from expledger.store.jsonl import network_file_system

    mounts = ("/dev/vda1 / ext4 rw 0 0\n"
              "lab:/export/home /home/leo nfs4 rw,relatime 0 0\n"
              "tmpfs /home/leo/tmp tmpfs rw 0 0\n")
    assert network_file_system(Path("/home/leo/ws/memory/experiments"), mounts) == "nfs4"
    assert network_file_system(Path("/home/leo/tmp/x"), mounts) is None
    assert network_file_system(Path("/home/leonard"), mounts) is None
    assert network_file_system(Path("/srv"), mounts) is None


def test_a_complete_last_line_without_newline_is_terminated_not_quarantined(path):
    _write_lines(path, SEED_LEDGER[:2])
    with open(path, "ab") as handle:
        handle.write(json.dumps(SEED_LEDGER[2]).encode())  # another tool forgot the newline
    with open_store(str(path)) as store:
        assert store.get(1).status is Status.QUEUED  # reads wait for the newline
        report = store.doctor()
        assert [p["kind"] for p in report["problems"]] == ["unterminated"]
        assert store.doctor(fix=True)["healthy"]
    assert not path.with_name("experiments.jsonl.quarantine").exists()
    with open_store(str(path)) as store:
        assert store.get(1).status is Status.SUCCESS and store.doctor()["problems"] == []


def test_a_store_kept_open_sees_what_another_process_wrote_since_its_last_read(tmp_path):
    """Writers leave the index to readers: a long-lived reader (the dashboard's store) must
    still see every line appended after its first read."""
    path = tmp_path / "experiments.jsonl"
    with open_store(str(path)) as reader:
        reader.add(name="first")
        assert [e.name for e in reader.search()] == ["first"]
        subprocess.run([sys.executable, "-m", "expledger", "--store", str(path), "add", "--name", "second"],
                       check=True, capture_output=True)
        assert [e.name for e in reader.search(sort="id")] == ["first", "second"]
        assert reader.get(2).name == "second"
