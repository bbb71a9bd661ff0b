"""The Python API: `expledger.start()`, step logging, results, and never crashing training."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import expledger
from expledger.errors import BadInput
from expledger.models import Status
from expledger.store import open_store

from .conftest import LEDGER, run_exp


def _store(tmp_path):
    return open_store(str(tmp_path / LEDGER))


def test_a_run_logs_steps_and_its_final_metrics_default_to_the_last_values(tmp_path):
    with expledger.start(name="lens", task="asr", params={"lr": 1e-3}, tags=["api"]) as run:
        for step in range(1000):
            run.log({"loss": 1 / (step + 1), "acc": step / 1000}, step=step)
        run.log({"loss": math.nan})  # step 1000, auto-numbered
    with _store(tmp_path) as store:
        exp = store.get(run.id)
        steps = store.read_steps(exp)
    assert exp.status is Status.SUCCESS and exp.params == {"lr": 0.001} and exp.tags == ["api"]
    assert steps["loss"][0][:3] == [0, 1, 2] and steps["loss"][0][-1] == 1000 and len(steps["acc"][1]) == 1000
    assert math.isnan(exp.metrics["loss"]) and exp.metrics["acc"] == 0.999
    assert exp.runner["pid"] and exp.provenance.get("python")


def test_explicit_metrics_win_over_the_last_logged_values(tmp_path):
    with expledger.start(name="x") as run:
        run.log({"acc": 0.5})
        run.result(metrics={"acc": 0.93, "test_acc": 0.9}, summary="held-out set")
    with _store(tmp_path) as store:
        exp = store.get(run.id)
    assert exp.metrics == {"acc": 0.93, "test_acc": 0.9} and exp.summary == "held-out set"


def test_an_exception_marks_the_run_failed_and_is_re_raised(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with expledger.start(name="x") as run:
            run.log({"loss": 1.0})
            raise ZeroDivisionError("division by zero")
    with _store(tmp_path) as store:
        exp = store.get(run.id)
    assert exp.status is Status.FAILED and exp.failed_reason == "ZeroDivisionError: division by zero"


def test_ctrl_c_marks_the_run_cancelled(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with expledger.start(name="x") as run:
            raise KeyboardInterrupt
    with _store(tmp_path) as store:
        assert store.get(run.id).status is Status.CANCELLED


def test_misuse_raises_at_once(tmp_path):
    run = expledger.start(name="x")
    with pytest.raises(BadInput, match="must be a number"):
        run.log({"acc": "high"})
    run.result()
    with pytest.raises(BadInput, match="is finished"):
        run.log({"acc": 1.0})


def test_storage_trouble_is_one_warning_and_training_goes_on(tmp_path, caplog):
    run = expledger.start(name="x")
    with _store(tmp_path) as store:
        blocked = store.run_dir(run.experiment)
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the run folder should be")
    for step in range(3):
        run.log({"loss": 1.0}, step=step)
        run.flush()
    run.result()
    warnings = [r.getMessage() for r in caplog.records if r.name == "expledger"]  # through logging
    assert sum("could not save steps" in w for w in warnings) == 1 and "training goes on" in warnings[0]


def test_under_exp_run_the_api_attaches_to_that_experiment(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import expledger
        run = expledger.start(name="ignored: exp run registered it")
        for step in range(5):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.result(metrics={"val_acc": 0.8}, summary="attached")
    """))
    result = run_exp("run", "--name", "via exp run", "--", sys.executable, str(script), cwd=tmp_path)
    assert result.code == 0, result.err
    listed = json.loads(run_exp("list", "--json", cwd=tmp_path).out)
    assert listed["total"] == 1
    exp = listed["experiments"][0]
    assert exp["name"] == "via exp run" and exp["status"] == "SUCCESS" and exp["summary"] == "attached"
    assert exp["metrics"] == {"val_acc": 0.8, "loss": 0.2}
    shown = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)
    assert shown["steps"]["loss"]["points"] == 5 and shown["steps"]["loss"]["last"] == 0.2


