"""Many real writer processes on one JSONL ledger; writers killed with SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from expledger.models import Status
from expledger.store import open_store

WRITER = """
import sys
from expledger.models import Status
from expledger.store import open_store
path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open_store(path) as store:
    for i in range(count):
        exp = store.add(name=f"{worker}-{i}", task=worker, params={"i": i})
        store.result(exp.id, status=Status.SUCCESS, metrics={"i": i})
        print(exp.id, flush=True)
"""


def test_eight_processes_adding_and_recording_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "experiments.jsonl")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, path, f"w{n}", "25"], stdout=subprocess.PIPE, text=True)
        for n in range(8)
    ]
    acked = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        acked += out.split()
    assert len(acked) == len(set(acked)) == 200
    lines = open(path, encoding="utf-8").read().splitlines()
    assert len(lines) == 400  # no torn or merged line: each parses on its own
    records = [json.loads(line) for line in lines]
    with open_store(path) as store:
        found = store.search(limit=None, sort="id")
    assert found.total == 200
    assert [e.id for e in found] == [f"EXP-{n:03d}" for n in range(1, 201)]  # no duplicate, none skipped
    assert all(e.status is Status.SUCCESS and e.metrics == {"i": e.params["i"]} for e in found)
    assert {r["uuid"] for r in records} == {e.uuid for e in found}


def test_writers_killed_at_random_moments_never_lose_an_acknowledged_write(tmp_path):
    path = str(tmp_path / "experiments.jsonl")
    rng = random.Random(7)
    acked = []
    for round_ in range(12):
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, path, f"r{round_}w{n}", "1000"],
                             stdout=subprocess.PIPE, text=True)
            for n in range(3)
        ]
        acked.append(procs[0].stdout.readline().strip())  # writing has begun, however slow the machine
        time.sleep(rng.random() * 0.5)
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            out, _ = proc.communicate()
            acked += out.split()
    assert acked, "the writers never got a write acknowledged"
    with open_store(path, warn=lambda m: None) as store:
        for exp_id in acked:
            assert store.get(exp_id).status is Status.SUCCESS
        found = store.search(limit=None, sort="id")
        numbers = [int(e.id[4:]) for e in found]
        assert numbers == list(range(1, found.total + 1))  # no duplicate, none skipped
        report = store.doctor()
        assert report["healthy"], report["problems"]
