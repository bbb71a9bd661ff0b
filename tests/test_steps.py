"""Step series that cannot lose or shift points (issue 8, items 3 and 11).

Logging from several threads while the flush thread swaps the buffer, values that cannot be
stored, a flush that fails, a damaged chunk in the middle of a series, and final metrics
taken from what was logged rather than read back from the store.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import expledger
from expledger import steps
from expledger.errors import BadInput
from expledger.store import open_store

from .conftest import LEDGER


def _store(tmp_path):
    return open_store(str(tmp_path / LEDGER))


def test_several_threads_logging_for_five_seconds_lose_no_point(tmp_path):
    run = expledger.start(name="stress")
    counts = {}

    def logger(k: int) -> None:
        step, deadline = 0, time.monotonic() + 5
        while time.monotonic() < deadline:
            for _ in range(1000):
                run.log({f"a{k}": step, f"b{k}": -step}, step=step)
                step += 1
        counts[k] = step

    def flusher() -> None:  # more swaps than the background thread alone makes
        while len(counts) < 3:
            run.flush()
            time.sleep(0.01)

    threads = [threading.Thread(target=logger, args=(k,)) for k in range(3)] + [threading.Thread(target=flusher)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.result()
    with _store(tmp_path) as store:
        series = store.read_steps(store.get(run.id))
    for k, count in counts.items():
        a_steps, a_values = series[f"a{k}"]
        b_steps, b_values = series[f"b{k}"]
        assert len(a_steps) == len(b_steps) == count  # every point stored
        assert a_steps == list(range(count)) and b_steps == a_steps  # in order, aligned with its step
        assert a_values == [float(s) for s in a_steps] and b_values == [-v for v in a_values]
    assert run.experiment.metrics[f"a{0}"] == counts[0] - 1


@pytest.mark.parametrize("bad, message", [
    ({"loss": 10**400}, "too large"),
    ({"loss": "high"}, "must be a number"),
    ({"x" * 70_000: 1.0}, "name is too long"),
    ({7: 1.0}, "name must be text"),
])
def test_a_value_that_cannot_be_stored_is_refused_before_anything_is_appended(tmp_path, bad, message):
    run = expledger.start(name="x")
    run.log({"acc": 0.1, "loss": 1.0})
    with pytest.raises(BadInput, match=message):
        run.log({"acc": 0.2, **bad})
    run.log({"acc": 0.3, "loss": 3.0})
    run.result()
    with _store(tmp_path) as store:
        series = store.read_steps(store.get(run.id))
    assert series["acc"] == ([0, 1], [0.1, 0.3]) and series["loss"] == ([0, 1], [1.0, 3.0])
    assert run.experiment.status.value == "SUCCESS"


def test_a_failing_flush_is_one_warning_keeps_the_points_and_never_stops_heartbeats(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(expledger.run, "FLUSH_SECONDS", 0.05)
    monkeypatch.setenv("EXP_HEARTBEAT", "0.05")
    run = expledger.start(name="x")
    store = run.store
    real_append, beats, failing = store.append_steps, [], [True]

    def append(exp, series):
        if failing[0]:
            raise RuntimeError("disk said no")  # not an OSError: it used to kill the flush thread
        real_append(exp, series)

    monkeypatch.setattr(store, "append_steps", append)
    real_beat = store.heartbeat
    monkeypatch.setattr(store, "heartbeat", lambda exp: (beats.append(1), real_beat(exp)))
    for step in range(5):
        run.log({"loss": float(step)})
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while len(beats) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(beats) >= 3
    failing[0] = False
    run.result()
    assert sum("could not save steps" in r.getMessage() for r in caplog.records if r.name == "expledger") == 1
    with open_store(store.url) as fresh:
        assert fresh.read_steps(fresh.get(run.id))["loss"] == ([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 3.0, 4.0])


def test_the_decoder_skips_only_a_damaged_chunk_and_says_so():
    first = steps.encode({"loss": ([0, 1], [1.0, 0.5])})
    torn = steps.encode({"loss": ([2, 3, 4], [0.4, 0.3, 0.2])})[:-7]  # a crash in the middle of a write
    later = steps.encode({"loss": ([5], [0.1]), "acc": ([5], [0.9])})
    warnings = []
    series = steps.decode(first + b"garbage" + first + torn + later, warn=warnings.append)
    assert series["loss"] == ([0, 1, 0, 1, 5], [1.0, 0.5, 1.0, 0.5, 0.1]) and series["acc"] == ([5], [0.9])
    assert len(warnings) == 1 and "skipped 2 damaged parts" in warnings[0]


def test_final_metrics_are_the_last_values_as_logged_not_read_back(tmp_path):
    run = expledger.start(name="x")
    for step in range(100):
        run.log({"loss": 1 / (step + 1), "acc": step / 100})
    run.log({"loss": math.inf})
    run.flush()
    with _store(tmp_path) as store:
        (store._own_dir(run.experiment) / "steps.bin").write_bytes(b"not a series")  # unreadable now
    run.result()
    assert run.experiment.metrics["acc"] == 0.99 and run.experiment.metrics["loss"] == math.inf


def test_last_values_of_a_stored_series_are_found_without_loading_it(tmp_path):
    run = expledger.start(name="x")
    for step in range(10):
        run.log({"loss": float(step)})
        if step % 3 == 0:
            run.flush()
    run.log({"acc": 0.5})
    run.result()
    with _store(tmp_path) as store:
        assert store.last_steps(store.get(run.id)) == {"loss": 9.0, "acc": 0.5}



_series = st.lists(st.tuples(st.sampled_from(["loss", "acc", "学习率"]),
                             st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.floats()), min_size=1, max_size=20)),
                   min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(_series, st.data())
def test_a_torn_chunk_anywhere_loses_only_that_chunk(parts, data):
    encoded = [steps.encode({name: ([s for s, _ in points], [v for _, v in points])}) for name, points in parts]
    torn = data.draw(st.integers(0, len(encoded) - 1))
    cut = data.draw(st.integers(1, len(encoded[torn]) - 1))
    damaged = b"".join(part[:cut] if i == torn else part for i, part in enumerate(encoded))
    expected = steps.decode(b"".join(part for i, part in enumerate(encoded) if i != torn))
    got = steps.decode(damaged)
    assert {k: (s, [repr(v) for v in vs]) for k, (s, vs) in got.items()} == \
        {k: (s, [repr(v) for v in vs]) for k, (s, vs) in expected.items()}
