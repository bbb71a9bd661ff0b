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
