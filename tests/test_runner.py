"""`exp run`: real child processes, their outcomes, provenance, signals and lost runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from expledger.reasons import failure_reason
from expledger.store import open_store

from .conftest import LEDGER, run_exp


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return str(path)


def _record(tmp_path: Path, exp_id: str = "EXP-001"):
    with open_store(str(tmp_path / LEDGER), warn=lambda m: None) as store:
        return store.get(exp_id)


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def test_a_succeeding_script_records_metrics_output_and_environment(tmp_path):
    script = _script(tmp_path, "ok.py", """
        import json, os
        print("hello from", os.environ["EXP_ID"], flush=True)
        assert os.path.isdir(os.environ["EXP_DIR"])
        json.dump({"acc": 0.91, "f1": 0.88}, open(os.environ["EXP_METRICS_FILE"], "w"))
    """)
    result = run_exp("run", "--name", "ok", "--task", "t", "--", sys.executable, script, cwd=tmp_path)
    assert result.code == 0, result.err
    assert "hello from EXP-001" in result.out  # shown live
    exp = _record(tmp_path)
    assert exp.status.value == "SUCCESS" and exp.metrics == {"acc": 0.91, "f1": 0.88}
    assert exp.runner["exit_code"] == 0 and exp.runner["duration"] > 0
    assert exp.command.endswith("ok.py") and exp.started and exp.completed
    assert "hello from EXP-001" in (Path(exp.runner["dir"]) / "stdout.log").read_text()


@pytest.mark.parametrize("body, code, reason", [
    ("raise ValueError('learning rate too high')", 1, "ValueError: learning rate too high"),
    ("import sys\nprint('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB', file=sys.stderr)"
     "\nsys.exit(1)", 1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", 137, "killed by signal 9 (SIGKILL)"),
    ("import sys\nsys.exit(3)", 3, "exit code 3"),
])
def test_a_failing_script_gets_a_one_line_reason(tmp_path, body, code, reason):
    script = _script(tmp_path, "bad.py", body)
    result = run_exp("run", "--", sys.executable, script, cwd=tmp_path)
    assert result.code == code
    exp = _record(tmp_path)
    assert exp.status.value == "FAILED" and exp.failed_reason.startswith(reason)
    assert "\n" not in exp.failed_reason


def test_a_missing_command_fails_cleanly(tmp_path):
    result = run_exp("run", "--", "no-such-command-xyz", "--flag", cwd=tmp_path)
    assert result.code == 127 and "Traceback" not in result.err
    exp = _record(tmp_path)
    assert (exp.status.value, exp.failed_reason) == ("FAILED", "command not found: no-such-command-xyz")


def test_run_takes_a_queued_experiment_by_id(tmp_path):
    assert run_exp("add", "--name", "queued", "--params", '{"lr": 0.1}', cwd=tmp_path).code == 0
    assert run_exp("run", "--id", "1", "--", "true", cwd=tmp_path).code == 0
    exp = _record(tmp_path)
    assert exp.status.value == "SUCCESS" and exp.name == "queued" and exp.runner["attempt"] == 1
    again = run_exp("run", "--id", "1", "--", "true", cwd=tmp_path)
    assert again.code == 2 and "only a QUEUED experiment" in again.err


def _slow_run(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """`exp run` of a script that sleeps a minute; the runner process and the child's PID."""
    pid_file = tmp_path / "child.pid"
    script = _script(tmp_path, "slow.py", f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-m", "expledger", "run", "--", sys.executable, script],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: pid_file.exists() and pid_file.read_text())
    return proc, int(pid_file.read_text())


def test_interrupting_exp_run_cancels_and_stops_the_child(tmp_path):
    proc, child = _slow_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not _alive(child)
    exp = _record(tmp_path)
    assert exp.status.value == "CANCELLED" and "SIGINT" in exp.summary


def test_exp_cancel_stops_a_run_on_this_host(tmp_path):
    proc, child = _slow_run(tmp_path)
    result = run_exp("cancel", "1", "--reason", "wrong config", cwd=tmp_path)
    assert result.code == 0, result.err
    proc.communicate(timeout=30)
    assert not _alive(child)
    exp = _record(tmp_path)
    assert exp.status.value == "CANCELLED" and exp.summary == "wrong config" and "exit_code" in exp.runner


def test_provenance_in_a_dirty_git_repo_with_a_fake_gpu(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start")
    (repo / "train.py").write_text("print('v1')\n")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "train")
    (repo / "train.py").write_text("print('v2: uncommitted')\n")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '0, NVIDIA A100-SXM4-80GB, 81920, 550.54'\n"
                    "echo '1, NVIDIA A100-SXM4-80GB, 81920, 550.54'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CUDA_VISIBLE_DEVICES": "1"}
    result = run_exp("run", "--", sys.executable, "train.py", cwd=repo, env=env)
    assert result.code == 0, result.err
    with open_store(str(repo / LEDGER)) as store:
        exp = store.get(1)
    found = exp.provenance
    assert found["git"]["commit"] == commit and found["git"]["branch"] == "main" and found["git"]["dirty"]
    assert "v2: uncommitted" in Path(found["git"]["diff_file"]).read_text()
    assert [g["name"] for g in found["gpus"]] == ["NVIDIA A100-SXM4-80GB"] * 2
    assert found["gpus"][0]["memory_mib"] == 81920 and found["cuda_visible_devices"] == "1"
    assert found["python"] and found["cpus"] and any(p.startswith("click==") for p in found["packages"])
    shown = run_exp("show", "1", cwd=repo, env=env).out
    assert commit[:12] in shown and "NVIDIA A100" in shown and "dirty" in shown


