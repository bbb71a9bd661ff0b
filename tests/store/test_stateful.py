"""Random sequences of lifecycle operations, checked against a plain model of the rules.

After every step the store agrees with the model; at the end a fresh store (rebuilding its
index from the log) and a naive reader of the file (the last line per id) agree too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from expledger.errors import BadInput, IllegalTransition
from expledger.models import Status
from expledger.store import open_store

FINAL = st.sampled_from([Status.SUCCESS, Status.FAILED, Status.CANCELLED])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.path = self.folder / "experiments.jsonl"
        self.store = open_store(str(self.path))
        self.model: dict[str, str] = {}  # id -> status the rules say it has

    @rule(name=TEXT, params=st.dictionaries(st.text(max_size=5), st.integers() | st.floats(allow_nan=False)))
    def add(self, name, params):
        if not name.strip():
            return
        exp = self.store.add(name=name, params=params)
        assert exp.id == f"EXP-{len(self.model) + 1:03d}"
        self.model[exp.id] = "QUEUED"

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def start(self, data):
        exp_id = data.draw(st.sampled_from(sorted(self.model)))
        try:
            self.store.start(exp_id)
        except IllegalTransition:
            assert self.model[exp_id] != "QUEUED"
        else:
            assert self.model[exp_id] == "QUEUED"
            self.model[exp_id] = "RUNNING"

    @precondition(lambda self: self.model)
    @rule(data=st.data(), status=FINAL, force=st.booleans(), reason=st.none() | TEXT)
    def result(self, data, status, force, reason):
        exp_id = data.draw(st.sampled_from(sorted(self.model)))
        finished = self.model[exp_id] in ("SUCCESS", "FAILED", "CANCELLED")
        try:
            self.store.result(exp_id, status=status, reason=reason, force=force, metrics={"x": 1})
        except BadInput:
            refused_reason = status is Status.SUCCESS and reason is not None
            assert refused_reason or (status is Status.FAILED and not (reason or "").strip())
        except IllegalTransition:
            assert finished and not force
        else:
            assert not finished or force
            self.model[exp_id] = status.value

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data):
        exp_id = data.draw(st.sampled_from(sorted(self.model)))
        try:
            self.store.cancel(exp_id)
        except IllegalTransition:
            assert self.model[exp_id] not in ("QUEUED", "RUNNING")
        else:
            self.model[exp_id] = "CANCELLED"

    @invariant()
    def store_agrees_with_the_model(self):
        found = self.store.search(limit=None)
        assert found.total == len(self.model)
        assert {e.id: e.status.value for e in found} == self.model

    def teardown(self):
        self.store.close()
        if self.path.exists():
            naive = {r["id"]: r["status"] for r in map(json.loads, self.path.read_text(encoding="utf-8").splitlines())}
            assert naive == self.model
            shutil.rmtree(self.folder / ".exp-cache")
            with open_store(str(self.path)) as fresh:
                assert {e.id: e.status.value for e in fresh.search(limit=None)} == self.model
        shutil.rmtree(self.folder)


TestLedgerLifecycle = LedgerMachine.TestCase
TestLedgerLifecycle.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
