"""Answers sized for a context window: compact listings, --fields, whole cells when piped."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest


def test_list_json_of_100_exp_run_experiments_fits_in_60_kb(exp):
    for i in range(100):
        code = exp("run", "--name", f"sweep {i}", "--task", "asr", "--model", "whisper-small",
                   "--params", json.dumps({"lr": 10 ** -(i % 5), "seed": i}), "--",
                   "sh", "-c", f'echo \'{{"acc": 0.{i:02d}, "wer": 0.3}}\' > "$EXP_METRICS_FILE"').code
        assert code == 0
    full = json.loads(exp("show", "EXP-100", "--json").out)["experiment"]
    assert len(full["provenance"]["packages"]) >= 100  # the environment the issue measured in
    listing = exp("list", "--json").out
    assert len(json.loads(listing)["experiments"]) == 100
    assert len(listing.encode()) <= 60_000, len(listing.encode())


def test_fields_gives_exactly_those_in_json_and_in_the_table(exp):
    exp("add", "--name", "a", "--params", '{"lr": 0.1}')
    exp("result", "1", "--status", "success", "--metrics", '{"acc": 0.9, "wer": 0.2}')
    exp("add", "--name", "b")
    body = json.loads(exp("list", "--fields", "id,status,metrics.acc", "--json").out)
    assert body["experiments"] == [{"id": "EXP-002", "status": "QUEUED", "metrics": {"acc": None}},
                                   {"id": "EXP-001", "status": "SUCCESS", "metrics": {"acc": 0.9}}]
    lines = exp("list", "--fields", "id,status,metrics.acc,outcome").out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "metrics.acc", "OUTCOME"]
    assert lines[2].split() == ["EXP-001", "SUCCESS", "0.9"]
    assert exp("list", "--columns", "id,params.lr", "--json").out == exp("list", "--fields", "id,params.lr", "--json").out
    queued = json.loads(exp("queue", "--fields", "id,name", "--json").out)
    assert queued["experiments"] == [{"id": "EXP-002", "name": "b"}]


def test_fields_rejects_an_unknown_field_before_reading(exp):
    result = exp("list", "--fields", "id,colour")
    assert result.code == 2 and "unknown field 'colour'" in result.err and "--fields" in result.err


def _on_a_terminal(*args: str) -> tuple[str, str]:
    """Run `exp ARGS` with stdout on a real pseudo-terminal 80 columns wide."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen([sys.executable, "-m", "expledger", *args], stdout=slave, stderr=subprocess.PIPE,
                            env=env, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    err = proc.communicate(timeout=60)[1]
    os.close(master)
    return b"".join(chunks).decode(), err


@pytest.mark.parametrize("wide", [False, True])
def test_a_terminal_cuts_long_cells_and_says_so_unless_wide(exp, wide):
    exp("add", "--name", "long " + "x" * 100, "--task", "asr")
    exp("result", "1", "--status", "failed", "--reason", "CUDA out of memory " + "y" * 120)
    out, err = _on_a_terminal("list", *(["--wide"] if wide else []))
    if wide:
        assert "y" * 120 in out and "x" * 100 in out and "cut" not in err
    else:
        assert "…" in out and "--wide shows them whole" in err
        assert "OUTCOME" in out and "CUDA out" in out  # every column is there, just narrower


def test_piped_output_never_cuts_commands_or_metrics(exp):
    command = "python train.py --config configs/whisper-small-librispeech-960h.yaml --lr 1e-4 --seed 3"
    exp("add", "--name", "a", "--command", command)
    exp("result", "1", "--status", "success", "--metrics",
        json.dumps({f"metric_{i}": 0.1 * i for i in range(12)}))
    out = exp("list", "--fields", "id,command,metrics").out
    assert command in out and "metric_11=1.1" in out


def test_the_cursor_list_json_gives_out_takes_the_next_page_from_the_cli(exp):
    for i in range(5):
        exp("add", "--name", f"r{i}", "--task", "asr")
    first = json.loads(exp("list", "--task", "asr", "--limit", "2", "--json").out)
    second = json.loads(exp("list", "--task", "asr", "--limit", "2", "--cursor", first["next_cursor"], "--json").out)
    assert [e["id"] for e in second["experiments"]] == ["EXP-003", "EXP-002"]
    other = exp("list", "--limit", "2", "--cursor", first["next_cursor"])  # another search: refused
    assert other.code == 2 and "another search" in other.err


def test_a_page_past_the_end_says_so_and_a_middle_page_names_the_next(exp):
    for i in range(5):
        exp("add", "--name", f"r{i}")
    past = exp("list", "--offset", "100")
    assert past.code == 0 and "nothing at offset 100: 5 match in all" in past.out
    middle = exp("list", "--limit", "2", "--offset", "2")
    assert "showing 3-4 of 5; --offset 4 for the next page" in middle.err
