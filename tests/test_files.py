"""`run.log_file`, `exp files`, files in `show`, through `copy`, and missing files in `doctor`."""

from __future__ import annotations

import hashlib
import json

import pytest

import expledger
from expledger.errors import BadInput
from expledger.models import Experiment

from .conftest import LEDGER, needs_postgres, run_exp


def _checkpointed_run(tmp_path):
    """A finished API run that logged a checkpoint folder (two files) and a prediction file."""
    (tmp_path / "preds.csv").write_text("id,label\n1,猫\n", encoding="utf-8")
    with expledger.start(name="ckpt") as run:
        folder = run.run_dir / "checkpoint-2"
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(b"\x00weights" * 1000)
        (folder / "config.json").write_text("{}")
        run.log_file(folder, kind="checkpoint")
        run.log_file("preds.csv", kind="prediction")
    return run, folder / "model.bin"


def test_a_logged_checkpoint_shows_its_size_and_sha256(tmp_path, exp):
    run, weights = _checkpointed_run(tmp_path)
    shown = json.loads(exp("show", run.id, "--json").out)["experiment"]["files"]
    by_path = {entry["path"]: entry for entry in shown}
    assert set(by_path) == {"checkpoint-2/model.bin", "checkpoint-2/config.json", "preds.csv"}
    model = by_path["checkpoint-2/model.bin"]
    assert model["base"] == "run" and model["kind"] == "checkpoint" and model["size"] == 8000
    assert model["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert by_path["preds.csv"]["base"] == "workspace" and by_path["preds.csv"]["kind"] == "prediction"
    listed = json.loads(exp("files", run.id, "--json").out)
    assert [f["state"] for f in listed["files"]] == ["ok", "ok", "ok"]
    assert {f["location"] for f in listed["files"]} >= {str(weights)}
    table = exp("files", run.id)
    assert table.code == 0 and "checkpoint-2/model.bin" in table.out and "8.0 kB" in table.out
    assert "checkpoint-2/model.bin" in exp("show", run.id).out


def test_logging_a_path_again_replaces_its_entry(tmp_path):
    target = tmp_path / "best.pt"
    with expledger.start(name="again") as run:
        target.write_bytes(b"one")
        run.log_file(target, kind="checkpoint")
        target.write_bytes(b"second")
        run.log_file(target, kind="checkpoint")
    with expledger.open_store(str(tmp_path / LEDGER)) as store:
        assert [(f["path"], f["size"]) for f in store.get(run.id).files] == [("best.pt", 6)]


def test_logging_a_file_that_is_not_there_raises_at_once(tmp_path):
    with expledger.start(name="typo") as run, pytest.raises(BadInput, match="no such file"):
        run.log_file("nowhere.pt")
    assert run.experiment.files == []


def test_doctor_reports_a_logged_file_once_it_is_deleted(tmp_path, exp):
    run, weights = _checkpointed_run(tmp_path)
    assert "missing_file" not in exp("doctor").out
    weights.unlink()
    (tmp_path / "preds.csv").write_text("changed")
    report = exp("doctor", "--json")
    assert report.code == 0  # a warning: deleting old checkpoints is normal, the ledger is sound
    problems = json.loads(report.out)["report"]["problems"]
    assert [(p["kind"], p["severity"]) for p in problems] == [("missing_file", "warning"), ("changed_file", "warning")]
    assert str(weights) in problems[0]["message"]
    states = {f["path"]: f["state"] for f in json.loads(exp("files", run.id, "--json").out)["files"]}
    assert states == {"checkpoint-2/model.bin": "missing", "checkpoint-2/config.json": "ok", "preds.csv": "changed"}


def test_files_of_an_unknown_or_fileless_experiment(exp):
    assert exp("files", "EXP-009").code == 1
    exp("add", "--name", "plain")
    empty = exp("files", "1")
    assert empty.code == 0 and "recorded no files" in empty.err
    assert json.loads(exp("files", "1", "--json").out)["files"] == []


def test_a_line_written_before_files_existed_reads_with_none():
    old = Experiment(id="EXP-001", name="old", uuid="u-1", rev=1).to_dict()
    del old["files"], old["system"]
    exp = Experiment.from_dict(old)
    assert exp.files == [] and exp.system == {} and exp.to_dict()["files"] == []


@needs_postgres
def test_files_survive_copy_to_postgres_and_back(tmp_path, postgres_url):
    run, _ = _checkpointed_run(tmp_path)
    back = str(tmp_path / "back" / "experiments.jsonl")
    assert run_exp("copy", "--from", str(tmp_path / LEDGER), "--to", postgres_url, cwd=tmp_path).code == 0
    assert run_exp("copy", "--from", postgres_url, "--to", back, cwd=tmp_path).code == 0
    with expledger.open_store(str(tmp_path / LEDGER)) as first, expledger.open_store(postgres_url) as middle, \
            expledger.open_store(back) as final:
        original = first.get(run.id).files
        assert len(original) == 3
        assert middle.get(run.id).files == original == final.get(run.id).files
