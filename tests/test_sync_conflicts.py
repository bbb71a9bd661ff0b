"""Syncing ledgers without losing anything (issue 8 items 1, 2, 8; issue 16 item 1).

Two machines that change one experiment before a `git pull`, IDs shared after a git union,
IDs that never move once a store holds them, all-or-nothing copy and merge, and NUL text.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from expledger.conflicts import outcome_keys
from expledger.errors import BadInput, IllegalTransition
from expledger.models import Status
from expledger.store import open_store
from expledger.transfer import merge

from .conftest import needs_postgres, run_exp


def _naive(path) -> dict:
    """The last line per id: what a reader without expledger sees."""
    return {r["id"]: r for r in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines())}


def _two_machines(tmp_path, names=("shared",)) -> tuple[Path, Path]:
    lab = tmp_path / "lab" / "memory" / "experiments" / "experiments.jsonl"
    assert run_exp("--store", lab, "add", "--name", names[0], cwd=tmp_path).code == 0
    for name in names[1:]:
        assert run_exp("--store", lab, "add", "--name", name, cwd=tmp_path).code == 0
    laptop = tmp_path / "laptop" / "memory" / "experiments" / "experiments.jsonl"
    laptop.parent.mkdir(parents=True)
    shutil.copy(lab, laptop)  # both machines pulled the same ledger
    return lab, laptop


def _union(ours: Path, theirs: Path, common: int) -> None:
    """What git's `merge=union` leaves: our lines, then their lines after the common ones."""
    extra = theirs.read_text(encoding="utf-8").splitlines(keepends=True)[common:]
    with open(ours, "a", encoding="utf-8") as out:
        out.write("".join(extra))


def test_a_result_and_a_cancel_made_apart_keep_the_result_after_a_git_union(tmp_path, exp):
    lab, laptop = _two_machines(tmp_path)
    common = len(lab.read_text().splitlines())
    assert exp("--store", lab, "result", "1", "--status", "success", "--metrics", '{"acc": 0.9}').code == 0
    assert exp("--store", laptop, "cancel", "1").code == 0
    _union(lab, laptop, common)
    shown = json.loads(exp("--store", lab, "show", "1", "--json").out)["experiment"]
    assert shown["status"] == "SUCCESS" and shown["metrics"] == {"acc": 0.9}
    assert [(h["status"], h.get("conflict")) for h in shown["history"]] == [("CANCELLED", True)]
    report = exp("--store", lab, "doctor")
    assert report.code == 1 and "changed on two machines" in report.out and "CANCELLED" in report.out
    assert exp("--store", lab, "doctor", "--fix").code == 0
    assert _naive(lab)["EXP-001"]["status"] == "SUCCESS"  # the file and exp agree now
    healthy = exp("--store", lab, "doctor")
    assert healthy.code == 0, healthy.out
    assert json.loads(exp("--store", lab, "show", "1", "--json").out)["experiment"] == shown


def test_exp_merge_either_way_keeps_the_result_and_reports_the_conflict(tmp_path, exp):
    lab, laptop = _two_machines(tmp_path)
    assert exp("--store", lab, "result", "1", "--status", "success", "--metrics", '{"acc": 0.9}').code == 0
    assert exp("--store", laptop, "cancel", "1", "--reason", "not needed").code == 0
    lab2, laptop2 = tmp_path / "lab2.jsonl", tmp_path / "laptop2.jsonl"
    shutil.copy(lab, lab2)
    shutil.copy(laptop, laptop2)
    merged = exp("--store", laptop, "merge", str(lab))
    assert merged.code == 0 and "conflict EXP-001" in merged.out and "kept SUCCESS" in merged.out
    assert exp("--store", lab2, "merge", str(laptop2)).code == 0
    for path in (laptop, lab2):
        record = json.loads(exp("--store", path, "show", "1", "--json").out)["experiment"]
        assert record["status"] == "SUCCESS" and record["metrics"] == {"acc": 0.9}
        assert record["history"][0]["status"] == "CANCELLED" and record["history"][0]["summary"] == "not needed"
    again = json.loads(exp("--store", laptop, "merge", str(lab), "--json").out)["report"]
    assert again["added"] == again["updated"] == 0 and again["conflicts"] == []


