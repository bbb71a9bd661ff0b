"""What people and scripts read: aligned tables (Chinese included) and the JSON schema."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from expledger import output
from expledger.output import text_width


def _add(exp, *args):
    result = exp("add", *args)
    assert result.code == 0, result.err
    return result


def test_list_aligns_columns_with_chinese_names_and_keeps_long_fields_whole_when_piped(exp):
    _add(exp, "--name", "邏輯透鏡實驗", "--task", "層分析")
    _add(exp, "--name", "plain", "--task", "asr")
    exp("result", "1", "--status", "failed", "--reason", "原因" * 60)
    lines = exp("list").out.splitlines()
    header = lines[0]
    task_column = text_width(header[: header.index("TASK")])
    for line in lines[1:]:
        name_end = line.index("層分析") if "層分析" in line else line.index("asr")
        assert text_width(line[:name_end]) == task_column
    assert lines[2].endswith("原因" * 60)  # not a terminal: nothing is cut
    assert "\x1b[" not in "\n".join(lines)  # no colour codes when not on a terminal


def test_text_width_counts_wide_characters_twice():
    assert text_width("abc") == 3
    assert text_width("聲學") == 4
    assert text_width("é") == 1
    assert text_width(output.truncate("聲學聲學聲學", 7)) <= 7


def test_relative_times_read_naturally():
    now = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)

    def ago(**kw):
        return output.relative_time((now - timedelta(**kw)).isoformat(), now=now)

    assert [ago(seconds=5), ago(minutes=3), ago(hours=2), ago(days=4)] == ["5s ago", "3m ago", "2h ago", "4d ago"]
    assert ago(days=60) == "2025-11-11"


def test_list_json_has_the_documented_envelope(exp):
    _add(exp, "--name", "a", "--params", '{"lr": 0.1}', "--tag", "x,y")
    _add(exp, "--name", "b")
    body = json.loads(exp("list", "--json", "--limit", "1").out)
    assert body["ok"] is True and body["version"] == 1
    assert body["total"] == 2 and body["truncated"] is True
    record = body["experiments"][0]
    assert record["id"] == "EXP-002"
    assert list(record) == ["id", "name", "task", "model", "status", "params", "metrics", "summary", "failed_reason",
                            "machine", "tags", "created", "started", "completed"]
    first = json.loads(exp("show", "1", "--json").out)["experiment"]
    assert first["tags"] == ["x", "y"] and first["machine"] is None  # queued without --machine: any machine


def test_add_warns_about_a_config_tried_before_and_json_lists_it(exp):
    _add(exp, "--name", "a", "--task", "t", "--model", "m", "--params", '{"lr": 1e-3, "bs": 8}')
    exp("result", "1", "--status", "failed", "--summary", "diverged at step 300")
    again = _add(exp, "--name", "b", "--task", "t", "--model", "m", "--params", '{"bs": 8.0, "lr": 0.001}')
    assert "tried before" in again.err and "EXP-001" in again.err and "diverged at step 300" in again.err
    body = json.loads(exp("add", "--name", "c", "--task", "t", "--model", "m", "--params",
                          '{"lr": 0.001, "bs": 8}', "--json").out)
    assert [s["id"] for s in body["similar"]] == ["EXP-001", "EXP-002"]
    fresh = _add(exp, "--name", "d", "--task", "t", "--model", "m", "--params", '{"lr": 0.01, "bs": 8}')
    assert fresh.err == ""


def test_compare_puts_differing_params_first_and_marks_the_best(exp):
    _add(exp, "--name", "a", "--params", '{"lr": 0.1, "bs": 8}')
    _add(exp, "--name", "b", "--params", '{"lr": 0.01, "bs": 8}')
    exp("result", "1", "--status", "success", "--metrics", '{"acc": 0.9, "loss": 0.2}')
    exp("result", "2", "--status", "success", "--metrics", '{"acc": 0.8, "loss": 0.1}')
    result = exp("compare", "EXP-001", "exp-2")
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    assert "params.bs" not in result.out and "1 identical param" in result.err
    assert "0.9 ★" in rows["metrics.acc"] and "0.8 (-0.1) ★" not in rows["metrics.acc"]
    assert "0.1 (-0.1) ★" in rows["metrics.loss"] and "↓" in rows["metrics.loss"]  # loss: lower is better
    assert result.out.index("params.lr") < result.out.index("metrics.acc")
    body = json.loads(exp("compare", "1", "2", "--json").out)
    assert body["params"] == {"differ": {"lr": {"EXP-001": 0.1, "EXP-002": 0.01}}, "same": {"bs": 8}}
    assert body["metrics"]["loss"] == {"values": {"EXP-001": 0.2, "EXP-002": 0.1}, "best": ["EXP-002"],
                                       "higher_is_better": False, "delta": {"EXP-002": -0.1}}
    assert body["baseline"] == "EXP-001"
    flipped = json.loads(exp("compare", "1", "2", "--lower", "acc", "--baseline", "2", "--json").out)
    assert flipped["metrics"]["acc"]["best"] == ["EXP-002"] and flipped["baseline"] == "EXP-002"
    assert flipped["metrics"]["acc"]["delta"] == {"EXP-001": pytest.approx(0.1)}
    assert "params.bs" in exp("compare", "1", "2", "--all").out


def test_show_gives_every_field_and_earlier_results(exp):
    _add(exp, "--name", "語音", "--task", "asr", "--command", "python3 train.py", "--params", '{"lr": 0.1}')
    exp("result", "1", "--status", "success", "--metrics", '{"wer": 0.12}')
    exp("result", "1", "--status", "failed", "--reason", "test set leaked", "--force")
    out = exp("show", "exp-1").out
    for text in ("EXP-001", "語音", "FAILED", "python3 train.py", "lr = 0.1", "test set leaked",
                 "earlier result", "SUCCESS", "wer=0.12", "rev 3"):
        assert text in out


def test_queue_and_list_say_so_when_empty(exp):
    assert exp("queue").out.strip() == "the queue is empty"
    assert exp("list").out.strip() == "no experiments yet: exp add --name …"
    assert exp("list", "--task", "x").out.strip() == "no experiments match"
    assert json.loads(exp("queue", "--json").out)["experiments"] == []


def test_doctor_names_the_store_and_where_it_came_from(exp, ledger):
    _add(exp, "--name", "a")
    result = exp("doctor")
    assert result.code == 0
    assert f"store: {ledger}" in result.out and "nearest ledger" in result.out and "no problems" in result.out
    report = json.loads(exp("doctor", "--json").out)["report"]
    assert report["experiments"] == 1 and report["healthy"] is True


def test_compare_by_query_and_nan_never_wins_or_breaks_json(exp):
    for number, acc in enumerate(("0.7", "NaN", "0.9"), 1):
        _add(exp, "--name", f"run {acc}", "--task", "asr")
        assert exp("result", number, "--status", "success", "--metrics", f'{{"acc": {acc}}}').code == 0
    body = json.loads(exp("compare", "--where", "task = asr", "--json").out)
    assert len(body["experiments"]) == 3
    assert body["metrics"]["acc"]["values"]["EXP-002"] == "NaN"  # strict JSON: no bare NaN
    assert body["metrics"]["acc"]["best"] == ["EXP-003"]
    ranked = json.loads(exp("list", "--sort", "-metrics.acc", "--json").out)["experiments"]
    assert [e["id"] for e in ranked] == ["EXP-003", "EXP-001", "EXP-002"]  # numbers first, NaN after
    assert math.isnan(float(ranked[2]["metrics"]["acc"]))


def test_control_characters_in_user_text_are_shown_inert(exp):
    _add(exp, "--name", "evil\x1b[31mred\nsecond line")
    out = exp("list").out
    assert "\x1b[" not in out and "evil\\x1b[31mred\\nsecond" in out
    assert len(out.splitlines()) == 2


def test_compare_without_metrics_does_not_promise_a_best_or_deltas(exp):
    exp("add", "--name", "a")
    exp("add", "--name", "b")
    compared = exp("compare", "1", "2")
    assert compared.code == 0 and "★" not in compared.err and "no metrics recorded" in compared.err


@pytest.mark.parametrize("payload", [
    {"experiments": [{"id": "EXP-001", "metrics": {"acc": 0.5}, "tags": ["a"], "name": "聲學"}], "total": 1},
    {"metrics": {"loss": math.nan, "best": math.inf}},
    {"name": "a\x00b", "nested": [{"k\x00": 1}]},
    {"text": "a literal \\u0000 is text"},
    {"ids": {1: "one", 2.5: "two and a half"}, "tuple": (1, 2)},
])
def test_the_json_envelope_is_written_once_and_as_json_safe_as_before(payload):
    assert output.envelope_text(payload) == json.dumps(output.envelope(payload), ensure_ascii=False)
    assert output.envelope_text(payload, ok=False) == json.dumps(output.envelope(payload, ok=False), ensure_ascii=False)