@pytest.mark.parametrize("ending, status, reason, metrics", [
    ("pass", "SUCCESS", None, {"x": 1}),
    # A failure's last logged values stay in its steps, out of its final metrics (README: rankings).
    ("raise RuntimeError('diverged')", "FAILED", "RuntimeError: diverged", {}),
])
def test_a_script_without_result_is_finished_at_exit(tmp_path, ending, status, reason, metrics):
    script = tmp_path / "plain.py"
    script.write_text(f"import expledger\nrun = expledger.start(name='plain')\nrun.log({{'x': 1}})\n{ending}\n")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, timeout=60)
    shown = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)
    exp = shown["experiment"]
    assert exp["status"] == status and exp["failed_reason"] == reason and exp["metrics"] == metrics
    assert shown["steps"]["x"]["last"] == 1


TRAIN = """
import numpy as np
from sklearn.datasets import load_digits
import expledger

X, y = load_digits(return_X_y=True)
X, y = X / 16.0, (y == 3).astype(float)
split = int(len(X) * 0.75)
w, b = np.zeros(X.shape[1]), 0.0
with expledger.start(name="logreg digits", task="digits", model="logreg", params={"lr": 0.5}) as run:
    for step in range(150):
        p = 1 / (1 + np.exp(-(X[:split] @ w + b)))
        loss = -np.mean(y[:split] * np.log(p + 1e-9) + (1 - y[:split]) * np.log(1 - p + 1e-9))
        w -= 0.5 * X[:split].T @ (p - y[:split]) / split
        b -= 0.5 * np.mean(p - y[:split])
        acc = np.mean(((X[split:] @ w + b) > 0) == y[split:])
        run.log({"loss": loss, "acc": acc}, step=step)
"""


def test_a_real_training_loop_is_shown_and_plotted(tmp_path):
    import matplotlib.image

    (tmp_path / "train.py").write_text(TRAIN)
    assert subprocess.run([sys.executable, "train.py"], cwd=tmp_path, capture_output=True).returncode == 0
    assert run_exp("run", "--", sys.executable, "train.py", cwd=tmp_path).code == 0
    first = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)
    assert first["experiment"]["metrics"]["acc"] > 0.9 and first["steps"]["loss"]["points"] == 150
    assert first["steps"]["loss"]["last"] < first["steps"]["loss"]["max"]
    shown = run_exp("show", "2", cwd=tmp_path).out
    assert "steps" in shown and "▁" in shown and "150 points" in shown
    png = tmp_path / "curves.png"
    result = run_exp("plot", "1", "2", "--metric", "loss", "--metric", "acc", "-o", png, cwd=tmp_path)
    assert result.code == 0, result.err
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 400 and image.std() > 0.05  # a real, non-blank picture


def test_plot_explains_what_is_missing(tmp_path):
    run_exp("add", "--name", "nothing logged", cwd=tmp_path)
    result = run_exp("plot", "1", "-o", tmp_path / "x.png", cwd=tmp_path)
    assert result.code == 2 and "nothing to plot" in result.err


def test_finished_runs_leave_no_heartbeat_file_and_doctor_sweeps_stale_ones(tmp_path, monkeypatch):
    beats = tmp_path / "memory/experiments/.exp-cache/heartbeats"
    for n in range(1000):  # runs shorter than a second never heartbeat at all
        with expledger.start(name=f"run {n}", params={"n": n}) as run:
            run.log({"loss": 1.0})
    assert not beats.exists()
    monkeypatch.setattr(expledger.run, "FLUSH_SECONDS", 0.02)
    for n in range(3):  # runs that last do, and remove their file when they end
        with expledger.start(name=f"long {n}") as run:
            deadline = time.monotonic() + 10
            while not (beats / run.experiment.uuid).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (beats / run.experiment.uuid).exists()
    assert list(beats.iterdir()) == []
    with _store(tmp_path) as store:  # a runner killed between its result and the clean-up
        store.heartbeat(store.get(run.id))
        assert [p["kind"] for p in store.doctor()["problems"]] == ["stale_heartbeats"]
        assert store.doctor(fix=True)["problems"][0]["fixed"]
    assert list(beats.iterdir()) == []