def test_two_results_made_apart_keep_the_later_current_and_the_other_in_history(tmp_path, exp):
    lab, laptop = _two_machines(tmp_path)
    assert exp("--store", laptop, "result", "1", "--status", "failed", "--reason", "OOM").code == 0
    assert exp("--store", lab, "result", "1", "--status", "success", "--metrics", '{"acc": 0.8}').code == 0
    assert exp("--store", laptop, "merge", str(lab)).code == 0
    record = json.loads(exp("--store", laptop, "show", "1", "--json").out)["experiment"]
    assert record["status"] == "SUCCESS" and [h["failed_reason"] for h in record["history"]] == ["OOM"]


def test_an_id_shared_after_a_git_union_means_the_one_doctor_fix_keeps(tmp_path, exp):
    lab = tmp_path / "lab.jsonl"
    laptop = tmp_path / "laptop.jsonl"
    assert exp("--store", lab, "add", "--name", "lab first").code == 0
    assert exp("--store", laptop, "add", "--name", "laptop later").code == 0
    _union(lab, laptop, 0)
    started = exp("--store", lab, "start", "EXP-001")
    assert started.code == 0 and "lab first" in started.err and "doctor --fix" in started.err
    queue = json.loads(exp("--store", lab, "show", "1", "--json").out)["experiment"]
    assert queue["name"] == "lab first" and queue["status"] == "RUNNING"
    assert exp("--store", lab, "doctor", "--fix").code == 0
    with open_store(str(lab)) as store:
        names = {e.name: (e.id, e.status.value) for e in store.search(limit=None)}
    assert names == {"lab first": ("EXP-001", "RUNNING"), "laptop later": ("EXP-002", "QUEUED")}


def test_a_running_experiment_keeps_its_id_when_a_union_brings_an_older_one(tmp_path, exp):
    lab, laptop = tmp_path / "lab.jsonl", tmp_path / "laptop.jsonl"
    assert exp("--store", laptop, "add", "--name", "laptop older").code == 0
    assert exp("--store", lab, "add", "--name", "lab running", "--status", "running").code == 0
    _union(lab, laptop, 0)
    assert json.loads(exp("--store", lab, "show", "1", "--json").out)["experiment"]["name"] == "lab running"
    assert exp("--store", lab, "doctor", "--fix").code == 0
    with open_store(str(lab)) as store:
        assert store.get("EXP-001").name == "lab running" and store.get("EXP-002").aliases == ["EXP-001"]


def _older_ledger(tmp_path) -> Path:
    older = tmp_path / "older.jsonl"
    with open_store(str(older)) as store:
        for n in range(3):
            exp = store.add(name=f"older {n + 1}")
            store.result(exp.id, status=Status.SUCCESS, metrics={"n": n})
    return older


def _ids_never_move(target_url: str, older: Path, run_copy) -> None:
    with open_store(target_url) as target:
        target.add(name="team 1")
        running = target.add(name="team 2 running", status=Status.RUNNING, runner={"host": "lab", "pid": 1})
        before = {e.uuid: e.id for e in target.search(limit=None)}
    report = run_copy()
    assert {moved["was"] for moved in report["renumbered"]} == {"EXP-001", "EXP-002"}
    with open_store(target_url) as target:
        after = {e.uuid: e for e in target.search(limit=None)}
        assert {u: after[u].id for u in before} == before  # no ID the target held changed
        moved = {e.name: (e.id, e.aliases) for e in after.values() if e.name.startswith("older")}
        assert moved == {"older 1": ("EXP-003", ["EXP-001"]), "older 2": ("EXP-004", ["EXP-002"]),
                         "older 3": ("EXP-005", ["EXP-003"])} or sorted(i for i, _ in moved.values()) == [
            "EXP-003", "EXP-004", "EXP-005"]
        done = target.result(running.id, status=Status.SUCCESS, metrics={"acc": 1.0})
        assert done.uuid == running.uuid  # its runner's ID still names it
        assert target.add(name="next").id == "EXP-006"


def test_exp_merge_never_changes_an_id_the_ledger_holds(tmp_path):
    target = str(tmp_path / "team.jsonl")
    older = _older_ledger(tmp_path)

    def run_merge():
        result = run_exp("--store", target, "merge", str(older), "--json", cwd=tmp_path)
        assert result.code == 0, result.err
        return json.loads(result.out)["report"]

    _ids_never_move(target, older, run_merge)


@needs_postgres
def test_exp_copy_into_postgres_never_changes_an_id_it_holds(tmp_path, postgres_url):
    older = _older_ledger(tmp_path)

    def run_copy():
        result = run_exp("copy", "--from", str(older), "--to", postgres_url, "--json", cwd=tmp_path)
        assert result.code == 0, result.err
        return json.loads(result.out)["report"]

    _ids_never_move(postgres_url, older, run_copy)


