"""The friction an assistant met in a research week (issue 13), one test each: compare's
top-N, the queue's columns, export across tasks, multi-line text, `--store DIR`."""

from __future__ import annotations

import json

import pytest

from expledger.output import text_width


def _run(exp, name, params, metrics=None, status="success", **fields):
    args = ["add", "--name", name, "--params", json.dumps(params)]
    for key, value in fields.items():
        args += [f"--{key}", value]
    added = exp(*args, "--json")
    assert added.code == 0, added.err
    exp_id = json.loads(added.out)["experiment"]["id"]
    if status:
        extra = ["--metrics", json.dumps(metrics)] if metrics is not None else ["--reason", "x"]
        assert exp("result", exp_id, "--status", status, *extra).code == 0
    return exp_id


def _fifteen(exp):
    for i in range(15):
        _run(exp, f"lr sweep run {i}", {"lr": 10 ** -(1 + i % 5), "seed": i, "warmup": 100 * i},
             {"wer": 0.30 - 0.01 * ((i * 7) % 15), "acc": 0.5 + 0.01 * i}, task="asr")


def test_compare_top_two_by_a_lower_is_better_metric_with_the_best_as_baseline(exp):
    _fifteen(exp)
    body = json.loads(exp("compare", "--where", "task = asr", "--top", "2", "--by", "metrics.wer", "--json").out)
    wers = [e["metrics"]["wer"] for e in body["experiments"]]
    assert len(wers) == 2 and wers[0] < wers[1]  # wer: lower is better by its name
    assert body["baseline"] == body["experiments"][0]["id"] == body["metrics"]["wer"]["best"][0]
    assert "provenance" not in body["experiments"][0]  # compact records
    by_acc = json.loads(exp("compare", "--top", "3", "--by", "metrics.acc", "--json").out)
    assert [e["metrics"]["acc"] for e in by_acc["experiments"]] == [0.64, 0.63, 0.62]
    flipped = json.loads(exp("compare", "--top", "2", "--by", "metrics.acc", "--lower", "--json").out)
    assert [e["id"] for e in flipped["experiments"]] == ["EXP-001", "EXP-002"]
    assert flipped["metrics"]["acc"]["higher_is_better"] is False
    refused = exp("compare", "--top", "2")
    assert refused.code == 2 and "--by metrics.X" in refused.err


def test_compare_of_many_runs_is_narrow_runs_as_rows(exp):
    _fifteen(exp)
    result = exp("compare", "--where", "task = asr")
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "NAME"] and "wer ↓" in lines[0]
    assert len(lines) == 16 and max(text_width(line) for line in lines) < 140
    few = exp("compare", "1", "2").out
    assert few.splitlines()[0].split() == ["EXP-001", "EXP-002"]  # few runs: side by side


def test_queue_shows_priority_target_command_and_age(exp):
    exp("add", "--name", "low", "--command", "python train.py --lr 1e-3", "--machine", "lab")
    exp("add", "--name", "urgent", "--command", "python train.py --lr 1e-4", "--priority", "5")
    lines = exp("queue").out.splitlines()
    assert lines[0].split() == ["ID", "PRIORITY", "NAME", "TASK", "MODEL", "MACHINE", "COMMAND", "CREATED"]
    assert lines[1].split()[:3] == ["EXP-002", "5", "urgent"] and "python train.py --lr 1e-4" in lines[1]
    assert "lab" in lines[2] and "ago" in lines[2] and "METRICS" not in lines[0]
    record = json.loads(exp("queue", "--json").out)["experiments"][0]
    assert record["priority"] == 5 and record["command"] == "python train.py --lr 1e-4" and "metrics" not in record


def test_export_groups_by_task_skips_records_without_metrics_and_warns_on_repeated_seeds(exp, ledger):
    for seed, wer in ((0, 0.2), (1, 0.22), (1, 0.21), (2, 0.23)):
        _run(exp, "asr", {"lr": 0.001, "seed": seed}, {"wer": wer}, task="asr")
    _run(exp, "asr big lr", {"lr": 0.01, "seed": 0}, {"wer": 0.3}, task="asr")
    _run(exp, "mt", {"lr": 0.001, "seed": 0}, {"wer": 0.1}, task="mt")
    _run(exp, "mt big lr", {"lr": 0.01, "seed": 0}, {"wer": 0.15}, task="mt")
    with ledger.open("a", encoding="utf-8") as handle:  # a seed-tool record without metrics
        handle.write(json.dumps({"id": "EXP-050", "name": "old", "task": "asr", "status": "success",
                                 "params": {}, "metrics": {}}) + "\n")
    result = exp("export", "--format", "md")
    assert "skipped 1 experiment(s) without wer: EXP-050" in result.err
    assert "seed=1 occurs 2 times in one group (EXP-002, EXP-003)" in result.err
    header, _, *rows = result.out.splitlines()
    assert header.split("|")[1].strip() == "task"
    bold = [row for row in rows if "**" in row]
    assert len(bold) == 2 and any("| asr |" in r for r in bold) and any("| mt |" in r for r in bold)
    assert "– |" not in result.out  # no row of dashes for the old record
    table = json.loads(exp("export", "--json").out)["table"]
    assert table["skipped"] == ["EXP-050"] and table["best"] == {}
    assert table["best_by_task"] == {"asr": {"wer": pytest.approx(0.215)}, "mt": {"wer": 0.1}}


def test_multi_line_summary_is_shown_as_lines(exp):
    exp("add", "--name", "a")
    exp("result", "1", "--status", "success", "--summary", "first finding\nsecond finding\x1b[31m")
    out = exp("show", "1").out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "first finding" in line)
    assert lines[at].split() == ["summary", "first", "finding"]
    assert lines[at + 1].strip() == "second finding\\x1b[31m"  # control characters stay inert
    assert "\\n" not in out


def test_store_given_a_workspace_folder_means_its_ledger(exp, tmp_path):
    exp("add", "--name", "in the workspace")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = exp("--store", str(tmp_path), "list", "--fields", "id,name")
    assert listed.code == 0 and "in the workspace" in listed.out
    assert exp("--store", str(tmp_path / "memory" / "experiments"), "show", "1").code == 0
    assert exp("--store", str(elsewhere), "add", "--name", "new").code == 0
    assert (elsewhere / "memory" / "experiments" / "experiments.jsonl").is_file()
