"""Lifecycle transitions applied by several real processes at once, on each store: the
compare-and-set loop (store/base.py) lets exactly one win where the lifecycle allows one,
and loses no write where every one is allowed."""

from __future__ import annotations

import json
import subprocess
import sys

from expledger.errors import IllegalTransition
from expledger.lifecycle import Amend, Cancel, Result, Start
from expledger.models import Status
from expledger.store import open_store

# Each process gets its transition as JSON (the process boundary transitions are made for),
# waits for the go file so all of them race, applies it and says how it went.
APPLIER = """
import json, os, sys, time
from expledger.errors import IllegalTransition
from expledger.lifecycle import Transition
from expledger.store import open_store
url, ref, go, transitions = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with open_store(url) as store:
    store.get(ref)  # connected and read before the race starts
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    for data in transitions:
        try:
            exp = store.apply(ref, Transition.from_json(data))
            print("won", exp.rev, flush=True)
        except IllegalTransition as err:
            print("refused", str(err).replace(chr(10), " "), flush=True)
"""


def _race(url, ref, tmp_path, per_process):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", APPLIER, url, ref, str(go),
                               json.dumps([t.to_json() for t in transitions])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for transitions in per_process]
    for proc in procs:  # every one started and connected: the race is tight
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(out.splitlines())
    return outputs


def test_two_results_at_once_without_force_one_wins_the_other_is_refused(store_url, tmp_path):
    with open_store(store_url) as store:
        exp = store.add(name="race", status="running")
    results = [Result(status="success", metrics={"by": n}) if n % 2 else Result(status="failed", reason=f"by {n}")
               for n in range(5)]
    outputs = _race(store_url, exp.id, tmp_path, [[r] for r in results])
    won = [n for n, lines in enumerate(outputs) if lines[0].startswith("won")]
    assert len(won) == 1, outputs
    refused = [lines[0] for n, lines in enumerate(outputs) if n not in won]
    assert all(line.startswith("refused") and "already has a result" in line for line in refused), refused
    with open_store(store_url) as store:
        final = store.get(exp.id)
    assert final.rev == 2 and not final.history  # written once, nothing replaced
    winner = results[won[0]]
    assert final.status is Status.parse(winner.status)
    assert final.metrics == (winner.metrics or {}) and final.failed_reason == winner.reason


def test_two_starts_and_a_cancel_at_once_start_it_at_most_once(store_url, tmp_path):
    with open_store(store_url) as store:
        exp = store.add(name="queued")
    outputs = _race(store_url, exp.id, tmp_path, [[Start(machine="a")], [Start(machine="b")], [Cancel(reason="no")]])
    won = [n for n, lines in enumerate(outputs) if lines[0].startswith("won")]
    with open_store(store_url) as store:
        final = store.get(exp.id)
    assert 2 in won and final.status is Status.CANCELLED  # queued or running, a cancel is allowed
    assert len([n for n in won if n < 2]) <= 1  # never started twice; not at all if the cancel came first
    assert (final.started is not None) == (len(won) == 2)
    assert final.rev == 1 + len(won)


def test_concurrent_amendments_from_several_processes_lose_none(store_url, tmp_path):
    with open_store(store_url) as store:
        exp = store.add(name="shared", status="running")
    processes, each = 4, 6
    per_process = [[Amend(metrics={f"p{p}_{k}": k}) for k in range(each)] for p in range(processes)]
    outputs = _race(store_url, exp.id, tmp_path, per_process)
    assert all(line.startswith("won") for lines in outputs for line in lines), outputs
    with open_store(store_url) as store:
        final = store.get(exp.id)
    assert final.metrics == {f"p{p}_{k}": k for p in range(processes) for k in range(each)}  # none lost
    assert final.rev == 1 + processes * each
    revs = sorted(int(line.split()[1]) for lines in outputs for line in lines)
    assert revs == list(range(2, 2 + processes * each))  # every write made its own version


def test_a_refused_transition_writes_nothing(store):
    exp = store.add(name="done")
    store.apply(exp.id, Result(status="success"))
    before = store.get(exp.id)
    try:
        store.apply(exp.id, Result(status="failed", reason="again"))
    except IllegalTransition as err:
        assert "force" in str(err)
    else:
        raise AssertionError("a second result without force was accepted")
    assert store.get(exp.id) == before
    replaced = store.apply(exp.id, Result(status="failed", reason="again", force=True))
    assert replaced.rev == before.rev + 1 and replaced.history[-1]["status"] == "SUCCESS"


def test_a_result_whose_reply_was_lost_with_the_connection_is_not_refused_as_a_second_one(postgres_url):
    """PostgreSQL: the write committed but the connection broke before the answer came; the
    retry finds its own write there and returns it (not IllegalTransition for a "second" result)."""
    from expledger.store.postgres import _ConnectionLost

    with open_store(postgres_url) as store:
        exp = store.add(name="x", status="running")
        real_again, lost = store._again, []

        def again(operation):
            def once(retry):
                done = operation(retry)
                if operation.__name__ == "write" and not lost:  # the write committed; its reply is lost
                    lost.append(True)
                    store.db.close()
                    raise _ConnectionLost("lost the connection (test)")
                return done
            return real_again(once)

        store._again = again
        recorded = store.apply(exp.id, Result(status="success", metrics={"acc": 0.9}))
        store._again = real_again
        assert lost and recorded.status is Status.SUCCESS
        held = store.get(exp.id)
    assert held.rev == 2 and held.metrics == {"acc": 0.9} and not held.history  # written once
