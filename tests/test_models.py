"""The record, its IDs and the lifecycle rules, without any store."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expledger import models
from expledger.errors import BadInput, IllegalTransition
from expledger.models import Experiment, Status


@given(st.integers(min_value=1, max_value=10**7))
def test_every_spelling_of_an_id_resolves_to_its_number(number):
    canonical = models.format_id(number)
    for spelling in (canonical, canonical.lower(), f"exp-{number}", f"EXP{number}", str(number), f" {number} "):
        assert models.parse_id(spelling) == number
    assert models.parse_id(canonical) == number


def test_ids_are_zero_padded_to_three_digits_then_grow():
    assert [models.format_id(n) for n in (1, 42, 999, 1000)] == ["EXP-001", "EXP-042", "EXP-999", "EXP-1000"]


@given(st.text())
def test_malformed_ids_are_bad_input_never_a_crash(text):
    try:
        number = models.parse_id(text)
    except BadInput as err:
        assert "not an experiment ID" in str(err)
    else:
        assert number >= 1


@pytest.mark.parametrize("word", ["success", "SUCCESS", "Success", " failed ", "Cancelled"])
def test_status_words_are_case_insensitive(word):
    assert Status.parse(word).value == word.strip().upper()


def test_unknown_status_lists_the_valid_ones():
    with pytest.raises(BadInput, match="valid are queued, running, success, failed, cancelled"):
        Status.parse("succes")


def test_canonical_params_ignore_key_order_and_numeric_spelling():
    a = models.fingerprint("t", "m", {"lr": 1e-3, "layers": 6, "opt": {"b": 2, "a": [1, 2.0]}})
    b = models.fingerprint("t", "m", {"opt": {"a": [1.0, 2], "b": 2.0}, "layers": 6.0, "lr": 0.001})
    assert a == b
    assert a != models.fingerprint("t", "m", {"lr": 1e-4, "layers": 6, "opt": {"b": 2, "a": [1, 2]}})
    assert models.fingerprint("t", "m", {"flag": True}) != models.fingerprint("t", "m", {"flag": 1})


def _queued(**kw) -> Experiment:
    return Experiment(id="EXP-001", name="x", **kw)


def test_result_from_queued_is_allowed_and_a_failure_takes_the_summary_as_reason():
    done = models.record_result(_queued(), status=Status.FAILED, summary="OOM on whisper-large")
    assert done.status is Status.FAILED
    assert done.failed_reason == "OOM on whisper-large"
    assert done.completed is not None


def test_a_failure_without_any_reason_is_refused():
    with pytest.raises(BadInput, match="needs a reason"):
        models.record_result(_queued(), status=Status.FAILED)


def test_a_finished_result_is_replaced_only_with_force_and_kept_in_history():
    first = models.record_result(_queued(), status=Status.SUCCESS, metrics={"acc": 0.9}, summary="ok")
    with pytest.raises(IllegalTransition, match="force=True"):
        models.record_result(first, status=Status.FAILED, reason="bug in eval")
    second = models.record_result(first, status=Status.FAILED, reason="bug in eval", force=True)
    assert second.status is Status.FAILED and second.metrics == {}
    assert second.completed == first.completed  # a new verdict on the same run: it did not run longer
    assert second.history == [
        {"status": "SUCCESS", "metrics": {"acc": 0.9}, "summary": "ok", "failed_reason": None,
         "completed": first.completed, "replaced": second.history[0]["replaced"]}
    ]


def test_results_merge_metrics_logged_earlier():
    running = _queued(status=Status.RUNNING, metrics={"loss": 0.3})
    done = models.record_result(running, status=Status.SUCCESS, metrics={"acc": 0.9})
    assert done.metrics == {"loss": 0.3, "acc": 0.9}


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUCCESS, Status.FAILED, Status.CANCELLED])
def test_only_queued_experiments_start(status):
    with pytest.raises(IllegalTransition):
        models.start(_queued(status=status))


@pytest.mark.parametrize("status", [Status.SUCCESS, Status.FAILED, Status.CANCELLED])
def test_finished_experiments_cannot_be_cancelled(status):
    with pytest.raises(IllegalTransition, match="already"):
        models.cancel(_queued(status=status))


def test_nan_and_infinity_round_trip_as_portable_json():
    exp = _queued(metrics={"loss": math.nan, "best": math.inf, "worst": -math.inf, "acc": 0.5})
    line = exp.to_line()
    json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in the line"))
    back = Experiment.from_line(line)
    assert math.isnan(back.metrics["loss"]) and back.metrics["best"] == math.inf
    assert back.metrics["worst"] == -math.inf and back.metrics["acc"] == 0.5


def test_seed_tool_records_are_read_and_unknown_keys_kept():
    legacy = {"id": "EXP-007", "name": "old run", "status": "success", "params": {}, "metrics": {"acc": 1},
              "created": "2025-03-01T10:00:00", "tags": "baseline", "notes": "from the seed tool"}
    exp = Experiment.from_dict(legacy)
    assert exp.status is Status.SUCCESS and exp.tags == ["baseline"]
    assert exp.uuid == Experiment.from_dict(dict(legacy, status="failed")).uuid  # stable per id
    assert exp.to_dict()["notes"] == "from the seed tool"
    assert models.parse_time(exp.created).utcoffset().total_seconds() == 0


@pytest.mark.parametrize("record", [[], {"name": "no id"}, {"id": "EXP-1", "status": "done"},
                                    {"id": "EXP-1", "params": [1]}])
def test_unusable_records_raise_value_error(record):
    with pytest.raises(ValueError):
        Experiment.from_dict(record)


@given(st.dictionaries(st.text(), st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
                       max_size=5))
def test_any_params_survive_a_round_trip_through_a_line(params):
    exp = _queued(params=params, metrics=dict(params))
    back = Experiment.from_line(exp.to_line())
    stored = models.json_safe(params)  # NUL is stored as ␀ by every store (PostgreSQL cannot hold it)
    assert models.fingerprint(None, None, back.params) == models.fingerprint(None, None, stored)


def _lines_of_every_kind() -> list[str]:
    """Our own lines (optional fields left out, or given), NaN metrics, a seed-tool line,
    a line with another tool's key, a line orjson refuses (a bare NaN): enough of them for
    the bulk path (models.BULK_LINES)."""
    full = _queued(metrics={"loss": math.nan, "acc": 0.5}, tags=["a"])
    full = models.dataclasses.replace(full, aliases=["EXP-009"], runner={"pid": 4}, files=[{"path": "x"}], priority=3)
    own = [full.to_line().decode(), _queued().to_line().decode()]
    other = dict(json.loads(own[1]), colour="blue")
    seed = {"id": "EXP-007", "name": "old run", "status": "success", "params": {}, "metrics": {"acc": 1},
            "tags": "baseline"}
    kinds = [*own, json.dumps(other), json.dumps(seed), own[1].replace('"metrics":{}', '"metrics":{"x":NaN}')]
    return kinds * (models.BULK_LINES // len(kinds) + 1)


@pytest.mark.parametrize("admitted", [False, True])
def test_lines_read_in_bulk_are_the_records_read_one_by_one(admitted):
    lines = _lines_of_every_kind()
    assert len(lines) >= models.BULK_LINES
    bulk = Experiment.from_lines(lines, admitted=admitted)
    for line, exp in zip(lines, bulk):
        one = Experiment.from_dict(json.loads(line))
        assert exp.to_line() == one.to_line() and exp.to_dict() == one.to_dict()
        assert repr(exp) == repr(one)
    assert bulk[0].aliases == ["EXP-009"] and bulk[0].priority == 3 and math.isnan(bulk[0].metrics["loss"])
    assert bulk[2].extra == {"colour": "blue"} and bulk[3].tags == ["baseline"]


def test_fields_a_line_leaves_out_are_empty_and_never_shared_between_records():
    line = _queued().to_line()
    assert b"aliases" not in line and b"history" not in line and b"priority" not in line
    first, second = Experiment.from_lines([line, line])
    assert (first.aliases, first.history, first.runner, first.extra, first.priority, first.gpus) == ([], [], {}, {}, 0, None)
    first.history.append({"status": "FAILED"})
    first.runner["pid"] = 1
    assert second.history == [] and second.runner == {}
    assert first.to_dict()["history"] == [{"status": "FAILED"}]
    with pytest.raises(AttributeError):
        first.no_such_field  # noqa: B018
