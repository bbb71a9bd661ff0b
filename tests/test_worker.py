"""`exp worker`: exactly once across processes, chaos, GPU slots, targets, giving work back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from expledger.models import Status
from expledger.store import open_store

from .conftest import run_exp


def _worker(url: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "expledger", "--store", url, "worker", *args],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _all(url: str):
    with open_store(url, warn=lambda m: None) as store:
        return store.search(limit=None, sort="id")


def test_four_workers_run_each_of_100_experiments_exactly_once(store_url, tmp_path):
    done = tmp_path / "done.txt"
    with open_store(store_url) as store:
        for n in range(100):
            store.add(name=f"job {n}", command=f"echo $EXP_ID >> {done}", workdir=str(tmp_path))
    workers = [_worker(store_url, "--until-empty", "--poll", "0.05", cwd=tmp_path) for _ in range(4)]
    for proc in workers:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    ran = done.read_text().split()
    assert sorted(ran) == sorted(f"EXP-{n:03d}" for n in range(1, 101))  # every ID exactly once
    experiments = _all(store_url)
    assert {e.status for e in experiments} == {Status.SUCCESS}
    assert all(e.runner["attempt"] == 1 for e in experiments)


def test_killed_and_paused_workers_lose_no_experiment_and_write_no_result_twice(store_url, tmp_path):
    env = {**os.environ, "EXP_HEARTBEAT": "0.2", "EXP_LEASE": "2", "EXP_GRACE": "1"}
    with open_store(store_url) as store:
        for n in range(24):
            store.add(name=f"job {n}", command="sleep 0.4", workdir=str(tmp_path))
    args = ("--retries", "1", "--poll", "0.05")
    victims = [_worker(store_url, *args, cwd=tmp_path, env=env) for _ in range(2)]
    survivor = _worker(store_url, *args, "--until-empty", cwd=tmp_path, env=env)
    _until_running(store_url, {proc.pid for proc in victims})  # each victim holds a run, however slow the machine
    victims[0].send_signal(signal.SIGKILL)  # dies mid-run: its run is lost
    victims[1].send_signal(signal.SIGSTOP)  # hangs past its lease: its run is taken from it
    time.sleep(4)
    victims[1].send_signal(signal.SIGCONT)  # wakes up: it must not overwrite anything
    victims[1].send_signal(signal.SIGTERM)
    for proc in (survivor, victims[1], victims[0]):
        proc.wait(timeout=300)
    drain = run_exp("--store", store_url, "worker", "--until-empty", "--poll", "0.05", cwd=tmp_path, env=env,
                    timeout=300)
    assert drain.code == 0, drain.err
    experiments = _all(store_url)
    assert len(experiments) == 24
    for exp in experiments:
        assert exp.status is Status.SUCCESS or (exp.status is Status.FAILED and exp.failed_reason.startswith("lost"))
    assert any(e.runner.get("attempt", 1) > 1 for e in experiments)  # a lost run was re-queued and run again
    for exp in experiments:  # no result written twice: one finished version per experiment
        finished = [v for v in _versions(store_url, exp) if v["status"] in ("SUCCESS", "FAILED", "CANCELLED")]
        # (provenance may land after the result, as a later version of the same finished record)
        assert len({(v["status"], v["completed"]) for v in finished}) == 1, (exp.id, finished)


def _until_running(url: str, pids: set[int], timeout: float = 120) -> None:
    """Wait until every one of these worker PIDs runs an experiment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = {e.runner.get("pid") for e in _all(url) if e.status is Status.RUNNING}
        if pids <= running:
            return
        time.sleep(0.05)
    raise AssertionError(f"workers {pids} never started a run")


def _versions(url: str, exp) -> list[dict]:
    """Every version of one experiment the store ever wrote."""
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as db:
            return [row[0] for row in db.execute("SELECT data FROM experiment_versions WHERE uuid = %s "
                                                 "ORDER BY rev", (exp.uuid,))]
    lines = Path(url).read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["uuid"] == exp.uuid]


def test_gpu_slots_run_side_by_side_with_their_own_gpus(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\nfor i in 0 1 2 3; do echo \"$i, NVIDIA H100, 81559, 550.54\"; done\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log = tmp_path / "slots.txt"
    for n in range(2):
        cmd = f"echo start $(date +%s.%N) $CUDA_VISIBLE_DEVICES >> {log}; sleep 1.5; echo end $(date +%s.%N) >> {log}"
        assert run_exp("add", "--name", f"gpu job {n}", "--command", cmd, cwd=tmp_path).code == 0
    result = run_exp("worker", "--gpus-per-run", "2", "--until-empty", "--poll", "0.05", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    lines = [line.split() for line in log.read_text().splitlines()]
    starts = [(float(line[1]), line[2]) for line in lines if line[0] == "start"]
    ends = [float(line[1]) for line in lines if line[0] == "end"]
    assert sorted(gpus for _, gpus in starts) == ["0,1", "2,3"]
    assert max(t for t, _ in starts) < min(ends)  # both ran at once
    shown = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]
    assert shown["provenance"]["cuda_visible_devices"] in ("0,1", "2,3")


def test_an_experiment_without_a_command_waits_for_exp_run(tmp_path):
    run_exp("add", "--name", "by hand", cwd=tmp_path)
    assert run_exp("worker", "--until-empty", "--poll", "0.05", cwd=tmp_path).code == 0
    assert json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]["status"] == "QUEUED"