def test_a_process_killed_right_after_start_leaves_its_run_found_and_reported_lost(tmp_path):
    # start() returns before its RUNNING line is fsynced (the result's fsync covers it): the
    # kernel still holds the line when the process is killed, and doctor finds the run lost.
    script = tmp_path / "killed.py"
    script.write_text("import os, signal, expledger\nrun = expledger.start(name='killed')\n"
                      "print(run.id, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "EXP-001"
    lines = (tmp_path / LEDGER).read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["RUNNING"]
    doctor = run_exp("doctor", cwd=tmp_path)
    assert "EXP-001 was RUNNING but lost" in doctor.out
    with _store(tmp_path) as store:
        assert store.get(1).status is Status.FAILED and store.get(1).failed_reason.startswith("lost")
    assert not (tmp_path / "memory/experiments/.exp-cache/heartbeats").exists()


def test_runs_of_one_process_share_one_store_and_one_thread(tmp_path):
    stores, connections, threads = [], [], set()
    for n in range(20):
        with expledger.start(name=f"run {n}") as run:
            stores.append(run.store)
            connections.append(run.store.index._db)
            threads.update(t.name for t in threading.enumerate() if t.name.startswith("expledger"))
    assert all(store is stores[0] for store in stores)
    assert all(db is connections[0] for db in connections)  # the index connection stays open from run to run
    assert threads == {"expledger-runs"}  # the process's one run thread, none per run
    with _store(tmp_path) as store:
        assert store.search(limit=0).total == 20 and store.get(20).status is Status.SUCCESS


def test_git_facts_stay_true_from_run_to_run_of_one_process(tmp_path, monkeypatch):
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,  # noqa: E731
                                    check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q", "-b", "main")
    (tmp_path / "train.py").write_text("v1\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "one")
    monkeypatch.chdir(tmp_path)

    def state():
        with expledger.start(name="x") as run:
            pass
        return run.experiment.provenance["git"]

    first = state()
    assert (first["commit"], first["branch"], first["dirty"]) == (git("rev-parse", "HEAD"), "main", False)
    (tmp_path / "train.py").write_text("v2\n")  # the same process, the code changed
    assert state()["dirty"] is True
    git("commit", "-q", "-am", "two")
    second = state()
    assert second["commit"] == git("rev-parse", "HEAD") != first["commit"] and second["dirty"] is False
    git("checkout", "-q", "--detach")
    assert state()["branch"] == "HEAD"  # as git rev-parse --abbrev-ref names a detached HEAD


def test_runs_started_from_several_threads_through_the_shared_store_are_all_kept(tmp_path):
    def work(k):
        for n in range(25):
            with expledger.start(name=f"thread {k} run {n}") as run:
                run.log({"x": float(n)})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with _store(tmp_path) as store:
        page = store.search(limit=None)
        assert page.total == len({exp.id for exp in page}) == 100
        assert {exp.status for exp in page} == {Status.SUCCESS} and store.doctor()["problems"] == []


def test_a_change_made_by_another_process_mid_run_is_seen_by_the_runs_next_write(tmp_path, caplog):
    # The run's store remembers its own last line and skips the index while the file is as it
    # left it; a result recorded from a terminal changes the file, so the run's write meets it.
    run = expledger.start(name="finished elsewhere")
    assert run_exp("result", run.id, "--status", "failed", "--summary", "by hand", cwd=tmp_path).code == 0
    run.result(metrics={"acc": 0.5})
    revs = [json.loads(line)["rev"] for line in (tmp_path / LEDGER).read_text().splitlines()]
    assert revs == [1, 2]  # never a second rev 2 written over the result recorded by hand
    with _store(tmp_path) as store:
        exp = store.get(run.id)
    assert (exp.status, exp.summary) == (Status.FAILED, "by hand")
    assert any("could not save result" in r.getMessage() for r in caplog.records if r.name == "expledger")
