"""`exp notes` and `exp next` on crafted ledgers, and CJK text in `exp plot`."""

from __future__ import annotations

import json
import re
import statistics
import warnings

import pytest

from expledger.models import Status, format_id, id_number
from expledger.store import open_store

LEDGER = "memory/experiments/experiments.jsonl"
ACC = {  # task -> lr -> accuracy by seed
    "asr": {0.001: [0.81, 0.83, 0.82], 0.01: [0.90, 0.91, 0.93], 0.1: [0.70, 0.72, 0.71]},
    "語音分類": {0.001: [0.61, 0.65, 0.60], 0.01: [0.55, 0.57, 0.56]},
    "mt": {0.001: [0.30, 0.32, 0.31], 0.01: [0.40, 0.35, 0.45]},
}
FAILURES = [  # task, params, reason
    ("asr", {"lr": 0.01, "batch_size": 64, "seed": 0}, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("asr", {"lr": 0.001, "batch_size": 128, "seed": 0}, "RuntimeError: CUDA out of memory. Tried to allocate 8.00 GiB"),
    ("mt", {"lr": 0.1, "batch_size": 16, "seed": 0}, "ValueError: loss is NaN at step 120"),
    ("mt", {"lr": 0.1, "batch_size": 16, "seed": 1}, "ValueError: loss is NaN at step 80"),
    ("語音分類", {"lr": 0.1, "batch_size": 16, "seed": 0}, "exit code 3"),
]


@pytest.fixture
def research(tmp_path):
    """3 tasks x 2-3 lrs x 3 seeds, failures of several kinds, one running and two queued."""
    with open_store(str(tmp_path / LEDGER)) as store:
        for task, by_lr in ACC.items():
            for lr, accs in by_lr.items():
                for seed, acc in enumerate(accs):
                    exp = store.add(name=f"{task} lr={lr} seed={seed}", task=task, model="whisper-base",
                                    params={"lr": lr, "batch_size": 16, "seed": seed},
                                    command=f"python train.py --lr {lr} --batch-size 16 --seed {seed}")
                    store.result(exp.id, status=Status.SUCCESS, metrics={"acc": acc, "loss": 1 - acc})
        for task, params, reason in FAILURES:
            exp = store.add(name=f"{task} failing", task=task, model="whisper-base", params=params,
                            command=f"python train.py --lr {params['lr']} --batch-size {params['batch_size']}")
            store.result(exp.id, status=Status.FAILED, summary=reason)
        running = store.add(name="asr 長跑", task="asr", model="whisper-base",
                            params={"lr": 0.003, "batch_size": 16, "seed": 0})
        store.start(running.id)
        store.add(name="mt later", task="mt", model="whisper-base", params={"lr": 0.003, "batch_size": 16, "seed": 0})
        store.add(name="mt first", task="mt", model="whisper-base", params={"lr": 0.0003, "batch_size": 16, "seed": 0},
                  priority=5)
    return tmp_path


def _records(exp, *args) -> dict:
    result = exp("--json", "list", "--limit", "0", *args)
    return {e["id"]: e for e in json.loads(result.out)["experiments"]}


def _expand(ids: str) -> list[str]:
    out = []
    for part in ids.split(","):
        part = part.strip()
        if "–" in part:
            first, last = (id_number(x) for x in part.split("–"))
            out += [format_id(n) for n in range(first, last + 1)]
        elif part:
            out.append(part)
    return out


def test_notes_means_are_exports(research, exp):
    for task in ACC:
        notes = json.loads(exp("--json", "notes", "--task", task).out)["notes"]
        exported = json.loads(exp("--json", "export", "--where", f'task = "{task}"').out)["table"]
        ours = {json.dumps(row["labels"], sort_keys=True): row for row in notes["tasks"][0]["best"]}
        assert len(ours) == len(exported["rows"]) >= 2
        for row in exported["rows"]:
            mine = ours[json.dumps(row["labels"], sort_keys=True)]
            assert sorted(mine["ids"]) == sorted(row["ids"])
            for name in ("acc", "loss"):
                assert mine["metrics"][name]["mean"] == row["metrics"][name]["mean"]
                assert mine["metrics"][name]["std"] == row["metrics"][name]["std"]


def test_every_number_is_traced_to_experiments_that_support_it(research, exp):
    text = exp("notes").out
    records = _records(exp)
    cited = re.findall(r"(-?\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?) \(n=(\d+); ([^)]+)\)", text)
    assert len(cited) >= 8
    for mean, std, n, ids in cited:
        runs = [records[i] for i in _expand(ids)]
        assert len(runs) == int(n)
        accs = [r["metrics"]["acc"] for r in runs]
        assert float(mean) == pytest.approx(statistics.fmean(accs), abs=10 ** -(len(mean.split(".")[-1])))
        assert float(std) == pytest.approx(statistics.stdev(accs), abs=10 ** -(len(std.split(".")[-1])))
    for row in re.findall(r"^\| \d+ \| .*\| ([^|]+) \|$", text, flags=re.M):  # best-configurations tables
        assert all(i in records for i in _expand(row))


def test_failures_grouped_by_reason_with_their_ids(research, exp):
    notes = json.loads(exp("--json", "notes").out)["notes"]
    failures = {t["task"]: {g["reason"]: [r["id"] for r in g["runs"]] for g in t["failures"]} for t in notes["tasks"]}
    records = _records(exp, "--status", "failed")
    oom = sorted(i for i, r in records.items() if "memory" in r["failed_reason"])
    assert failures["asr"] == {"out of memory": oom}  # two sizes, one lesson
    assert list(failures["mt"]) == ["ValueError"] and len(failures["mt"]["ValueError"]) == 2
    assert list(failures["語音分類"]) == ["exit code 3"]
    text = exp("notes").out
    assert "Failures: do not repeat these" in text
    for exp_id in records:
        assert exp_id in text


def test_running_and_queued_are_listed_in_worker_order(research, exp):
    text = exp("notes", "--task", "mt").out
    active = text.split("### Running and queued")[1]
    assert active.index("mt first") < active.index("mt later")
    assert "長跑" in exp("notes", "--task", "asr").out.split("### Running and queued")[1]


def test_notes_are_commonmark_with_user_text_inert(research, exp):
    from markdown_it import MarkdownIt

    with open_store(LEDGER) as store:
        hostile = store.add(name="<img src=x onerror=alert(1)> *bold* | pipe", task="asr", model="whisper-base",
                            params={"lr": 0.01, "batch_size": 16, "seed": 9})
        store.result(hostile.id, status=Status.FAILED, summary="<script>alert(1)</script>\nsecond line")
    text = exp("notes").out
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    kinds = {token.type for token in tokens}
    assert "table_open" in kinds and "heading_open" in kinds
    assert not kinds & {"html_block", "html_inline"}
    inline = [child for token in tokens if token.children for child in token.children]
    assert not any(child.type == "html_inline" for child in inline)
    assert "## Task: 語音分類" in text
    assert "<script>" not in MarkdownIt("commonmark").enable("table").render(text)


def test_notes_since_and_output_file(research, exp, tmp_path):
    assert json.loads(exp("--json", "notes", "--since", "2999-01-01").out)["notes"]["tasks"] == []
    result = exp("notes", "--task", "asr", "-o", "notes.md")
    assert result.code == 0 and "notes.md" in result.err
    assert (tmp_path / "notes.md").read_text(encoding="utf-8").startswith("# Research notes")
    bad = exp("notes", "--since", "yesterday-ish")
    assert bad.code == 2 and "--since" in bad.err


def _next(exp, *args) -> dict:
    result = exp("--json", "next", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_next_puts_the_queue_first_then_missing_seeds(tmp_path, exp):
    with open_store(str(tmp_path / LEDGER)) as store:
        for lr, seeds in ((0.01, (0, 1, 2)), (0.001, (0, 1))):
            for seed in seeds:
                exp_ = store.add(name=f"lr {lr}", task="asr", model="m", params={"lr": lr, "seed": seed},
                                 command=f"python train.py --lr {lr} --seed {seed}")
                store.result(exp_.id, status=Status.SUCCESS, metrics={"acc": 0.9 if lr == 0.01 else 0.8})
        queued = store.add(name="waiting", task="asr", model="m", params={"lr": 0.5, "seed": 0})
    plan = _next(exp, "--task", "asr")["next"]
    first, second = plan["suggestions"][:2]
    assert first["kind"] == "queued" and first["id"] == queued.id
    assert second["kind"] == "seeds" and second["params"] == {"lr": 0.001, "seed": 2}
    assert second["command"] == "python train.py --lr 0.001 --seed 2"
    assert "EXP-004, EXP-005" in second["reason"]


def test_next_suggests_neighbours_and_respects_out_of_memory(tmp_path, exp):
    with open_store(str(tmp_path / LEDGER)) as store:
        def ran(params, status=Status.SUCCESS, acc=None, reason=None):
            exp_ = store.add(name="run", task="asr", model="m", params=params,
                             command="python train.py " + " ".join(f"--{k} {v}" for k, v in params.items()))
            store.result(exp_.id, status=status, metrics={"acc": acc} if acc else None, summary=reason)
            return exp_

        ran({"lr": 0.01, "batch_size": 16, "seed": 0}, acc=0.9)
        ran({"lr": 0.001, "batch_size": 16, "seed": 0}, acc=0.8)
        ran({"lr": 0.1, "batch_size": 8, "seed": 0}, acc=0.7)
        oom = ran({"lr": 0.01, "batch_size": 32, "seed": 0}, Status.FAILED, reason="CUDA out of memory")
        ran({"lr": 0.001, "batch_size": 64, "seed": 0}, acc=0.6)
    plan = _next(exp, "--task", "asr")["next"]
    suggested = [s["params"] for s in plan["suggestions"]]
    assert {"lr": 0.1, "batch_size": 16, "seed": 0} in suggested  # lr moved up from the best, a used value
    assert {"lr": 0.01, "batch_size": 8, "seed": 0} in suggested  # batch_size moved down
    neighbour = next(s for s in plan["suggestions"] if s["params"]["lr"] == 0.1)
    assert neighbour["kind"] == "neighbour" and "lr 0.01 → 0.1" in neighbour["reason"]
    assert neighbour["command"] == "python train.py --lr 0.1 --batch_size 16 --seed 0"
    assert all(s["params"]["batch_size"] < 32 or s["params"]["lr"] != 0.01 for s in plan["suggestions"])
    assert any(r["because"] == oom.id for r in plan["ruled_out"])
    assert all(0.0001 not in s["params"].values() for s in plan["suggestions"])  # nothing invented


def test_next_queue_adds_once(tmp_path, exp):
    with open_store(str(tmp_path / LEDGER)) as store:
        for lr, seeds in ((0.01, (0, 1)), (0.1, (0,))):
            for seed in seeds:
                exp_ = store.add(name="r", task="t", model="m", params={"lr": lr, "seed": seed},
                                 command=f"train --lr {lr} --seed {seed}")
                store.result(exp_.id, status=Status.SUCCESS, metrics={"acc": 0.5 + lr})
    first = _next(exp, "--queue")
    assert len(first["added"]) == 1
    added = json.loads(exp("--json", "show", first["added"][0]).out)["experiment"]
    assert added["status"] == "QUEUED" and added["params"] == {"lr": 0.1, "seed": 1}
    assert added["command"] == "train --lr 0.1 --seed 1" and "next" in added["tags"]
    second = _next(exp, "--queue")
    assert second["added"] == []
    assert [s["kind"] for s in second["next"]["suggestions"]] == ["queued"]


def test_next_on_an_empty_ledger(exp):
    result = exp("next")
    assert result.code == 0 and "nothing to suggest" in result.out


def test_plot_draws_chinese_with_a_cjk_font(tmp_path):
    pytest.importorskip("matplotlib")
    from expledger.models import new_experiment
    from expledger.plot import cjk_font, draw

    if cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: apt install fonts-noto-cjk; .ci/run installs it)")
    exp_ = new_experiment(name="中文實驗：損失下降")
    exp_.id = "EXP-001"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw([(exp_, {"損失": ([0, 1, 2], [1.0, 0.5, 0.2])})], metrics=[], path=str(tmp_path / "zh.png"))
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert (tmp_path / "zh.png").stat().st_size > 1000


def test_plot_without_a_cjk_font_warns_once(tmp_path, monkeypatch, caplog):
    pytest.importorskip("matplotlib")
    from expledger import plot
    from expledger.models import new_experiment

    monkeypatch.setattr(plot, "cjk_font", lambda: None)
    exp_ = new_experiment(name="中文")
    exp_.id = "EXP-001"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot.draw([(exp_, {"loss": ([0, 1], [1.0, 0.5])})], metrics=[], path=str(tmp_path / "zh.png"))
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert sum("fonts-noto-cjk" in r.getMessage() for r in caplog.records) == 1
