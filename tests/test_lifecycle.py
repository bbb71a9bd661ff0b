"""Lifecycle transitions as data (expledger.lifecycle): each one round-trips through JSON and
applies the same rules as the models.py function it names."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest

from expledger import models
from expledger.errors import BadInput, IllegalTransition
from expledger.lifecycle import (
    Amend,
    Annotate,
    Cancel,
    Chain,
    Finish,
    Requeue,
    Result,
    Retry,
    Start,
    Transition,
    Update,
    from_json,
)
from expledger.models import Experiment, Status

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

EVERY_KIND = [
    Start(runner={"host": "h", "pid": 12}, machine="gpu-1", retries=2, command="python t.py"),
    Result(status="failed", metrics={"loss": math.inf, "acc": [0.1, 0.2]}, reason="OOM", force=True, attempt=3,
           runner={"exit": 1}, system={"gpu_mem_peak_mb": 900}, ended=True),
    Result(status=Status.SUCCESS),
    Finish(status=Status.SUCCESS, metrics={"acc": 0.9}, fallback={"loss": 0.3}, system={}, runner={"exit": 0},
           attempt=1),
    Cancel(reason="wrong data", by="ana@h"),
    Requeue(reason="worker stopped", attempt=2, ended_as="CANCELLED"),
    Retry(reason="requeued by ana@h: fixed the loader"),
    Update(metrics={"step": 3}, summary="half way", attempt=1, declared={"status": "FAILED", "reason": "x"},
           task="t", model="m", params={"lr": 0.1}, tags=("a", "b")),
    Annotate(tags=("best",), summary="kept"),
    Amend(attempt=1, provenance={"git": {"commit": "abc"}}, files=[{"base": "run", "path": "a.pt"}],
          params={"bs": 8}, metrics={"test_acc": 0.8}, system={"cpu": 1}, runner={"pgid": 4}),
    Chain(steps=(Amend(provenance={"host": "h"}), Result(status="cancelled", reason="stop"))),
]


@pytest.mark.parametrize("transition", EVERY_KIND, ids=lambda t: t.kind)
def test_every_transition_round_trips_through_json_text(transition):
    data = json.loads(json.dumps(transition.to_json()))  # plain JSON: it can cross a process boundary
    assert data["kind"] == transition.kind
    again = from_json(data)
    assert type(again) is type(transition)
    assert again.to_json() == transition.to_json()
    if not any(isinstance(v, float) and math.isinf(v) for v in (getattr(transition, "metrics", None) or {}).values()):
        assert again == transition


def test_infinite_metrics_come_back_as_floats():
    again = Transition.from_json(json.loads(json.dumps(EVERY_KIND[1].to_json())))
    assert again.metrics["loss"] == math.inf


@pytest.mark.parametrize("data", [{"kind": "explode"}, {}, [], {"kind": ["start"]}, {"kind": "cancel", "colour": "red"},
                                  {"kind": "chain", "steps": "start"}, {"kind": "chain", "steps": [{"kind": "?"}]}])
def test_an_unknown_kind_or_argument_is_bad_input(data):
    with pytest.raises(BadInput):
        from_json(data)


def _exp(**fields) -> Experiment:
    return Experiment(id="EXP-001", name="x", created="2026-01-01T00:00:00.000+00:00", **fields)


def test_transitions_apply_the_models_rules():
    queued = _exp()
    running = Start(machine="m", runner={"pid": 1}).apply(queued, NOW)
    assert running == models.start(queued, machine="m", runner={"pid": 1}, now=NOW)
    done = Result(status="success", metrics={"a": 1}).apply(running, NOW)
    assert done == models.record_result(running, status="success", metrics={"a": 1}, now=NOW)
    with pytest.raises(IllegalTransition):
        Result(status="failed", reason="again").apply(done, NOW)
    assert Retry(reason="r").apply(done, NOW) == models.retry(done, reason="r", now=NOW)
    assert Cancel(by="a@b").apply(queued, NOW) == models.cancel(queued, by="a@b", now=NOW)
    assert Requeue(reason="lost", attempt=1).apply(running, NOW).status is Status.QUEUED


def test_a_result_can_stamp_when_it_was_applied():
    running = Start(runner={"pid": 1}).apply(_exp(), NOW)
    done = Result(status="success", ended=True).apply(running, NOW)
    assert done.runner["ended"] == models.now_iso(NOW)


def test_a_runners_verdict_follows_what_the_code_declared():
    running = Start(runner={"pid": 1}).apply(_exp(), NOW)
    declared = Update(declared={"status": "FAILED", "reason": "diverged"}, metrics={"loss": 9}).apply(running, NOW)
    ended = Finish(status="success", fallback={"loss": 1.0, "acc": 0.5}, metrics={"f1": 0.1}, attempt=1,
                   runner={"exit": 0}).apply(declared, NOW)
    assert ended.status is Status.FAILED and ended.failed_reason == "diverged"
    assert ended.metrics == {"loss": 9, "acc": 0.5, "f1": 0.1}  # recorded over the last logged, the file over both
    assert ended.runner["exit"] == 0


def test_a_chain_applies_its_steps_in_order():
    running = Start(runner={"pid": 1}).apply(_exp(), NOW)
    ended = Chain(steps=(Amend(provenance={"host": "h"}), Result(status="cancelled", reason="stop"))).apply(running, NOW)
    assert ended.provenance == {"host": "h"} and ended.status is Status.CANCELLED and ended.summary == "stop"


def test_requeue_checks_every_experiment_first_and_counts_each_spelling_once(tmp_path):
    from expledger.ops import record
    from expledger.store import open_store

    with open_store(str(tmp_path / "experiments.jsonl")) as store:
        done = store.add(name="done", command="true")
        store.result(done.id, status="failed", reason="flaky")
        waiting = store.add(name="waiting", command="true")
        with pytest.raises(IllegalTransition):
            record.requeue(store, [done.id, waiting.id], reason="again")
        assert store.get(done.id).status is Status.FAILED  # nothing written
        queued = record.requeue(store, ["1", "EXP-001", "exp-1"], reason="fixed", by="ana@lab")
        assert [exp.id for exp in queued.experiments] == ["EXP-001"]
        assert queued.to_json()["experiments"][0]["runner"]["requeued"] == "requeued by ana@lab: fixed"
        assert store.get(done.id).rev == 3