def test_a_merge_with_one_unusable_record_writes_nothing(tmp_path, exp):
    target = tmp_path / "team.jsonl"
    assert exp("--store", target, "add", "--name", "team 1").code == 0
    source = tmp_path / "other.jsonl"
    with open_store(str(source)) as store:
        store.add(name="other 1")
    with open(source, "a", encoding="utf-8") as out:
        out.write(json.dumps({"id": "weird-id", "name": "hand-written", "uuid": "u-1", "status": "QUEUED"}) + "\n")
    before = target.read_bytes()
    result = exp("--store", target, "merge", str(source), "--json")
    if result.code:  # refused whole: nothing written
        assert result.code == 2 and "weird-id" in result.err and target.read_bytes() == before
    else:  # or the record refused at the door, reported, and the rest merged without touching the target's IDs
        report = json.loads(result.out)["report"]
        assert len(report["refused"]) == 1 and report["renumbered"][0]["was"] == "EXP-001"
        with open_store(str(target)) as store:
            assert store.get("EXP-001").name == "team 1"


def test_a_merge_cut_short_by_a_full_disk_writes_nothing(tmp_path):
    target = tmp_path / "team.jsonl"
    source = tmp_path / "other.jsonl"
    with open_store(str(target)) as store:
        store.add(name="team 1")
    with open_store(str(source)) as store:
        for n in range(20):
            store.add(name=f"other {n}", params={"pad": "x" * 200})
    before = target.read_bytes()
    limit = len(before) + 2000  # room for a few records, not for twenty

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "expledger", "--store", str(target), "merge", str(source)],
                          preexec_fn=limit_file_size, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "nothing was recorded" in proc.stderr
    assert target.read_bytes() == before


@needs_postgres
def test_nul_text_is_stored_alike_on_both_stores(tmp_path, postgres_url):
    ledger = tmp_path / "a.jsonl"
    with open_store(str(ledger)) as store:
        exp = store.add(name="a\x00b", params={"k\x00": "v\x00"})
        store.result(exp.id, status=Status.FAILED, reason="stderr said \x00")
    assert b"\\u0000" not in ledger.read_bytes()
    copied = run_exp("copy", "--from", str(ledger), "--to", postgres_url, cwd=tmp_path)
    assert copied.code == 0, copied.err
    with open_store(str(ledger)) as a, open_store(postgres_url) as b:
        assert a.get(1).to_dict() == b.get(1).to_dict()
        assert b.get(1).name == "a\u2400b" and b.get(1).failed_reason == "stderr said \u2400"
    script = tmp_path / "nul.py"
    script.write_text("raise RuntimeError('bad \\x00 byte')\n")
    ran = run_exp("--store", postgres_url, "run", "--", sys.executable, str(script), cwd=tmp_path)
    assert ran.code == 1, ran.err
    with open_store(postgres_url) as store:
        last = store.search(sort="-id", limit=1)[0]
    assert last.status is Status.FAILED and "\u2400" in last.failed_reason


# --- the property: merging in either order gives the same experiments, no result is lost ---

_op = st.tuples(st.sampled_from(["add", "start", "success", "failed", "cancel", "force"]), st.integers(0, 5))


class _Clock:
    """A shared clock a millisecond apart per call, so no two outcomes share a moment."""

    def __init__(self):
        self.moment = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self):
        self.moment += timedelta(milliseconds=1)
        return self.moment


def _apply(store, ops, known: list, outcomes: set) -> None:
    for op, pick in ops:
        try:
            if op == "add" or not known:
                known.append(store.add(name=f"new {len(known)}").id)
                continue
            ref = known[pick % len(known)]
            if op == "start":
                store.start(ref)
            elif op == "cancel":
                store.cancel(ref)
            else:
                status = Status.FAILED if op == "failed" else Status.SUCCESS
                done = store.result(ref, status=status, metrics={"m": pick}, reason="r" if op == "failed" else None,
                                    force=op == "force")
                outcomes.add((done.uuid, done.status.value, done.completed))
        except (IllegalTransition, BadInput):
            pass


