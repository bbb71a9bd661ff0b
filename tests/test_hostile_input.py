"""Input built to break `exp` (issue 9, cases 6-8): limits, ASCII IDs, inert export.

Each case is bad input: exit 2 with one line naming the problem, no traceback, the ledger
byte-identical; the same on JSONL and PostgreSQL, since the parser refuses it first.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from expledger import query
from expledger.store import open_store

HUGE = "1" * 4301  # past Python's int-from-text limit

CASES = {
    "a huge integer in --params": (["add", "--name", "x", "--params", f'{{"a": {HUGE}}}'], "too long"),
    "a huge integer in --metrics": (["result", "1", "--status", "success", "--metrics", f'{{"a": {HUGE}}}'],
                                    "too long"),
    "a long float in --params": (["add", "--name", "x", "--params", f'{{"a": 0.{HUGE}}}'], "too long"),
    "a huge integer in --where": (["list", "--where", f"params.a < {HUGE}"], "too long"),
    "500 nested parentheses": (["list", "--where", "(" * 500 + "name = x" + ")" * 500], "nested too deeply"),
    "1000 nots": (["list", "--where", "not " * 1000 + "name = x"], "nested too deeply"),
    "200 nots": (["list", "--where", "not " * 200 + "name = x"], "nested too deeply"),
    "5000 ors": (["list", "--where", " or ".join(["name = x"] * 5000)], "too long"),
    "500 ors": (["list", "--where", " or ".join(["name = x"] * 500)], "too many comparisons"),
    "a long in-list": (["list", "--where", f"params.a in ({', '.join(map(str, range(1000)))})"], "too many"),
    "an arabic-indic digit as ID": (["show", "\u0661"], "not an experiment ID"),
    "a fullwidth digit in an ID": (["show", "EXP-\uff11"], "not an experiment ID"),
    "a unicode digit in --where id": (["list", "--where", "id = \u0661"], "not an experiment ID"),
}


@pytest.fixture
def seeded(exp, ledger):
    assert exp("add", "--name", "queued one").code == 0
    return ledger.read_bytes()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(case, exp, ledger, seeded):
    args, message = CASES[case]
    result = exp(*args)
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("error: "), result.err[:300]
    assert message in result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert ledger.read_bytes() == seeded


@pytest.mark.parametrize("text", [
    "not " * (query.MAX_DEPTH - 1) + "name = x",
    "(" * (query.MAX_DEPTH - 1) + "name = x" + ")" * (query.MAX_DEPTH - 1),
    " or ".join(f"params.a = {n}" for n in range(query.MAX_TERMS)),
    " and ".join(["not (name = x or params.a in (1, 2))"] * (query.MAX_TERMS // 3)),
])
def test_the_largest_expressions_allowed_run_on_every_store(text, store_url):
    with open_store(store_url) as store:
        store.add(name="y", params={"a": 1})
        found = store.search(where=text)
    assert len(found) in (0, 1)


def test_ascii_ids_still_resolve(exp):
    assert exp("add", "--name", "one").code == 0
    for spelling in ("1", "EXP-001", "exp-1", " exp1 "):
        assert exp("show", spelling).code == 0


def test_a_run_is_not_registered_when_its_folder_cannot_be_made(exp, ledger):
    assert exp("add", "--name", "first").code == 0
    (ledger.parent / "runs").write_text("a file where the run folders go")
    before = ledger.read_bytes()
    result = exp("run", "--name", "second", "--", "echo", "hi")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "run folder" in result.err
    result = exp("run", "--id", "1", "--", "echo", "hi")
    assert result.code == 2 and "run folder" in result.err
    assert ledger.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the file case above covers it")
def test_a_run_is_not_registered_in_a_read_only_ledger_folder(exp, ledger):
    assert exp("add", "--name", "first").code == 0
    before = ledger.read_bytes()
    folder = ledger.parent
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = exp("run", "--name", "second", "--", "echo", "hi")
    finally:
        folder.chmod(0o700)
    assert result.code == 2 and "run folder" in result.err
    assert ledger.read_bytes() == before


HOSTILE = "t\x1b]0;title\x07|*x*`y`\\input{/etc/passwd}$\x9b2J=cmd"


@pytest.mark.parametrize("fmt", ["md", "csv", "latex"])
def test_export_renders_user_text_inert(fmt, exp, tmp_path):
    for seed, acc in ((1, 0.5), (2, 0.7)):
        params = json.dumps({"seed": seed, HOSTILE: 1})
        assert exp("add", "--name", "n", "--task", HOSTILE, "--params", params).code == 0
        assert exp("result", str(seed), "--status", "success", "--metrics", json.dumps({HOSTILE: acc})).code == 0
    assert exp("add", "--name", "n", "--task", "plain", "--params", '{"seed": 3}').code == 0
    assert exp("result", "3", "--status", "success", "--metrics", '{"acc": 1}').code == 0
    result = exp("export", "--format", fmt, "--group-by", "task")
    assert result.code == 0, result.err
    text = result.out
    for char in "\x1b\x07\x9b":
        assert char not in text
    assert "\\x1b" in text or "textbackslash{}x1b" in text
    if fmt == "md":
        assert "\\|" in text and "\\*x\\*" in text and "\\`y\\`" in text
    if fmt == "latex":
        assert "\\input" not in text and "\\textbackslash{}input\\{/etc/passwd\\}" in text
    if fmt == "csv":
        import csv
        import io

        rows = list(csv.reader(io.StringIO(text)))
        assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)

