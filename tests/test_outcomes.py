"""Outcomes a lab can rank and be told about: failures keep their last logged values apart
from final metrics, a metrics file keeps what is numeric, the on-finish hook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from .conftest import run_exp

TRAIN = """
import os, sys, expledger
with expledger.start() as run:
    for step in range(3):
        run.log({"acc": float(sys.argv[1]) + step / 100}, step=step)
    if sys.argv[2] == "crash":
        raise RuntimeError("loss is NaN")
"""


def test_a_failed_run_does_not_outrank_successes_by_its_last_logged_values(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    for acc, end in (("0.80", "ok"), ("0.97", "crash"), ("0.85", "ok")):
        result = run_exp("run", "--name", f"{acc} {end}", "--", sys.executable, "train.py", acc, end, cwd=tmp_path)
        assert result.code == (1 if end == "crash" else 0), result.err
    listed = json.loads(run_exp("list", "--sort", "-metrics.acc", "--json", cwd=tmp_path).out)["experiments"]
    assert [(e["name"], e["status"]) for e in listed] == [("0.85 ok", "SUCCESS"), ("0.80 ok", "SUCCESS"),
                                                         ("0.97 crash", "FAILED")]
    failed = json.loads(run_exp("show", "2", "--json", cwd=tmp_path).out)
    assert failed["experiment"]["metrics"] == {} and failed["experiment"]["failed_reason"] == "RuntimeError: loss is NaN"
    assert failed["steps"]["acc"]["last"] == 0.99  # kept apart, in its step series
    above = run_exp("list", "--where", "metrics.acc > 0.85", "--json", cwd=tmp_path)
    assert [e["name"] for e in json.loads(above.out)["experiments"]] == ["0.85 ok"]


def test_a_metrics_file_keeps_its_numbers_and_warns_on_the_experiment_about_the_rest(tmp_path):
    write = """import json, os; json.dump({"acc": 0.9, "note": "fine", "per_layer": [1, 2]}, open(os.environ["EXP_METRICS_FILE"], "w"))"""
    result = run_exp("run", "--name", "m", "--", sys.executable, "-c", write, cwd=tmp_path)
    assert result.code == 0 and "'note' left out" in result.err
    exp = json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]
    assert exp["metrics"] == {"acc": 0.9, "per_layer": [1, 2]}
    assert "'note' left out" in exp["runner"]["warnings"][0]
    assert "warning" in run_exp("show", "1", cwd=tmp_path).out


def test_the_on_finish_hook_gets_finished_failed_and_lost_runs(tmp_path):
    ledger = tmp_path / "memory/experiments/experiments.jsonl"
    run_exp("add", "--name", "long", "--command", "sleep 60", "--priority", "9", cwd=tmp_path)
    victim = subprocess.Popen([sys.executable, "-m", "expledger", "--store", str(ledger), "worker", "--max-runs", "1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while json.loads(run_exp("show", "1", "--json", cwd=tmp_path).out)["experiment"]["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    run_exp("add", "--name", "good", "--command", "true", cwd=tmp_path)
    run_exp("add", "--name", "bad", "--command", "exit 4", cwd=tmp_path)
    hook = f"cat >> {tmp_path / 'hooked.jsonl'}; echo >> {tmp_path / 'hooked.jsonl'}"
    result = run_exp("worker", "--until-empty", "--on-finish", hook, cwd=tmp_path)
    assert result.code == 0, result.err
    got = [json.loads(line)["experiment"] for line in (tmp_path / "hooked.jsonl").read_text().splitlines()]
    assert sorted((e["name"], e["status"]) for e in got) == [("bad", "FAILED"), ("good", "SUCCESS"), ("long", "FAILED")]
    assert next(e for e in got if e["name"] == "long")["failed_reason"].startswith("lost")

    run_exp("add", "--name", "again", "--command", "true", cwd=tmp_path)
    failing = run_exp("worker", "--once", cwd=tmp_path, env={**os.environ, "EXP_ON_FINISH": "exit 3"})
    assert failing.code == 0 and "on-finish hook for EXP-004 exited with 3" in failing.err
    assert json.loads(run_exp("show", "4", "--json", cwd=tmp_path).out)["experiment"]["status"] == "SUCCESS"
