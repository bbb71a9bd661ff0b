"""Provenance stored once per environment: old and seed lines read as before; every record is
shown whole, and copy (JSONL -> PostgreSQL -> JSONL) and merge keep it whole, field by field."""

from __future__ import annotations

import json
import subprocess
import sys

from expledger.store import open_store

from ..conftest import needs_postgres, run_exp

# A line as expledger wrote it before environments were stored once: every key, full provenance.
OLD = {
    "id": "EXP-002", "name": "old run", "task": "asr", "model": "whisper", "params": {"lr": 0.001},
    "command": "python train.py", "machine": "lab", "status": "SUCCESS", "created": "2026-11-01T10:00:00.000+00:00",
    "started": "2026-11-01T10:00:00.000+00:00", "completed": "2026-11-01T11:00:00.000+00:00",
    "metrics": {"wer": 0.12}, "summary": None, "failed_reason": None, "tags": ["base"], "priority": 0,
    "workdir": None, "aliases": [],
    "provenance": {"argv": ["python", "train.py"], "cwd": "/w", "git": {"commit": "abc123", "dirty": False},
                   "python": "3.11.7", "python_executable": "/usr/bin/python3",
                   "packages": ["numpy==2.0.0", "torch==2.3.0"], "host": "lab", "os": "Linux-6.1", "cpus": 8,
                   "gpus": [{"index": "0", "name": "A100", "memory_mib": 81920, "driver": "550.54"}],
                   "cuda_visible_devices": "0"},
    "runner": {"host": "lab", "pid": 4242, "attempt": 1}, "uuid": "0b7d4c1e-1f1e-4a4e-9a55-2f0f3f0f0f02",
    "rev": 2, "updated": "2026-11-01T11:00:00.000+00:00", "history": [], "v": 1,
}
SEED = {"id": "EXP-001", "name": "whisper logit lens", "task": "layer-analysis", "model": "whisper-base",
        "params": {"layers": 6}, "command": "python3 lens.py", "machine": "lab", "status": "success",
        "created": "2026-10-01T09:00:00", "started": None, "completed": "2026-10-01T10:00:00",
        "metrics": {"accuracy": 0.934}, "summary": "2 clusters", "failed_reason": None, "tags": "baseline"}
TWO_RUNS = """
import expledger
for n in range(2):
    with expledger.start(name=f"api {n}", params={"n": n}, store=__import__("sys").argv[1]) as run:
        run.log({"loss": 1.0 / (n + 1)})
"""


def _ledger(tmp_path) -> str:
    path = tmp_path / "a" / "experiments.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps(SEED, ensure_ascii=False) + "\n" + json.dumps(OLD, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    before = path.read_bytes()
    subprocess.run([sys.executable, "-c", TWO_RUNS, str(path)], check=True)
    added = path.read_bytes()[len(before):].decode().splitlines()
    assert len(added) == 4  # two lines a run: created RUNNING, then the result with its provenance
    assert sum('"packages"' in line for line in added) == 1  # the environment's facts once
    assert all('"env"' in line for line in added[1::2])
    return str(path)


def _shown(url: str) -> dict:
    with open_store(url) as store:
        return {exp.id: exp.to_dict() for exp in store.search(limit=None, sort="id")}


def test_old_and_seed_lines_read_as_before_and_new_records_are_shown_whole(tmp_path):
    url = _ledger(tmp_path)
    shown = json.loads(run_exp("--store", url, "show", "EXP-002", "--json").out)["experiment"]
    assert {k: v for k, v in shown.items() if k in OLD} == OLD
    assert not any(v for k, v in shown.items() if k not in OLD)  # fields added since: empty
    seed = _shown(url)["EXP-001"]
    assert (seed["status"], seed["tags"], seed["metrics"], seed["created"]) == (
        "SUCCESS", ["baseline"], {"accuracy": 0.934}, "2026-10-01T09:00:00")
    first, second = (json.loads(run_exp("--store", url, "show", exp_id, "--json").out)["experiment"]["provenance"]
                     for exp_id in ("EXP-003", "EXP-004"))
    assert first["packages"] and first["python"] and first["env"] == second["env"]
    assert {k: v for k, v in first.items() if k != "argv"} == {k: v for k, v in second.items() if k != "argv"}


def test_merge_keeps_every_record_whole(tmp_path):
    url = _ledger(tmp_path)
    target = str(tmp_path / "c" / "experiments.jsonl")
    assert run_exp("--store", target, "merge", url).code == 0
    assert _shown(target) == _shown(url)
    assert open(target, encoding="utf-8").read().count('"packages"') == 2  # OLD's own, and one environment


@needs_postgres
def test_copy_to_postgres_and_back_keeps_every_record_whole(tmp_path, postgres_url):
    url = _ledger(tmp_path)
    back = str(tmp_path / "b" / "experiments.jsonl")
    assert run_exp("copy", "--from", url, "--to", postgres_url, cwd=tmp_path).code == 0
    assert run_exp("copy", "--from", postgres_url, "--to", back, cwd=tmp_path).code == 0
    original = _shown(url)
    assert _shown(postgres_url) == original
    assert _shown(back) == original
    shown = json.loads(run_exp("--store", back, "show", "EXP-004", "--json").out)["experiment"]
    assert shown == original["EXP-004"]


def test_an_environment_another_process_indexed_is_not_written_again(tmp_path):
    """Two writers share the index file: one that looked for environments before the other
    defined one, and catches up after the other indexed it, still finds it there."""
    from expledger.lifecycle import Amend
    from expledger.provenance import collect

    path = str(tmp_path / "experiments.jsonl")
    facts = collect(argv=["train.py"], cwd=tmp_path)
    with open_store(path) as first, open_store(path) as second:
        second.add(name="before")
        assert second.index.environment("0" * 16) is None  # it has looked: what it holds is cached
        first.apply(first.add(name="a").id, Amend(provenance=facts))  # defines the environment
        first.search()  # this one's read indexes that line (and the environment) in the shared file
        for name in ("b", "c"):
            second.apply(second.add(name=name).id, Amend(provenance=facts))
    assert open(path, encoding="utf-8").read().count('"packages"') == 1
