"""The Transformers callback and the Lightning logger, with the real libraries on the CPU.

Tiny models built from configs in the test (no download), trained for a few steps on random
tensors: what a real training script records, including a failing step and `exp run`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from expledger.models import Status
from expledger.store import open_store

from .conftest import LEDGER, run_exp
from .tiny_training import STEPS, tiny_fit, tiny_trainer

torch = pytest.importorskip("torch", reason="the framework integration tests need torch (pip install torch==2.13.0)")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub access, one CPU thread (the machine is shared), a run's series kept short."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EXP_SYSTEM_INTERVAL", "0")
    torch.set_num_threads(1)


def _ledger(tmp_path):
    store = open_store(str(tmp_path / LEDGER))
    found = store.search(limit=None, sort="id")
    return store, found


# --- Transformers -------------------------------------------------------------------------

def _needs_transformers():
    pytest.importorskip("transformers", reason="needs transformers (pip install 'expledger[transformers]')")
    pytest.importorskip("accelerate", reason="Trainer needs accelerate (pip install 'expledger[transformers]')")


def _tiny_trainer(tmp_path, callback, **options):
    _needs_transformers()
    return tiny_trainer(tmp_path / "out", callback, **options)


def test_a_trainer_records_params_curves_eval_metrics_and_checkpoints(tmp_path):
    from expledger.integrations.transformers import ExpLedgerCallback

    trainer = _tiny_trainer(tmp_path, ExpLedgerCallback(task="tiny-cls", tags=["hf"]))
    trainer.train()
    store, found = _ledger(tmp_path)
    assert len(found) == 1
    exp = found[0]
    assert exp.status is Status.SUCCESS and exp.task == "tiny-cls" and exp.model == "bert"
    assert exp.params["learning_rate"] == 3e-4 and exp.params["max_steps"] == STEPS and exp.params["seed"] == 7
    assert exp.params["model/hidden_size"] == 16 and exp.params["model/num_hidden_layers"] == 2
    assert "output_dir" not in exp.params and "logging_dir" not in exp.params
    steps = store.read_steps(exp)
    assert steps["loss"][0] == [1, 2, 3, 4]  # one point per logging step, at global_step
    assert "eval_loss" in exp.metrics and exp.metrics["eval_loss"] == steps["eval_loss"][1][-1]
    checkpoints = [f for f in exp.files if f["kind"] == "checkpoint"]
    assert {f["path"].split("/")[1] for f in checkpoints} == {"checkpoint-2", "checkpoint-4"}
    weights = next(f for f in checkpoints if f["path"] == "out/checkpoint-4/model.safetensors")
    on_disk = tmp_path / "out" / "checkpoint-4" / "model.safetensors"
    assert weights["sha256"] == hashlib.sha256(on_disk.read_bytes()).hexdigest() and weights["size"] > 0
    trainer.evaluate()  # after training: merged into the finished result
    store.close()
    with open_store(str(tmp_path / LEDGER)) as again:
        assert again.get(exp.id).metrics["eval_loss"] == pytest.approx(trainer.evaluate()["eval_loss"])


def test_a_failing_training_step_is_failed_with_the_exception(tmp_path):
    from expledger.integrations.transformers import ExpLedgerCallback

    with pytest.raises(RuntimeError, match="NaN"):
        _tiny_trainer(tmp_path, ExpLedgerCallback(), fail_at=3).train()
    _, found = _ledger(tmp_path)
    assert [e.status for e in found] == [Status.FAILED]
    assert found[0].failed_reason == "RuntimeError: loss went NaN at step 3"


def test_ctrl_c_in_training_is_cancelled(tmp_path):
    from expledger.integrations.transformers import ExpLedgerCallback

    with pytest.raises(KeyboardInterrupt):
        _tiny_trainer(tmp_path, ExpLedgerCallback(), fail_at=2, interrupt=True).train()
    _, found = _ledger(tmp_path)
    assert [e.status for e in found] == [Status.CANCELLED]


def test_only_the_main_process_writes(tmp_path):
    _needs_transformers()
    from transformers import TrainerState

    from expledger.integrations.transformers import ExpLedgerCallback

    callback = ExpLedgerCallback()
    state = TrainerState(is_world_process_zero=False)
    callback.on_train_begin(None, state, None)
    callback.on_log(None, state, None, logs={"loss": 1.0})
    callback.on_train_end(None, state, None)
    assert callback.run is None and not (tmp_path / LEDGER).exists()


# --- Lightning ----------------------------------------------------------------------------

def _fit(tmp_path, logger, **options):
    pytest.importorskip("lightning.pytorch", reason="needs lightning (pip install 'expledger[lightning]')")
    return tiny_fit(tmp_path, logger, **options)


def test_a_lightning_fit_records_hyperparams_curves_and_checkpoints(tmp_path):
    from expledger.integrations.lightning import ExpLedgerLogger

    trainer, module, loader = _fit(tmp_path, ExpLedgerLogger("tiny regression", task="regression"))
    store, found = _ledger(tmp_path)
    assert len(found) == 1
    exp = found[0]
    assert exp.status is Status.SUCCESS and exp.name == "tiny regression"
    assert exp.params == {"lr": 0.01, "hidden": 8}
    steps = store.read_steps(exp)
    assert len(steps["train_loss"][1]) == STEPS and "val_loss" in exp.metrics
    assert exp.metrics["train_loss"] == steps["train_loss"][1][-1]
    assert {f["kind"] for f in exp.files} == {"checkpoint"}
    checkpoint = exp.files[-1]  # the newest: ModelCheckpoint deletes the ones it replaces
    assert checkpoint["path"].endswith("step=4.ckpt")
    on_disk = tmp_path / checkpoint["path"]
    assert checkpoint["sha256"] == hashlib.sha256(on_disk.read_bytes()).hexdigest()
    trainer.validate(module, loader)  # after the fit: merged into the finished result, no new experiment
    store.close()
    _, after = _ledger(tmp_path)
    assert len(after) == 1 and after[0].status is Status.SUCCESS


def test_a_failing_lightning_step_is_failed_with_the_exception(tmp_path):
    from expledger.integrations.lightning import ExpLedgerLogger

    with pytest.raises(ValueError, match="bad batch"):
        _fit(tmp_path, ExpLedgerLogger(), fail_at=2)
    _, found = _ledger(tmp_path)
    assert [e.status for e in found] == [Status.FAILED]
    assert found[0].failed_reason == "ValueError: bad batch at step 2"


def test_lightning_writes_only_on_rank_zero(tmp_path, monkeypatch):
    pytest.importorskip("lightning.pytorch", reason="needs lightning (pip install 'expledger[lightning]')")
    from lightning.pytorch.utilities import rank_zero_only

    from expledger.integrations.lightning import ExpLedgerLogger

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = ExpLedgerLogger()
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert logger.version is None and not (tmp_path / LEDGER).exists()


# --- under exp run -------------------------------------------------------------------------

SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from tiny_training import tiny_fit, tiny_trainer
from expledger.integrations.lightning import ExpLedgerLogger
from expledger.integrations.transformers import ExpLedgerCallback
tiny_trainer("out", ExpLedgerCallback(task="ignored under exp run")).train()
tiny_fit(".", ExpLedgerLogger())
"""


