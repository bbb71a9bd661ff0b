"""`exp export`: one row per config, mean ± std over seeds, in every format."""

from __future__ import annotations

import csv
import io
import json
import random

import numpy as np
import pytest

from expledger.export import cell_text, latex_escape

CONFIGS = [("whisper_base", 1e-3), ("whisper_base", 1e-4), ("whisper_large", 1e-3), ("whisper_large", 1e-4)]


@pytest.fixture
def runs(exp):
    """3 seeds x 4 configs, with known metrics; one failed run that export must leave out."""
    rng = random.Random(3)
    truth = {}
    number = 0
    for model, lr in CONFIGS:
        for seed in range(3):
            acc, wer = round(rng.uniform(0.8, 0.95), 4), round(rng.uniform(0.05, 0.2), 4)
            truth.setdefault((model, lr), []).append((acc, wer))
            params = json.dumps({"model": model, "lr": lr, "seed": seed, "epochs": 10})
            assert exp("add", "--name", f"{model} {lr} s{seed}", "--task", "語音 & asr%", "--params", params).code == 0
            number += 1
            exp("result", number, "--status", "success", "--metrics", json.dumps({"acc": acc, "wer": wer}))
    exp("add", "--name", "broken", "--task", "語音 & asr%", "--params", '{"model": "x", "lr": 1, "seed": 0}')
    exp("result", number + 1, "--status", "failed", "--reason", "crashed")
    return truth


def test_json_export_gives_mean_and_sample_std_per_config(exp, runs):
    table = json.loads(exp("export", "--json").out)["table"]
    assert table["columns"] == ["params.model", "params.lr"]  # what varies, minus the seed
    assert len(table["rows"]) == 4
    for row in table["rows"]:
        values = np.array(runs[(row["labels"]["params.model"], row["labels"]["params.lr"])])
        assert row["n"] == 3
        for column, name in enumerate(["acc", "wer"]):
            assert row["metrics"][name]["mean"] == pytest.approx(values[:, column].mean())
            assert row["metrics"][name]["std"] == pytest.approx(values[:, column].std(ddof=1))
    means = {name: [row["metrics"][name]["mean"] for row in table["rows"]] for name in ("acc", "wer")}
    assert table["best"] == {"acc": max(means["acc"]), "wer": min(means["wer"])}  # wer: lower is better


def test_markdown_pastes_as_a_table_with_the_best_in_bold(exp, runs):
    text = exp("export", "--format", "md").out.strip()
    lines = text.splitlines()
    assert lines[0] == "| model | lr | acc | wer | n |"
    assert lines[1].startswith("| --- | --- | ---: |")
    assert len(lines) == 6 and all(line.count("|") == 6 for line in lines)
    table = json.loads(exp("export", "--json").out)["table"]
    best_row = max(table["rows"], key=lambda r: r["metrics"]["acc"]["mean"])
    assert f"**{cell_text(best_row['metrics']['acc'], None)}**" in text
    assert text.count("**") == 4  # one bold cell per metric column


def test_latex_is_booktabs_with_specials_escaped_and_chinese_kept(exp, runs):
    text = exp("export", "--format", "latex", "--group-by", "task,params.model").out
    assert text.startswith("\\begin{tabular}{llrrr}") and "\\toprule" in text and "\\bottomrule" in text
    assert "語音 \\& asr\\%" in text and "whisper\\_base" in text and "$\\pm$" in text
    depth = 0
    for position, char in enumerate(text):
        if char in "{}" and (position == 0 or text[position - 1] != "\\"):
            depth += 1 if char == "{" else -1
            assert depth >= 0
    assert depth == 0
    assert all(text[i - 1] == "\\" for i, c in enumerate(text) if c in "%#_")
    for line in text.splitlines()[2:-2]:
        if line != "\\midrule":
            assert line.replace("\\&", "").count("&") == 4  # 5 columns: the others are escaped


def test_latex_escape_handles_every_special():
    assert latex_escape("a_b%c&d#e$f{g}h~i^j\\k") == (
        "a\\_b\\%c\\&d\\#e\\$f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k")


def test_csv_has_raw_numbers_for_a_spreadsheet(exp, runs):
    rows = list(csv.DictReader(io.StringIO(exp("export", "--format", "csv").out)))
    assert len(rows) == 4
    row = rows[0]
    values = np.array(runs[(row["params.model"], float(row["params.lr"]))])
    assert float(row["acc_mean"]) == pytest.approx(values[:, 0].mean())
    assert float(row["acc_std"]) == pytest.approx(values[:, 0].std(ddof=1))
    assert row["n"] == "3"


def test_export_to_a_file_and_by_query(exp, runs, tmp_path):
    result = exp("export", "--where", "params.model = whisper_large", "--columns", "metrics.wer",
                 "--format", "md", "-o", tmp_path / "table.md")
    assert result.code == 0 and "wrote 2 rows" in result.err
    text = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert "| lr | wer | n |" in text and "acc" not in text


def test_precision_and_single_runs(exp):
    exp("add", "--name", "one", "--params", '{"lr": 0.1}')
    exp("result", "1", "--status", "success", "--metrics", '{"acc": 0.91234}')
    exp("add", "--name", "two", "--params", '{"lr": 0.2}')
    exp("result", "2", "--status", "success", "--metrics", '{"acc": 0.5}')
    text = exp("export", "--precision", "2").out
    assert "**0.91**" in text and "| 0.50 |" in text


def test_many_groups_with_a_repeated_seed_are_named_five_on_the_terminal_and_all_in_json(exp):
    for lr in range(7):  # seven configs, each run twice with seed 0
        for _ in range(2):
            exp("add", "--name", f"lr{lr}", "--task", "asr", "--params", json.dumps({"lr": lr, "seed": 0}))
    for n in range(1, 15):
        exp("result", str(n), "--status", "success", "--metrics", '{"acc": 0.5}')
    shown = exp("export", "--format", "md")
    assert shown.err.count("seed=0 occurs 2 times") == 5
    assert "… and 2 more groups with a repeated seed (--json lists them all)" in shown.err
    assert len(json.loads(exp("export", "--json").out)["table"]["warnings"]) == 7


def test_export_of_thousands_of_runs_without_the_metric_counts_them_skipped(exp, ledger):
    lines = [json.dumps({"id": f"EXP-{n:03d}", "name": "r", "task": "t", "status": "SUCCESS", "metrics": {"acc": 1.0}
                         if n % 2 else {}, "params": {"lr": n}}) for n in range(1, 4001)]
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_text("\n".join(lines) + "\n")
    table = json.loads(exp("export", "--json").out)["table"]
    assert len(table["skipped"]) == 2000 and table["skipped"][0] == "EXP-002"
