"""PostgreSQL restarted under workers and runs (issue 8 item 5), on a private server.

The shared test server is never restarted: each test here starts its own cluster with
initdb/pg_ctl in a temporary folder on a port of its own, and removes it afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from expledger.models import Status
from expledger.store import open_store

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


def _as_postgres(args: list[str]) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:  # initdb and the server refuse to run as root
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def private_server():
    """(url, restart): a throwaway PostgreSQL cluster that a test may restart at will."""
    if not BIN:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl) to start a private cluster")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start a private PostgreSQL cluster")
    bin_dir = Path(BIN[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="exp-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    made = _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    assert made.returncode == 0, made.stderr
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
           "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"]
    assert _as_postgres([*ctl, "start"]).returncode == 0

    def restart(down: float = 1.0) -> None:
        assert _as_postgres([*ctl, "-m", "fast", "stop"]).returncode == 0
        time.sleep(down)
        assert _as_postgres([*ctl, "start"]).returncode == 0

    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        _as_postgres([*ctl, "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def test_four_workers_finish_100_experiments_exactly_once_through_three_restarts(private_server, tmp_path):
    url, restart = private_server
    done = tmp_path / "done.txt"
    with open_store(url) as store:
        for n in range(100):
            store.add(name=f"job {n}", command=f"echo $EXP_ID >> {done}", workdir=str(tmp_path))
    env = {**os.environ, "EXP_HEARTBEAT": "0.5", "EXP_LEASE": "60", "EXP_RECONNECT": "120"}
    workers = [subprocess.Popen([sys.executable, "-m", "expledger", "--store", url, "worker", "--until-empty",
                                 "--poll", "0.1"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    restarts = []

    def chaos() -> None:
        for after in (15, 45, 75):  # restart when this many have run, however slow the machine
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (not done.exists() or len(done.read_text().split()) < after):
                time.sleep(0.05)
            restart()
            restarts.append(after)

    thread = threading.Thread(target=chaos)
    thread.start()
    errors = [proc.communicate(timeout=300)[1] for proc in workers]
    thread.join()
    assert [proc.returncode for proc in workers] == [0] * 4, errors
    assert len(restarts) == 3
    ran = done.read_text().split()
    with open_store(url) as store:
        experiments = store.search(limit=None)
    assert sorted(ran) == sorted(f"EXP-{n:03d}" for n in range(1, 101)), (  # each command ran exactly once
        [e.to_dict() for e in experiments if ran.count(e.id) != 1], errors)
    assert len(experiments) == 100 and {e.status for e in experiments} == {Status.SUCCESS}  # none left RUNNING
    assert any("reconnecting" in err for err in errors)  # the restarts were met, and survived


def test_a_run_outlives_an_outage_longer_than_its_heartbeats_and_records_its_result(private_server, tmp_path):
    url, restart = private_server
    script = tmp_path / "train.py"
    script.write_text("import time\ntime.sleep(6)\nprint('done')\n")
    env = {**os.environ, "EXP_HEARTBEAT": "0.3", "EXP_LEASE": "30", "EXP_RECONNECT": "120"}
    run = subprocess.Popen([sys.executable, "-m", "expledger", "--store", url, "run", "--", sys.executable,
                            str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open_store(url) as store:
            if store.search(status=(Status.RUNNING,)).total:
                break
        time.sleep(0.1)
    restart(down=4)  # many heartbeats and the end of the command fall in the outage
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err
    with open_store(url) as store:
        (exp,) = store.search(limit=None)
    assert exp.status is Status.SUCCESS and exp.runner["exit_code"] == 0
