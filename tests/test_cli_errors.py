"""Bad input: one clear line on stderr, exit 2 (1 for an unknown ID), no traceback, ledger untouched."""

from __future__ import annotations

import json

import pytest

CASES = {
    "invalid params JSON": (["add", "--name", "x", "--params", "{layers: 6}"], 2, "--params is not valid JSON"),
    "params not an object": (["add", "--name", "x", "--params", "[1, 2]"], 2, "--params must be a JSON object"),
    "invalid metrics JSON": (["result", "1", "--status", "success", "--metrics", "{'acc': 1}"], 2,
                             "--metrics is not valid JSON"),
    "metrics not an object": (["result", "1", "--status", "success", "--metrics", "0.9"], 2,
                              "--metrics must be a JSON object"),
    "unknown id": (["show", "EXP-404"], 1, "no experiment EXP-404"),
    "unknown id on result": (["result", "404", "--status", "success"], 1, "no experiment EXP-404"),
    "malformed id": (["show", "EXP-abc"], 2, "not an experiment ID"),
    "misspelled result status": (["result", "1", "--status", "succes"], 2, "unknown status 'succes'"),
    "result status not final": (["result", "1", "--status", "running"], 2, "valid are success, failed, cancelled"),
    "misspelled list status": (["list", "--status", "sucess"], 2, "unknown status 'sucess'"),
    "empty name": (["add", "--name", "  "], 2, "needs a name"),
    "result over a finished one": (["result", "2", "--status", "failed", "--reason", "x"], 2,
                                   "already has a result (SUCCESS); pass --force"),
    "cancel a finished one": (["cancel", "2"], 2, "EXP-002 is already SUCCESS"),
    "start a finished one": (["start", "2"], 2, "only a QUEUED experiment can be started"),
    "failure without a reason": (["result", "1", "--status", "failed"], 2, "needs a reason"),
    "unknown flag": (["add", "--nmae", "x"], 2, "No such option '--nmae'"),
    "missing argument": (["show"], 2, "Missing argument 'ID'"),
    "compare one": (["compare", "1"], 2, "needs two or more different experiments"),
    "compare one twice": (["compare", "1", "exp-1"], 2, "needs two or more different experiments"),
    "metric not a number": (["result", "1", "--status", "success", "--metrics", '{"acc": "high"}'], 2,
                            "metric 'acc' must be a number"),
    "reason on a success": (["result", "1", "--status", "success", "--reason", "x"], 2,
                            "--reason is for failed or cancelled results"),
    "deeply nested params": (["add", "--name", "x", "--params", "[" * 5000 + "]" * 5000], 2, "nested too deeply"),
    "limit too large": (["list", "--limit", "99999999999999999999"], 2, "--limit"),
    "not utf-8": (["add", "--name", "bad\udcffname"], 2, "not valid UTF-8"),
    "bad sort": (["list", "--sort", "colour"], 2, "cannot sort by 'colour'"),
    "negative limit": (["list", "--limit", "-3"], 2, "--limit"),
    "unknown scheme": (["list", "--store", "mongodb://x/y"], 2, "unknown store scheme 'mongodb'"),
    "unwritable store": (["add", "--name", "x", "--store", "/etc/passwd/ledger.jsonl"], 2,
                         "cannot write the ledger"),
    "unreadable store": (["list", "--store", "memory/experiments/experiments.jsonl/x"], 2, "cannot read the ledger"),
}


@pytest.fixture
def seeded(exp, ledger):
    assert exp("add", "--name", "queued one").code == 0
    assert exp("add", "--name", "done one").code == 0
    assert exp("result", "2", "--status", "success").code == 0
    return ledger.read_bytes()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, exp, ledger, seeded):
    args, code, message = CASES[case]
    result = exp(*args)
    assert result.code == code, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("error: "), result.err
    assert message in result.err
    assert "Traceback" not in result.err + result.out
    assert ledger.read_bytes() == seeded


def test_errors_in_json_mode_are_an_envelope_too(exp, seeded):
    result = exp("show", "EXP-404", "--json")
    assert result.code == 1
    body = json.loads(result.out)
    assert body == {"ok": False, "version": 1,
                    "error": {"type": "not_found", "message": body["error"]["message"], "exit_code": 1}}


def test_a_real_process_prints_no_traceback(exp_proc, tmp_path):
    result = exp_proc("result", "EXP-001", "--status", "maybe", cwd=tmp_path)
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert not (tmp_path / "memory").exists()
