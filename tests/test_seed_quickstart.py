"""Every Quick Start line of the seed runs verbatim from a fresh workspace (SPEC §1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = "skills/experiment-manager/scripts/exp_tracker.py"
# `python3` in the lines must be the interpreter that has expledger installed.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
REQUIRED = ("id name task model params command machine status created started completed "
            "metrics summary failed_reason tags").split()

# The seed's Quick Start, line for line (with two more adds so EXP-002/003 exist).
QUICK_START = [
    f"python3 {SCRIPT} list",
    f"""python3 {SCRIPT} add \\
  --name "whisper logit lens" \\
  --task "layer-analysis" \\
  --model "whisper-base" \\
  --params '{{"layers": 6, "method": "logit_lens"}}' \\
  --command "python3 whisper_logit_lens.py" \\
  --machine lab""",
    f"""python3 {SCRIPT} add --name "whisper CKA" --task "layer-analysis" --model "whisper-base" \\
  --params '{{"layers": 6, "method": "cka"}}' --command "python3 whisper_cka.py" --machine lab""",
    f"""python3 {SCRIPT} add --name "whisper-large probe" --task "layer-analysis" --model "whisper-large" \\
  --params '{{"layers": 32}}' --command "python3 probe.py" --machine mac""",
    f"""python3 {SCRIPT} result EXP-001 \\
  --status success \\
  --metrics '{{"accuracy": 0.934, "layers_identified": 2}}' \\
  --summary "CKA shows 2 clusters: acoustic (0-2) and semantic (3-5)" """,
    f"python3 {SCRIPT} compare EXP-001 EXP-002",
    f"python3 {SCRIPT} queue",
    f"""python3 {SCRIPT} result EXP-003 \\
  --status failed \\
  --summary "OOM on whisper-large, need gradient checkpointing" """,
    f"python3 {SCRIPT} list --status success --task layer-analysis",
]


def test_quick_start_runs_verbatim_and_writes_the_seed_ledger(tmp_path):
    shutil.copytree(REPO / "skills", tmp_path / "skills")
    outputs = []
    for line in QUICK_START:
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (line, proc.stderr)
        assert "Traceback" not in proc.stderr
        outputs.append(proc.stdout)

    assert "EXP-001" in outputs[1]
    assert "metrics.accuracy" in outputs[5] and "≠ params.method" in outputs[5]
    assert "EXP-002" in outputs[6] and "EXP-001" not in outputs[6]  # queue: only QUEUED
    assert "EXP-001" in outputs[8] and "EXP-003" not in outputs[8]

    ledger = tmp_path / "memory/experiments/experiments.jsonl"
    lines = ledger.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5  # 3 adds + 2 results, nothing rewritten
    for record in records:
        assert set(REQUIRED) <= set(record)
    last = {r["id"]: r for r in records}  # a naive reader: the last line per id wins
    assert last["EXP-001"]["status"] == "SUCCESS"
    assert last["EXP-001"]["metrics"] == {"accuracy": 0.934, "layers_identified": 2}
    assert last["EXP-001"]["machine"] == "lab"
    assert last["EXP-003"]["status"] == "FAILED"
    assert last["EXP-003"]["failed_reason"] == "OOM on whisper-large, need gradient checkpointing"
    assert last["EXP-002"]["status"] == "QUEUED"
    assert last["EXP-001"]["created"].endswith("+00:00")


def test_chinese_is_stored_as_readable_utf8(tmp_path):
    shutil.copytree(REPO / "skills", tmp_path / "skills")

    def run(*a):
        return subprocess.run([sys.executable, SCRIPT, *a], cwd=tmp_path, capture_output=True, text=True)

    assert run("add", "--name", "邏輯透鏡", "--task", "層分析").returncode == 0
    proc = run("result", "EXP-001", "--status", "success", "--summary", "CKA 顯示兩群：聲學 (0-2) 與語義 (3-5)")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "memory/experiments/experiments.jsonl").read_text(encoding="utf-8")
    assert "聲學" in text and "邏輯透鏡" in text and "\\u" not in text
    shown = run("show", "1", "--json")
    assert json.loads(shown.stdout)["experiment"]["summary"] == "CKA 顯示兩群：聲學 (0-2) 與語義 (3-5)"
