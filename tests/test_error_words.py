"""Library errors speak to a Python caller (keywords: `force=True`, `reason="…"`) and say which
argument they are about; the CLI shows the same message with its flags (`--force`)."""

from __future__ import annotations

import pytest

from expledger.errors import AlreadyTried, BadInput, ExpledgerError, IllegalTransition, StoreError
from expledger.store import open_store


@pytest.fixture
def store(tmp_path):
    with open_store(str(tmp_path / "memory" / "experiments" / "experiments.jsonl")) as opened:
        yield opened


def _raised(call, kind=ExpledgerError) -> ExpledgerError:
    with pytest.raises(kind) as caught:
        call()
    return caught.value


def _python_words(err: ExpledgerError, *keywords: str) -> None:
    assert "--" not in str(err), str(err)
    for word in keywords:
        assert word in str(err), str(err)


def test_a_second_result_names_the_force_keyword(store):
    exp = store.add(name="x")
    store.result(exp.id, status="success")
    err = _raised(lambda: store.result(exp.id, status="failed", reason="again"), IllegalTransition)
    _python_words(err, "pass force=True to replace it")
    assert err.argument == "force"
    assert "pass --force to replace it" in err.for_cli()


def test_a_failure_without_a_reason_names_reason_and_summary(store):
    exp = store.add(name="x")
    err = _raised(lambda: store.result(exp.id, status="failed"), BadInput)
    _python_words(err, 'pass reason="…" or summary="…"')
    assert [a.name for a in err.arguments] == ["reason", "summary"]
    assert err.for_cli().endswith('pass --reason "…" or --summary "…"')


@pytest.mark.parametrize("call, argument, python, cli", [
    (lambda s: s.result(s.add(name="x").id, status="success", reason="r"), "reason", "reason is for failed",
     "--reason is for failed"),
    (lambda s: s.add(name=" "), "name", 'pass name="…"', 'pass --name "…"'),
    (lambda s: s.add(name="x", gpus=0), "gpus", "gpus must be a whole number", "--gpus must be a whole number"),
    (lambda s: s.add(name="x", status="success"), "result", "record results with Store.result()",
     "record results with `exp result`"),
    (lambda s: s.result(s.add(name="x").id, status="success", metrics={"acc": "high"}), "summary",
     "(put words in summary)", "(put words in --summary)"),
    (lambda s: s.search(where="params.lr <"), "where", "where: expected a value", "--where: expected a value"),
    (lambda s: s.search(where="name ~ '('"), "where", "where: ", "--where: "),
])
def test_bad_arguments_are_named_by_keyword(store, call, argument, python, cli):
    err = _raised(lambda: call(store), BadInput)
    _python_words(err, python)
    assert err.argument == argument
    assert cli in err.for_cli()


def test_export_names_its_own_keywords(store):
    from expledger.ops.export import export

    err = _raised(lambda: export(store, metrics=["params.lr"]), BadInput)
    _python_words(err, "metrics: export columns are metrics")
    assert err.for_cli().startswith("--columns: ")
    err = _raised(lambda: export(store, group_by=["colour"]), BadInput)
    _python_words(err, "group_by: unknown field 'colour'")
    assert err.for_cli().startswith("--group-by: ")


def test_an_unwritable_ledger_points_at_open_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with open_store(str(blocker / "experiments.jsonl")) as store:
        err = _raised(lambda: store.add(name="x"), StoreError)
    _python_words(err, "open_store(PATH)", "EXP_STORE")
    assert "pass --store PATH or set EXP_STORE" in err.for_cli()


def test_unless_tried_names_the_keyword(store):
    from expledger.ops.record import add

    exp = store.add(name="a", task="t", params={"lr": 1})
    store.result(exp.id, status="success")
    err = _raised(lambda: add(store, name="b", task="t", params={"lr": 1}, unless_tried=True), AlreadyTried)
    _python_words(err, "drop unless_tried=True")
    assert "exp show gives its results, or drop --unless-tried" in err.for_cli()


def test_braces_in_values_stay_as_they_are(store):
    err = _raised(lambda: store.add(name="x", gpus={"a": 1}), BadInput)  # type: ignore[arg-type]
    assert "{'a': 1}" in str(err) and "{'a': 1}" in err.for_cli()


@pytest.mark.parametrize("args, flag", [
    (["result", "1", "--status", "failed", "--reason", "x"], "pass --force to replace it"),
    (["result", "1", "--status", "failed"], 'pass --reason "…" or --summary "…"'),
    (["add", "--name", " "], 'pass --name "…"'),
    (["list", "--where", "params.lr <"], "--where: expected a value"),
    (["export", "--columns", "params.lr"], "--columns: export columns are metrics"),
    (["add", "--name", "x", "--store", "/etc/passwd/ledger.jsonl"], "pass --store PATH or set EXP_STORE"),
])
def test_the_cli_shows_the_flags(exp, args, flag):
    assert exp("add", "--name", "done").code == 0
    assert exp("result", "1", "--status", "success").code == 0
    result = exp(*args)
    assert result.code == 2
    assert flag in result.err and "=True" not in result.err, result.err