def test_a_targeted_experiment_waits_for_its_machine(tmp_path):
    run_exp("add", "--name", "lab only", "--machine", "lab", "--command", "true", cwd=tmp_path)
    run_exp("add", "--name", "anywhere", "--command", "true", cwd=tmp_path, env={**os.environ, "EXP_MACHINE": ""})
    assert run_exp("worker", "--machine", "mac", "--until-empty", "--poll", "0.05", cwd=tmp_path).code == 0
    statuses = {e["name"]: e["status"] for e in json.loads(run_exp("list", "--json", cwd=tmp_path).out)["experiments"]}
    assert statuses == {"lab only": "QUEUED", "anywhere": "SUCCESS"}
    assert run_exp("worker", "--machine", "lab", "--once", cwd=tmp_path).code == 0
    lab = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]
    assert lab["status"] == "SUCCESS" and lab["machine"] == "lab"


def test_a_stopped_worker_gives_its_run_back_with_on_stop_requeue(tmp_path):
    run_exp("add", "--name", "long", "--command", "sleep 30", cwd=tmp_path)
    proc = _worker(str(tmp_path / "memory/experiments/experiments.jsonl"), "--on-stop", "requeue", cwd=tmp_path)
    deadline = time.monotonic() + 20
    while json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    exp = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]
    assert exp["status"] == "QUEUED" and "worker stopped" in exp["runner"]["requeued"]


def test_a_worker_waits_for_work_queued_after_it_started(tmp_path):
    proc = _worker(str(tmp_path / "memory/experiments/experiments.jsonl"), "--max-runs", "1", cwd=tmp_path)
    time.sleep(1.0)  # the worker is up and polling an empty queue (benchmarks/bench_team.py times the pick-up)
    run_exp("add", "--name", "new", "--command", "true", cwd=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]["status"] == "SUCCESS"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return state not in ("Z", "X")


def test_a_command_never_outlives_its_killed_worker_nor_runs_beside_its_retry(tmp_path):
    """A shell command's children are stopped with their worker, so a retry is the only copy running."""
    ledger = str(tmp_path / "experiments.jsonl")
    child = tmp_path / "child.py"
    child.write_text("import os, sys, time\nopen(sys.argv[1], 'a').write(f'{os.getpid()}\\n')\ntime.sleep(60)\n"
                     "open(sys.argv[2], 'a').write('finished\\n')\n")
    with open_store(ledger) as store:  # `sh -c` with two commands: dash forks, so the shell is not the command
        store.add(name="long", command=f"{sys.executable} {child} pids.txt finished.txt; true", workdir=str(tmp_path))
    env = {**os.environ, "EXP_GRACE": "1"}
    victim = _worker(ledger, "--retries", "1", cwd=tmp_path, env=env)
    pids = tmp_path / "pids.txt"
    deadline = time.monotonic() + 120
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pids.read_text().split()[0])
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    deadline = time.monotonic() + 30
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(pid), "the command outlived its killed worker"
    assert not (tmp_path / "finished.txt").exists()


def test_a_lost_run_is_retried_on_this_host_only_once_its_command_is_gone(tmp_path):
    """The first worker is paused past its lease: its command still runs. The reaper kills that
    command's group before the run is retried, so the two never run at once."""
    ledger = str(tmp_path / "experiments.jsonl")
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent("""
        import os, sys, time
        pids = open("pids.txt").read().split() if os.path.exists("pids.txt") else []
        alive = []
        for pid in pids:
            try:
                os.kill(int(pid), 0)
                state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
                alive += [pid] if state not in ("Z", "X") else []
            except (OSError, ValueError):
                pass
        open("pids.txt", "a").write(f"{os.getpid()}\\n")
        if alive:
            open("overlap.txt", "a").write(" ".join(alive))
        time.sleep(3 if pids else 60)
    """))
    with open_store(ledger) as store:
        store.add(name="long", command=f"{sys.executable} {child}; true", workdir=str(tmp_path))
    env = {**os.environ, "EXP_HEARTBEAT": "0.2", "EXP_LEASE": "2", "EXP_GRACE": "1"}
    paused = _worker(ledger, "--retries", "1", cwd=tmp_path, env=env)
    pids = tmp_path / "pids.txt"
    deadline = time.monotonic() + 120
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    paused.send_signal(signal.SIGSTOP)
    try:
        retry = run_exp("--store", ledger, "worker", "--max-runs", "1", "--poll", "0.1", cwd=tmp_path, env=env,
                        timeout=300)
    finally:
        paused.send_signal(signal.SIGKILL)
        paused.wait()
    assert retry.code == 0, retry.err
    assert len(pids.read_text().split()) == 2  # it ran again…
    assert not (tmp_path / "overlap.txt").exists()  # …only after the first command was gone