def test_under_exp_run_neither_creates_a_second_experiment(tmp_path):
    _needs_transformers()
    pytest.importorskip("lightning.pytorch", reason="needs lightning (pip install 'expledger[lightning]')")
    (tmp_path / "train.py").write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "EXP_SYSTEM_INTERVAL": "0"}
    result = run_exp("run", "--name", "both", "--params", '{"learning_rate": 0.5}', "--",
                     sys.executable, "train.py", cwd=tmp_path, env=env, timeout=600)
    assert result.code == 0, result.err[-2000:]
    store, found = _ledger(tmp_path)
    assert [(e.id, e.status) for e in found] == [("EXP-001", Status.SUCCESS)]
    exp = found[0]
    assert exp.params["learning_rate"] == 0.5  # given to exp run: wins over the TrainingArguments
    assert exp.params["max_steps"] == STEPS and exp.params["hidden"] == 8  # from Transformers and Lightning
    steps = store.read_steps(exp)
    assert {"loss", "train_loss", "eval_loss"} <= set(steps)
    assert {"eval_loss", "train_loss", "val_loss"} <= set(exp.metrics)
    assert any(f["path"].endswith(".ckpt") for f in exp.files) and any("checkpoint-4" in f["path"] for f in exp.files)
    assert json.loads(run_exp("files", exp.id, "--json", cwd=tmp_path).out)["files"]
