"""schema.py: the record's fields described once, and the one rule for which version wins."""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3

import pytest

from expledger import schema
from expledger.models import Experiment

from .conftest import needs_postgres

# Versions as (rev, updated): the seed tool's rev 0, ties on rev, a missing `updated`.
VERSIONS = [(0, None), (0, "2026-01-02T00:00:00.000+00:00"), (1, None), (1, "2026-01-01T00:00:00.000+00:00"),
            (1, "2026-01-02T00:00:00.000+00:00"), (2, "2026-01-01T00:00:00.000+00:00"), (3, None)]


def test_the_fields_are_the_records_fields_in_its_order():
    # A field added to models.Experiment without a line in schema.py fails here.
    assert [f.name for f in schema.FIELDS] == [f.name for f in dataclasses.fields(Experiment) if f.name != "extra"]


def test_every_list_of_fields_is_derived_from_the_schema():
    from expledger import query
    from expledger.store import base, index

    assert set(query.TOP_FIELDS) | set(query.NESTED_FIELDS) == {f.name for f in schema.FIELDS if f.queryable}
    assert set(base.SORTABLE) <= set(query.TOP_FIELDS)
    assert {"command", "summary", "workdir", "gpus", "uuid"} <= set(base.SORTABLE)
    assert "tags" not in base.SORTABLE  # a list has no order
    assert set(index.SCALAR_FIELDS) | set(index.JSON_FIELDS) <= set(query.TOP_FIELDS) | set(query.NESTED_FIELDS)
    assert index._COMPILER.columns == schema.column_map()


def test_a_record_row_holds_its_columns_in_order():
    exp = Experiment(id="EXP-012", name="n", task="asr", params={"lr": 0.1}, summary=7, uuid="u", rev=3)
    row = dict(zip([name for name, _ in schema.columns()], schema.row(exp.to_dict())))
    assert (row["id"], row["num"], row["rev"], row["status"]) == ("EXP-012", 12, 3, "QUEUED")
    assert row["fingerprint"] == exp.fingerprint and row["priority"] == 0
    assert row["summary"] == "7"  # a text column holds text: another tool's number as its JSON


def _sql_supersedes(db) -> dict:
    """What supersedes_sql says for every pair of VERSIONS, run by `db`."""
    db.execute("CREATE TEMP TABLE v (rev integer, updated text)")
    for rev, updated in VERSIONS:
        db.execute("INSERT INTO v VALUES (%s, %s)" if hasattr(db, "pgconn") else "INSERT INTO v VALUES (?, ?)",
                   (rev, updated))
    rows = db.execute(f"SELECT new.rev, new.updated, old.rev, old.updated, {schema.supersedes_sql('new', 'old')} "
                      "FROM v AS new, v AS old").fetchall()
    return {((a, b), (c, d)): bool(answer) for a, b, c, d, answer in rows}


def _python_supersedes() -> dict:
    return {(new, old): schema.supersedes(schema.version(*new), schema.version(*old))
            for new, old in itertools.product(VERSIONS, VERSIONS)}


def test_the_version_rule_in_sql_is_the_python_rule_on_sqlite():
    assert _sql_supersedes(sqlite3.connect(":memory:")) == _python_supersedes()


@needs_postgres
def test_the_version_rule_in_sql_is_the_python_rule_on_postgres(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:
        assert _sql_supersedes(db) == _python_supersedes()


def test_the_version_rule():
    v = schema.version
    assert schema.supersedes(v(2, None), v(1, "2030-01-01"))  # rev first
    assert schema.supersedes(v(1, "2026-01-02"), v(1, "2026-01-01"))  # then updated
    assert not schema.supersedes(v(1, "2026-01-01"), v(1, "2026-01-01"))  # the same version: nothing to do
    assert not schema.supersedes(v(1, "2026-01-01"), v(2, None))  # an older one never replaces a newer
    assert schema.supersedes(v(0, None), v(5, "2030-01-01"))  # the seed tool's records have no version


@needs_postgres
def test_the_migrations_arrive_at_the_schemas_columns_and_fill_them_on_an_old_database(postgres_url):
    import psycopg
    from psycopg.types.json import Jsonb

    from expledger.store import migrations

    old_steps = [step for step in migrations.MIGRATIONS if step[0] < "017"]
    with psycopg.connect(postgres_url, autocommit=True) as db:
        saved = migrations.MIGRATIONS
        migrations.MIGRATIONS = old_steps
        try:
            migrations.apply(db)  # a database as the last release left it, holding a record
        finally:
            migrations.MIGRATIONS = saved
        record = Experiment(id="EXP-001", name="old", command="python a.py", uuid="5f0e8c8a-0c1b-4a8e-9d49-1f2d3c4b5a69",
                            rev=2, updated="2026-01-01T00:00:00.000+00:00").to_dict()
        db.execute("INSERT INTO experiments (uuid, id, num, rev, status, data) VALUES (%s, 'EXP-001', 1, 2, "
                   "'QUEUED', %s)", (record["uuid"], Jsonb(record)))
        assert "017_record_columns" in migrations.apply(db)
        found = db.execute("SELECT column_name, data_type FROM information_schema.columns WHERE "
                           "table_name = 'experiments' AND table_schema = current_schema()").fetchall()
        assert dict(found) == {**{name: {"text": "text", "integer": "integer", "uuid": "uuid"}[kind]
                                      for name, kind in schema.columns()}, "data": "jsonb"}
        assert db.execute("SELECT name, command, updated FROM experiments").fetchone() == (
            "old", "python a.py", "2026-01-01T00:00:00.000+00:00")
        # an older expledger, which knows no such columns, still leaves them right (the trigger)
        db.execute("UPDATE experiments SET data = data || '{\"command\": \"python b.py\"}'")
        assert db.execute("SELECT command FROM experiments").fetchone() == ("python b.py",)


def test_schema_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, expledger.schema; print(sorted({'sqlite3', 'psycopg', 'json'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", ["command", "summary", "-workdir", "gpus", "uuid", "runner.host"])
def test_sort_takes_every_sortable_field(name):
    from expledger.store import Search

    assert Search(sort=name).sort_keys()