def test_kill_9_of_exp_run_is_reported_lost_by_the_next_list(tmp_path):
    proc, child = _slow_run(tmp_path)
    proc.kill()
    proc.communicate()
    _wait_for(lambda: not _alive(child))  # the child goes with its runner
    listed = json.loads(run_exp("list", "--json", cwd=tmp_path).out)["experiments"][0]
    assert listed["status"] == "FAILED" and listed["failed_reason"].startswith("lost: no heartbeat since")


def test_kill_9_of_a_python_api_process_is_reported_lost(tmp_path):
    script = _script(tmp_path, "api.py", """
        import time, expledger
        run = expledger.start(name="api run")
        run.log({"loss": 1.0}, step=0)
        print("started", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, script], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    assert json.loads(run_exp("list", "--json", cwd=tmp_path).out)["experiments"][0]["status"] == "RUNNING"
    proc.kill()
    proc.wait()
    result = run_exp("list", "--json", cwd=tmp_path)
    listed = json.loads(result.out)["experiments"][0]
    assert listed["status"] == "FAILED" and "lost" in listed["failed_reason"]
    doctor = run_exp("doctor", cwd=tmp_path)
    assert "lost" not in doctor.out  # already reaped by list: nothing left to report


def test_a_run_on_another_host_is_lost_only_after_its_lease(store_url):
    from expledger.models import Status

    with open_store(store_url) as store:
        exp = store.add(name="remote", status=Status.RUNNING,
                        runner={"host": "gpu-box-far-away", "pid": 4242, "pid_start": "1"})
        store.heartbeat(exp)
        assert store.reap_lost(lease=60) == []
        if not store_url.startswith("postgresql"):
            # A JSONL ledger synced by git: that machine's heartbeats never reach this one.
            assert store.reap_lost(lease=0.001) == []
            return
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as db:
            db.execute("UPDATE experiment_heartbeats SET beat = now() - interval '120 seconds'")
            db.execute("UPDATE experiments SET data = jsonb_set(data, '{started}', to_jsonb(%s::text))",
                       ("2020-01-01T00:00:00.000+00:00",))
        assert store.reap_lost(lease=600) == []
        [lost] = store.reap_lost(lease=60)
        assert lost.status is Status.FAILED and "gpu-box-far-away" in lost.failed_reason


def test_runs_started_by_hand_are_never_reaped(tmp_path):
    run_exp("add", "--name", "manual", "--status", "running", cwd=tmp_path)
    assert json.loads(run_exp("list", "--json", cwd=tmp_path).out)["experiments"][0]["status"] == "RUNNING"


@pytest.mark.parametrize("code, tail, expected", [
    (1, ["Traceback (most recent call last):", '  File "x.py"', "KeyError: 'lr'"], "KeyError: 'lr'"),
    (1, ["RuntimeError: CUDA error: out of memory", "CUDA kernel errors might be reported"],
     "RuntimeError: CUDA error: out of memory"),
    (-9, [], "killed by signal 9 (SIGKILL) (often the kernel's out-of-memory killer)"),
    (-15, ["step 10"], "killed by signal 15 (SIGTERM)"),
    (1, ["MemoryError"], "out of memory: MemoryError"),
    (2, ["usage: train.py [-h]", "train.py: error: unrecognized arguments: --lrr"],
     "bad arguments: unrecognized arguments: --lrr"),
    (127, ["sh: 1: trian.py: not found"], "command not found: trian.py"),
    (127, ["bash: line 1: trian: command not found"], "command not found: trian"),
    (126, ["sh: 1: ./run.sh: Permission denied"], "cannot run ./run.sh: permission denied"),
    (2, ["/usr/bin/python3: can't open file '/lab/trian.py': [Errno 2] No such file or directory"],
     "can't open file '/lab/trian.py': [Errno 2] No such file or directory"),
    (2, ["some tool failed"], "exit code 2"),
    (1, ["torch.distributed.elastic.multiprocessing.errors.ChildFailedError: x"],
     "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: x"),
])
def test_failure_reasons(code, tail, expected):
    assert failure_reason(code, tail) == expected
