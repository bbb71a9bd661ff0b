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
    assert result.out.startswith("tried, 1 FAILED: 1 run of task asr, model whisper-base, layers=6")
    assert "EXP-001" in result.out and "CUDA out of memory" in result.out
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


def _sweep(exp):
    """Three successful seeds of lr=1e-4 on whisper-small, and one run of another lr."""
    for seed in range(3):
        args = ["--name", f"seed {seed}", "--task", "asr", "--model", "whisper-small",
                "--params", json.dumps({"lr": 0.0001, "seed": seed, "bs": 16})]
        assert exp("add", *args).code == 0
        exp("result", str(seed + 1), "--status", "success", "--metrics", json.dumps({"wer": 0.2 + seed / 100}))
    exp("add", "--name", "other lr", "--task", "asr", "--model", "whisper-small", "--params", '{"lr": 0.001, "seed": 0}')


def test_check_of_a_partial_config_answers_tried_with_the_outcomes(exp):
    _sweep(exp)
    result = exp("check", "--model", "whisper-small", "--params", '{"lr": 1e-4}')
    first, *rest = result.out.splitlines()
    assert first.startswith("tried, 3 SUCCESS: 3 runs of model whisper-small, lr=0.0001")
    assert "[seed=0  bs=16]" in rest[0]  # what the question left open, per run
    body = json.loads(exp("check", "--model", "whisper-small", "--params", '{"lr": 1e-4}', "--json").out)
    assert body["counts"] == {"SUCCESS": 3} and body["tried"] is True
    assert [e["id"] for e in body["exact"]] == ["EXP-001", "EXP-002", "EXP-003"]
    assert body["neighbours"][0]["differs"] == {"lr": {"yours": 0.0001, "theirs": 0.001}}


def test_the_replicate_param_never_makes_a_config_new(exp):
    _sweep(exp)
    new_seed = exp("check", "--task", "asr", "--params", '{"lr": 0.0001, "seed": 7}')
    assert new_seed.out.startswith("tried, 3 SUCCESS") and "any seed" in new_seed.out.splitlines()[0]
    as_data = exp("check", "--task", "asr", "--params", '{"lr": 0.0001, "seed": 7}', "--replicate", "")
    assert as_data.out.startswith("not tried: no run of task asr, lr=0.0001, seed=7")
    assert exp("check", "--params", '{"lr": 0.01}').out.startswith("not tried")


def test_add_unless_tried_refuses_a_config_that_succeeded_or_runs(exp, ledger):
    _sweep(exp)
    before = ledger.read_bytes()
    refused = exp("add", "--name", "again", "--task", "asr", "--model", "whisper-small",
                  "--params", '{"seed": 1, "lr": 1e-4}', "--unless-tried")
    assert refused.code == 1 and refused.out == ""
    assert refused.err.startswith("error: not added: this config already ran (EXP-002 SUCCESS)")
    assert ledger.read_bytes() == before
    body = json.loads(exp("add", "--name", "x", "--task", "asr", "--model", "whisper-small",
                          "--params", '{"seed": 1, "lr": 1e-4}', "--unless-tried", "--json").out)
    assert body["error"]["type"] == "already_tried" and body["error"]["exit_code"] == 1
    another_seed = exp("add", "--name", "seed 3", "--task", "asr", "--model", "whisper-small",
                       "--params", '{"seed": 3, "lr": 1e-4}', "--unless-tried")
    assert another_seed.code == 0  # a new replicate is worth adding
    queued_only = exp("add", "--name", "again", "--task", "asr", "--model", "whisper-small",
                      "--params", '{"lr": 0.001, "seed": 0}', "--unless-tried")
    assert queued_only.code == 0  # the earlier one only waits in the queue
