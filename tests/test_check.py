"""`exp check` and the warning on `add`: was this config tried already?"""

from __future__ import annotations

import json


def _add(exp, name, params, **extra):
    args = ["add", "--name", name, "--task", "asr", "--model", "whisper-base", "--params", params]
    for key, value in extra.items():
        args += [f"--{key}", value]
    result = exp(*args)
    assert result.code == 0, result.err
    return result


def test_check_finds_an_earlier_failure_written_differently_and_shows_its_reason(exp):
    _add(exp, "first", '{"lr": 0.001, "opt": {"name": "adam", "betas": [0.9, 0.999]}, "layers": 6}')
    exp("result", "1", "--status", "failed", "--summary", "CUDA out of memory at batch 64")
    _add(exp, "near", '{"lr": 0.01, "opt": {"name": "adam", "betas": [0.9, 0.999]}, "layers": 6}')
    exp("result", "2", "--status", "success", "--metrics", '{"wer": 0.12}')
    _add(exp, "far", '{"lr": 0.1, "layers": 12}')
    query = '{"layers": 6.0, "opt": {"betas": [0.9, 0.999], "name": "adam"}, "lr": 1e-3}'
    result = exp("check", "--task", "asr", "--model", "whisper-base", "--params", query)
    assert result.code == 0
    assert "tried before" in result.out and "EXP-001" in result.out and "CUDA out of memory" in result.out
    nearest = result.out.split("nearest")[1]
    assert nearest.index("EXP-002") < nearest.index("EXP-003")  # one param differs, then two
    assert "lr 0.01 (yours 0.001)" in nearest
    body = json.loads(exp("check", "--task", "asr", "--model", "whisper-base", "--params", query, "--json").out)
    assert [e["id"] for e in body["exact"]] == ["EXP-001"] and body["tried"] is False
    assert body["neighbours"][0]["differs"] == {"lr": {"yours": 0.001, "theirs": 0.01}}
    assert body["neighbours"][1]["differs"]["opt"] == {"yours": {"betas": [0.9, 0.999], "name": "adam"}}


def test_add_of_a_failed_config_warns_with_the_reason(exp):
    _add(exp, "first", '{"lr": 1e-3}')
    exp("result", "1", "--status", "failed", "--summary", "diverged: loss went NaN at step 200")
    again = _add(exp, "again", '{"lr": 0.001}')
    assert "tried before" in again.err and "EXP-001" in again.err and "diverged" in again.err


def test_fail_if_tried_exits_1_only_for_a_success_or_running_match(exp):
    args = ["check", "--task", "asr", "--model", "whisper-base", "--params", '{"lr": 0.001}', "--fail-if-tried"]
    assert exp(*args).code == 0  # never tried
    _add(exp, "first", '{"lr": 1e-3}')
    assert exp(*args).code == 0  # only queued
    exp("result", "1", "--status", "failed", "--reason", "bug")
    assert exp(*args).code == 0  # a failure is worth retrying once fixed
    _add(exp, "second", '{"lr": 0.001}', status="running")
    assert exp(*args).code == 1
    exp("result", "2", "--status", "success")
    result = exp(*args)
    assert result.code == 1 and "EXP-002" in result.out


def test_a_bare_add_does_not_warn(exp):
    for _ in range(3):
        assert exp("add", "--name", "scratch").err == ""