def _outcomes(store) -> dict:
    return {exp.uuid: (exp.status.value, exp.metrics, exp.summary, exp.failed_reason, exp.completed,
                       json.dumps(exp.history, sort_keys=True)) for exp in store.search(limit=None)}


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.lists(_op, max_size=8), st.lists(_op, max_size=8))
def test_merging_two_replicas_either_way_gives_the_same_experiments_and_loses_no_result(base, ops_a, ops_b):
    from expledger.store.jsonl import JsonlStore

    clock = _Clock()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with JsonlStore(root / "common.jsonl", now=clock) as common:
            for n in range(base):
                common.add(name=f"base {n}")
        paths = {name: root / f"{name}.jsonl" for name in ("a", "b", "ab", "ba")}
        for name in paths:
            shutil.copy(root / "common.jsonl", paths[name])
        recorded: set = set()
        for name, ops in (("a", ops_a), ("b", ops_b)):
            with JsonlStore(paths[name], now=clock) as replica:
                _apply(replica, ops, [f"EXP-{n + 1:03d}" for n in range(base)], recorded)
        shutil.copy(paths["a"], paths["ab"])
        shutil.copy(paths["b"], paths["ba"])
        warn = lambda message: None  # noqa: E731
        with JsonlStore(paths["b"], warn=warn) as b, JsonlStore(paths["ab"], warn=warn) as ab:
            merge(b, ab)  # B into A
        with JsonlStore(paths["a"], warn=warn) as a, JsonlStore(paths["ba"], warn=warn) as ba:
            merge(a, ba)  # A into B
        with JsonlStore(paths["ab"], warn=warn) as ab, JsonlStore(paths["ba"], warn=warn) as ba:
            assert _outcomes(ab) == _outcomes(ba)  # the same experiments, the same outcomes
            for exp in ab.search(limit=None):  # no recorded result lost
                held = {key[:2] for key in outcome_keys(exp.to_dict())}  # (status, completed)
                assert {(s, c) for u, s, c in recorded if u == exp.uuid} <= held
            assert len({e.id for e in ab.search(limit=None)}) == ab.search(limit=0).total  # IDs unique
        with JsonlStore(paths["a"], warn=warn) as a, JsonlStore(paths["ab"], warn=warn) as ab:
            again = merge(a, ab)
        assert again["added"] == again["updated"] == 0 and again["conflicts"] == []  # merging again changes nothing


def test_merging_a_seed_tool_ledger_again_keeps_what_was_done_here_since(tmp_path, exp):
    """A seed-tool record (rev 0, no versions) merged once and changed here must not lose that
    change when the same ledger is merged again: the outcome made here stays, nothing dropped."""
    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps({"id": "EXP-001", "name": "lens", "status": "success", "created": "2026-10-01T09:00:00",
                                "completed": "2026-10-01T10:00:00", "metrics": {"acc": 0.9}}) + "\n")
    target = tmp_path / "t" / "experiments.jsonl"
    assert exp("--store", target, "merge", seed).code == 0
    assert exp("--store", target, "result", "1", "--status", "failed", "--reason", "wrong split",
               "--force").code == 0
    assert exp("--store", target, "merge", seed).code == 0
    shown = json.loads(exp("--store", target, "show", "1", "--json").out)["experiment"]
    outcomes = [(shown["status"], shown["failed_reason"])] + [(h["status"], h.get("failed_reason"))
                                                               for h in shown["history"]]
    assert ("FAILED", "wrong split") in outcomes
    assert ("SUCCESS", None) in outcomes


def test_a_seed_tool_line_after_a_change_made_here_keeps_both_outcomes(tmp_path, exp):
    """A git union can put a seed-tool line (rev 0) after our own version of that experiment:
    the later line is current, as the seed tool meant, and our outcome stays in its history."""
    ledger = tmp_path / "experiments.jsonl"
    line = {"id": "EXP-001", "name": "lens", "status": "success", "created": "2026-10-01T09:00:00",
            "completed": "2026-10-01T10:00:00", "metrics": {"acc": 0.9}}
    ledger.write_text(json.dumps(line) + "\n")
    assert exp("--store", ledger, "result", "1", "--status", "failed", "--reason", "wrong split", "--force").code == 0
    with open(ledger, "a") as out:
        out.write(json.dumps({**line, "completed": "2099-01-01T10:00:00", "metrics": {"acc": 0.95}}) + "\n")
    shown = json.loads(exp("--store", ledger, "show", "1", "--json").out)["experiment"]
    assert (shown["status"], shown["metrics"]) == ("SUCCESS", {"acc": 0.95})
    assert ("FAILED", "wrong split") in [(h["status"], h.get("failed_reason")) for h in shown["history"]]
    assert exp("--store", ledger, "doctor", "--fix").code == 0
    assert json.loads(exp("--store", ledger, "show", "1", "--json").out)["experiment"]["history"] == shown["history"]
