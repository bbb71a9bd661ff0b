"""The record says what happened (issue 8 item 10)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import run_exp


def _show(tmp_path, ref="1") -> dict:
    return json.loads(run_exp("show", ref, "--json", cwd=tmp_path).out)["experiment"]


def test_result_force_keeps_when_the_run_completed(tmp_path, ledger):
    ledger.parent.mkdir(parents=True)
    ledger.write_text(json.dumps({"id": "EXP-001", "name": "seed run", "status": "success",
                                  "started": "2025-06-01T10:00:00", "completed": "2025-06-01T10:36:00",
                                  "metrics": {"acc": 0.9}}) + "\n")
    assert run_exp("result", "1", "--status", "failed", "--reason", "eval bug", "--force", cwd=tmp_path).code == 0
    exp = _show(tmp_path)
    assert exp["status"] == "FAILED" and exp["completed"].startswith("2025-06-01T10:36")
    assert exp["history"][0]["status"] == "SUCCESS" and exp["history"][0]["replaced"].startswith("20")


def test_exp_run_id_records_the_command_that_ran(tmp_path):
    assert run_exp("add", "--name", "queued", "--command", "python old.py", cwd=tmp_path).code == 0
    assert run_exp("run", "--id", "1", "--", sys.executable, "-c", "print(1)", cwd=tmp_path).code == 0
    exp = _show(tmp_path)
    assert exp["command"].startswith(sys.executable) and exp["runner"]["queued_command"] == "python old.py"


def test_under_exp_run_the_api_records_params_and_a_declared_failure(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import expledger
        run = expledger.start(task="asr", model="whisper", params={"lr": 0.001}, tags=["api"])
        run.log({"loss": float("nan")})
        run.result("failed", reason="loss diverged")
    """))
    result = run_exp("run", "--", sys.executable, str(script), cwd=tmp_path)
    exp = _show(tmp_path)
    assert exp["status"] == "FAILED" and exp["failed_reason"] == "loss diverged", result.err
    assert (exp["task"], exp["model"], exp["params"], exp["tags"]) == ("asr", "whisper", {"lr": 0.001}, ["api"])


def test_a_committed_ledger_does_not_make_runs_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "train.py").write_text("print('ok')\n")
    assert run_exp("add", "--name", "first", cwd=tmp_path).code == 0
    git("add", "-A")
    git("commit", "-qm", "code and ledger")
    assert run_exp("run", "--", sys.executable, "train.py", cwd=tmp_path).code == 0
    assert _show(tmp_path, "2")["provenance"]["git"]["dirty"] is False  # its own new lines are not a change
    (tmp_path / "train.py").write_text("print('changed')\n")
    assert run_exp("run", "--", sys.executable, "train.py", cwd=tmp_path).code == 0
    git_state = _show(tmp_path, "3")["provenance"]["git"]
    assert git_state["dirty"] is True
    diff = open(git_state["diff_file"], encoding="utf-8").read()
    assert "train.py" in diff and "experiments.jsonl" not in diff
