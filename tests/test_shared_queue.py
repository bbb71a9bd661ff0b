"""The lab's shared queue: work waits for a machine that can run it, on both stores.

Two machines are two workers with different EXP_MACHINE values, running in two checkouts
of one git repository at different paths, sharing one store.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import run_exp


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "exp").mkdir()
    (path / "exp" / "train.sh").write_text("echo $EXP_ID > ran-here.txt\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True)
    return path


@pytest.fixture
def machines(tmp_path, store_url):
    """Two checkouts of one repository (`mac` queues, `lab` runs) and their environments."""
    origin = _git_repo(tmp_path / "mac" / "project")
    clone = tmp_path / "lab" / "checkouts" / "project"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    runs = tmp_path / "runs"
    base = {**os.environ, "EXP_STORE": store_url, "EXP_RUNS_DIR": str(runs)}
    return {"mac": (origin, {**base, "EXP_MACHINE": "mac"}), "lab": (clone, {**base, "EXP_MACHINE": "lab"}),
            "runs": runs}


def _exp(machines, name: str, *args, cwd: Path | None = None):
    folder, env = machines[name]
    result = run_exp(*args, cwd=cwd or folder, env=env, timeout=120)
    return result


def _json(result) -> dict:
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_work_waits_for_a_machine_that_can_run_it(machines):
    mac_exp = machines["mac"][0] / "exp"
    # Queued on the laptop with EXP_MACHINE=mac set: no target, any machine may run it.
    anywhere = _json(_exp(machines, "mac", "add", "--name", "relative", "--command", "sh train.sh", "--json",
                          cwd=mac_exp))["experiment"]
    assert anywhere["machine"] is None and anywhere["repo_path"] == "exp"
    pinned = _json(_exp(machines, "mac", "add", "--name", "pinned", "--command", "true", "--machine", "gpu-box",
                        "--json"))["experiment"]
    cleared = _json(_exp(machines, "mac", "add", "--name", "cleared", "--command", "true", "--machine", "any",
                         "--gpus", "4", "--json"))["experiment"]
    assert pinned["machine"] == "gpu-box" and cleared["machine"] is None and cleared["gpus"] == 4

    lab = _exp(machines, "lab", "worker", "--gpus", "0,1", "--until-empty", "--poll", "0.05", "--json")
    report = _json(lab)
    assert [r["experiment"]["id"] for r in report["ran"]] == [anywhere["id"]]
    ran = report["ran"][0]["experiment"]
    assert ran["status"] == "SUCCESS" and ran["machine"] == "lab"  # where it ran
    assert ran["runner"]["gpus"] == "0"
    # It ran in the lab's own checkout of the folder, not at the laptop's path.
    assert (machines["lab"][0] / "exp" / "ran-here.txt").read_text().strip() == anywhere["id"]
    assert not (mac_exp / "ran-here.txt").exists()
    left = {item["id"]: item["why"] for item in report["left"]}
    assert left == {pinned["id"]: "for machine gpu-box", cleared["id"]: "needs 4 GPUs, this worker has 2"}
    statuses = {e["id"]: e["status"] for e in _json(_exp(machines, "lab", "list", "--json"))["experiments"]}
    assert statuses[pinned["id"]] == statuses[cleared["id"]] == "QUEUED"


def test_once_on_an_empty_queue_exits_at_once_and_says_what_it_left(machines):
    _exp(machines, "mac", "add", "--name", "by hand")  # no command: it waits for exp run --id
    result = _exp(machines, "lab", "worker", "--once")
    assert result.code == 0, result.err
    assert "ran 0; left 1 queued" in result.err and "no command" in result.err


def test_a_folder_missing_here_stays_queued_until_a_worker_can_run_it(machines, tmp_path):
    outside = tmp_path / "scratch"
    outside.mkdir()
    exp = _json(_exp(machines, "mac", "add", "--name", "scratch", "--command", "pwd", "--json", cwd=outside))
    outside.rmdir()
    report = _json(_exp(machines, "lab", "worker", "--until-empty", "--json"))
    assert report["ran"] == [] and "is not here" in report["left"][0]["why"]
    report = _json(_exp(machines, "lab", "worker", "--until-empty", "--workdir", str(tmp_path), "--json"))
    assert [r["experiment"]["id"] for r in report["ran"]] == [exp["experiment"]["id"]]


def test_requeue_runs_a_failed_experiment_again_as_attempt_two(machines):
    flag = machines["runs"].parent / "second-time"
    command = f"test -e {flag} || {{ touch {flag}; echo 'ValueError: bad batch' >&2; exit 3; }}"
    exp_id = _json(_exp(machines, "mac", "add", "--name", "flaky", "--command", command, "--json"))["experiment"]["id"]
    first = _json(_exp(machines, "lab", "worker", "--once", "--json"))["ran"][0]["experiment"]
    assert first["status"] == "FAILED" and first["failed_reason"] == "ValueError: bad batch"

    again = _json(_exp(machines, "mac", "requeue", exp_id, "--json"))["experiments"][0]
    assert again["status"] == "QUEUED" and again["metrics"] == {} and again["failed_reason"] is None
    assert "requeued by" in again["runner"]["requeued"]
    second = _json(_exp(machines, "lab", "worker", "--once", "--json"))["ran"][0]["experiment"]
    assert second["status"] == "SUCCESS" and second["runner"]["attempt"] == 2
    assert [(h["status"], h["failed_reason"], h["attempt"]) for h in second["history"]] == [
        ("FAILED", "ValueError: bad batch", 1)]
    refused = _exp(machines, "mac", "requeue", exp_id, "99")
    assert refused.code == 1 and "EXP-099" in refused.err
    assert _json(_exp(machines, "mac", "show", exp_id, "--json"))["experiment"]["status"] == "SUCCESS"  # untouched


def test_start_records_this_machine_and_cancel_records_who(exp, monkeypatch):
    monkeypatch.setenv("EXP_MACHINE", "mac")
    exp("add", "--name", "a", "--machine", "lab")
    started = json.loads(exp("start", "1", "--json").out)["experiment"]
    assert started["machine"] == "mac" and started["runner"]["target"] == "lab"
    exp("add", "--name", "b")
    cancelled = json.loads(exp("cancel", "2", "--json").out)["experiment"]
    assert cancelled["runner"]["cancelled_by"].endswith("@" + os.uname().nodename)


def _wait_for(check, what: str, timeout: float = 60):
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_workers_are_visible_and_a_run_elsewhere_shows_its_output(machines, tmp_path):
    import signal
    import sys

    fast = {"EXP_HEARTBEAT": "0.3", "EXP_LEASE": "3"}
    for name in ("mac", "lab"):
        machines[name][1].update(fast)
    script = "for i in 1 2 3 4 5 6 7 8 9; do echo step $i; echo 'warn 警告' >&2; sleep 0.3; done; sleep 60"
    for n in range(3):
        _exp(machines, "mac", "add", "--name", f"long {n}", "--command", script)
    folder, env = machines["lab"]
    procs = [subprocess.Popen([sys.executable, "-m", "expledger", "worker", "--gpus", gpus, "--gpus-per-run", per_run,
                               "--on-stop", "requeue", "--poll", "0.1"], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for gpus, per_run in (("0,1", "2"), ("2", "1"), ("3", "1"))]
    try:
        def live_with_runs():
            found = _json(_exp(machines, "mac", "workers", "--json"))["workers"]
            busy = [w for w in found if w["state"] == "live" and w["running"]]
            return found if len(busy) == 3 else None

        fleet = {w["pid"]: w for w in _wait_for(live_with_runs, "three busy workers")}
        assert fleet[procs[0].pid]["gpus"] == ["0", "1"] and fleet[procs[0].pid]["machine"] == "lab"
        assert fleet[procs[0].pid]["running"][0]["gpus"] == "0,1"
        running_id = fleet[procs[1].pid]["running"][0]["id"]

        # From the other workspace: the run's output, stdout and stderr as they came.
        logs = _wait_for(lambda: (lambda r: r if "step 3" in r["output"] else None)(
            _json(_exp(machines, "mac", "logs", running_id, "--json"))), "the output of a running experiment")
        assert logs["status"] == "RUNNING" and "warn 警告" in logs["output"]
        shown = _exp(machines, "mac", "show", running_id, cwd=tmp_path)
        assert "step " in shown.out and "GPUs 2" in shown.out

        procs[2].send_signal(signal.SIGKILL)
        gone = _wait_for(lambda: [w for w in _json(_exp(machines, "mac", "workers", "--json"))["workers"]
                                  if w["pid"] == procs[2].pid and w["state"] == "gone"], "the killed worker gone")
        assert gone
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    after = {w["pid"]: w["state"] for w in _json(_exp(machines, "mac", "workers", "--json"))["workers"]}
    assert after[procs[0].pid] == after[procs[1].pid] == "stopped"
    table = _exp(machines, "mac", "workers")
    assert "stopped" in table.out and "gone" in table.out


def test_show_of_a_requeued_run_says_which_attempt_is_next_and_why_the_last_ended(exp):
    exp("add", "--name", "x", "--command", "false")
    assert exp("worker", "--once").code == 0
    assert exp("requeue", "1", "--reason", "flaky node").code == 0
    shown = exp("show", "1").out
    assert "attempt 2 next" in shown and "flaky node" in shown
    assert "attempt 1" in shown and "FAILED" in shown and "exit code 1" in shown
    assert "pid None" not in shown


def test_logs_follow_waits_for_a_queued_run_and_ends_with_it(tmp_path):
    import sys

    env = {**os.environ, "EXP_HEARTBEAT": "0.3"}
    run_exp("add", "--name", "talks", "--command", "echo first; sleep 1; echo second", cwd=tmp_path)
    worker = subprocess.Popen([sys.executable, "-m", "expledger", "worker", "--once"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    followed = run_exp("logs", "1", "--follow", "--json", cwd=tmp_path, env=env, timeout=120)
    worker.wait(timeout=60)
    body = _json(followed)
    assert body["status"] == "SUCCESS" and body["output"] == "first\nsecond\n" and body["skipped"] == 0
