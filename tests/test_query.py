"""The --where language: parser properties, exact semantics on a fixed ledger, SQL = reference."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expledger.errors import BadInput
from expledger.models import Status
from expledger.query import And, Compare, Exists, Has, In, Not, Or, parse, to_text
from expledger.store import open_store

from .query_oracle import matches

# --- the parser --------------------------------------------------------------------

NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_- .é層", min_size=1, max_size=8)
PATHS = st.one_of(
    st.sampled_from([("name",), ("task",), ("model",), ("machine",), ("summary",), ("tags",), ("created",)]),
    st.tuples(st.sampled_from(["params", "metrics"]), NAMES),
    st.tuples(st.just("params"), NAMES, NAMES),
)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)
VALUES = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False), TEXT, st.booleans())


@st.composite
def leaves(draw):
    kind = draw(st.sampled_from(["compare", "in", "has", "exists", "status", "id"]))
    if kind == "status":
        return In(("status",), tuple(draw(st.lists(st.sampled_from([s.value for s in Status]), min_size=1, max_size=3))))
    if kind == "id":
        return Compare(("id",), draw(st.sampled_from(["=", "<", ">="])), draw(st.integers(1, 5000)))
    path = draw(PATHS)
    if kind == "exists":
        return Exists(path)
    if kind == "has":
        return Has(path, draw(st.one_of(TEXT, st.integers(-100, 100))))
    if kind == "in":
        return In(path, tuple(draw(st.lists(VALUES, min_size=1, max_size=3))))
    value = draw(VALUES)
    if isinstance(value, bool):
        op = draw(st.sampled_from(["=", "!="]))
    elif isinstance(value, str) and draw(st.booleans()):
        return Compare(path, "~", value.replace("\\", "").replace("(", "").replace("[", "").replace("*", "")
                       .replace("+", "").replace("?", "").replace("{", "").replace(")", "").replace("]", "")
                       .replace("}", "").replace("\x00", ""))  # a literal pattern; NUL is refused by the dialect
    else:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
    return Compare(path, op, value)


EXPRESSIONS = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(lambda items: And(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda items: Or(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=6,
)


@given(EXPRESSIONS)
def test_every_printed_expression_parses_back_to_itself(expr):
    assert parse(to_text(expr)) == expr


@given(st.text(max_size=40))
def test_any_text_parses_or_fails_with_a_clean_message(text):
    try:
        parse(text)
    except BadInput as err:
        assert str(err).startswith("where: ") and err.for_cli().startswith("--where: ")


@pytest.mark.parametrize("text, message", [
    ("params.lr <", "expected a value after '<' at column 12"),
    ("params.lr < 0.01 and", "expected a field (name, params.X, metrics.X, …), found the end at column 21"),
    ("colour = red", "unknown field 'colour' at column 1"),
    ("params = 1", "unknown field 'params' at column 1: use params.NAME, or `params has NAME`"),
    ("(task = asr", "expected ')' to close the '(' at column 12"),
    ("task asr", "expected an operator (= != < <= > >= ~ in has exists) after 'task', found 'asr' at column 6"),
    ('name = "unclosed', "an unclosed quote at column 8"),
    ("status = sucess", "unknown status 'sucess' at column 10"),
    ("model ~ '('", "missing ')' in the regular expression at column 11"),
    ("task = asr)", "expected 'and', 'or' or the end, found ')' at column 11"),
    ("", "the expression is empty"),
    ("metrics.acc > 1e999", "too large"),
    ("id = banana", "not an experiment ID"),
    ("id = true", "not an experiment ID: 'true'"),
    ("status = 3", "status is a word"),
])
def test_syntax_errors_name_the_column(text, message):
    with pytest.raises(BadInput) as caught:
        parse(text)
    assert message in str(caught.value)


def test_precedence_not_binds_tighter_than_and_than_or():
    assert parse("not a exists and b exists or c exists".replace("a ", "name ").replace("b ", "task ")
                 .replace("c ", "model ")) == Or((And((Not(Exists(("name",))), Exists(("task",)))),
                                                  Exists(("model",))))
    assert parse("params.x not in (1, 'a')") == Not(In(("params", "x"), (1, "a")))
    assert parse("status in (success, FAILED)") == In(("status",), ("SUCCESS", "FAILED"))
    assert parse("id = exp-7") == Compare(("id",), "=", 7)
    assert parse('params."learning rate" = 1e-3') == Compare(("params", "learning rate"), "=", 0.001)


# --- semantics on a fixed ledger -------------------------------------------------

LEDGER = [
    dict(name="lens base", task="asr", model="whisper-base", params={"lr": 1e-3, "layers": 6, "opt": {"name": "adam"}},
         tags=["baseline"], result=dict(status=Status.SUCCESS, metrics={"acc": 0.93, "wer": 0.12})),
    dict(name="lens large", task="asr", model="whisper-large", params={"lr": 0.001, "layers": 32, "fp16": True},
         tags=["baseline", "large"], result=dict(status=Status.FAILED, reason="CUDA out of memory")),
    dict(name="語音 probe", task="probing", model="Whisper-Base", params={"lr": 0.01, "layers": "6"},
         result=dict(status=Status.SUCCESS, metrics={"acc": 0.88})),
    dict(name="no params", task="asr", model="wav2vec2", params={}),
    dict(name="warm", task="lm", model="t5", params={"lr": 3e-4, "warmup": None, "fp16": False},
         result=dict(status=Status.SUCCESS, metrics={"acc": 0.95, "loss": float("nan")})),
]

CASES = [
    ("params.lr < 0.01", {1, 2, 5}),
    ("params.lr = 1e-3", {1, 2}),  # 0.001 and 1e-3 are one number
    ("params.lr >= 0.001 and params.lr <= 0.001", {1, 2}),
    ("params.layers = 6", {1}),  # "6" is a string, not the number 6
    ("params.layers = '6'", {3}),
    ("params.layers > 5", {1, 2}),
    ("params.missing = 1", set()),
    ("not params.missing = 1", {1, 2, 3, 4, 5}),  # a missing field never matches, so not() matches all
    ("params.lr != 0.01", {1, 2, 5}),  # != needs the field too
    ("model ~ 'whisper'", {1, 2, 3}),  # case-insensitive
    ("model ~ '^whisper-(base|tiny)$'", {1, 3}),
    ("name ~ '語音'", {3}),
    ("tags has baseline", {1, 2}),
    ("tags has large and tags has baseline", {2}),
    ("params has warmup", {5}),
    ("params.warmup exists", set()),  # null is not there
    ("params.fp16 exists", {2, 5}),
    ("params.fp16 = true", {2}),
    ("params.fp16 != true", {5}),
    ("params.opt.name = adam", {1}),
    ("status in (success, failed)", {1, 2, 3, 5}),
    ("status = QUEUED", {4}),
    ("status != success", {2, 4}),
    ("failed_reason ~ 'out of memory'", {2}),
    ("metrics.acc > 0.9 or metrics.wer < 0.2", {1, 5}),
    ("task = asr and (metrics.acc > 0.9 or status = failed)", {1, 2}),
    ("task = asr and metrics.acc > 0.9 or status = failed", {1, 2}),
    ("not (task = asr or task = lm)", {3}),
    ("not task = asr and metrics.acc exists", {3, 5}),
    ("metrics.loss > 0", set()),  # NaN is stored as "NaN": not a number to compare
    ("id >= 3 and id < exp-5", {3, 4}),
    ("id in (1, EXP-004)", {1, 4}),
    ("task in (asr, lm) and not params.lr exists", {4}),
    ("name = 'lens base'", {1}),
    ("name > 'lens'", {1, 2, 3, 4, 5}),  # strings compare as strings, by code point ("語" > "l")
    ("name < 'n'", {1, 2}),
]


@pytest.fixture(scope="module", params=["jsonl", "postgres"])
def ledger_store(request, tmp_path_factory):
    if request.param == "jsonl":
        store = open_store(str(tmp_path_factory.mktemp("query") / "experiments.jsonl"))
    else:
        schema = request.getfixturevalue("postgres_schema")
        store = open_store(schema)
    for spec in LEDGER:
        spec = dict(spec)
        result = spec.pop("result", None)
        exp = store.add(**spec)
        if result:
            store.result(exp.id, **result)
    yield store
    store.close()


def _ids(experiments) -> set[int]:
    return {int(e.id[4:]) for e in experiments}


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_query_semantics(ledger_store, text, expected):
    assert _ids(ledger_store.search(where=text)) == expected
    records = [e.to_dict() for e in ledger_store.search(limit=None)]
    assert {int(r["id"][4:]) for r in records if matches(parse(text), r)} == expected


FIXTURE_PATHS = [("name",), ("task",), ("model",), ("status",), ("tags",), ("params", "lr"), ("params", "layers"),
                 ("params", "fp16"), ("params", "opt"), ("params", "opt", "name"), ("metrics", "acc"),
                 ("metrics", "loss"), ("params", "warmup"), ("failed_reason",), ("id",)]
FIXTURE_VALUES = st.sampled_from([0.001, 1e-3, 0.01, 6, "6", 32, True, False, "asr", "adam", "whisper-base",
                                  "baseline", 0.9, 0.93, 0, "SUCCESS", "FAILED", "", "lens base", 3])


@st.composite
def fixture_leaves(draw):
    path = draw(st.sampled_from(FIXTURE_PATHS))
    kind = draw(st.sampled_from(["compare", "compare", "in", "has", "exists", "regex"]))
    value = draw(FIXTURE_VALUES)
    if path == ("id",):
        return Compare(path, draw(st.sampled_from(["=", "<", ">"])), draw(st.integers(0, 6)))
    if path == ("status",):
        return In(path, (draw(st.sampled_from([s.value for s in Status])),))
    if kind == "exists":
        return Exists(path)
    if kind == "has":
        return Has(path, value)
    if kind == "in":
        return In(path, tuple(draw(st.lists(FIXTURE_VALUES, min_size=1, max_size=3))))
    if kind == "regex":
        return Compare(path, "~", draw(st.sampled_from(["whisper", "^lens", "MEMORY", "a", "語"])))
    op = draw(st.sampled_from(["=", "!="] if isinstance(value, bool) else ["=", "!=", "<", "<=", ">", ">="]))
    return Compare(path, op, value)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(fixture_leaves(), lambda inner: st.one_of(
    st.builds(Not, inner),
    st.builds(lambda items: And(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
    st.builds(lambda items: Or(tuple(items)), st.lists(inner, min_size=2, max_size=3))), max_leaves=5))
def test_sql_agrees_with_the_reference_on_random_expressions(ledger_store, expr):
    records = [e.to_dict() for e in ledger_store.search(limit=None)]
    expected = {int(r["id"][4:]) for r in records if matches(expr, r)}
    assert _ids(ledger_store.search(where=expr)) == expected, to_text(expr)
