"""The PostgreSQL schema as ordered, named steps; each applied one is recorded in the database.

New steps go at the end and never change once released. `apply` runs the missing ones in
order, under an advisory lock so that many machines starting at once migrate only once.
"""

from __future__ import annotations

_PG_TYPES = {"text": "text", "integer": "integer"}


def add_columns(step: str, *columns: tuple[str, str]) -> str:
    """A step that adds plain columns to `experiments` (name, schema type), fills them from
    each record's JSON, and has a trigger keep them so (the stores write them too; the
    trigger covers an older expledger writing to the same database). A step names its
    columns itself, so it never changes when schema.py does; tests/test_schema.py checks
    that the steps together arrive at schema.columns()."""
    def value(name: str, kind: str, row: str) -> str:
        if kind == "text":
            return f"{row}.data ->> '{name}'"
        return (f"CASE WHEN jsonb_typeof({row}.data -> '{name}') = 'number' "
                f"THEN ({row}.data ->> '{name}')::numeric::{_PG_TYPES[kind]} END")

    function = f"experiments_columns_{step}"
    adds = ", ".join(f"ADD COLUMN {name} {_PG_TYPES[kind]}" for name, kind in columns)
    fills = ", ".join(f"{name} = {value(name, kind, 'experiments')}" for name, kind in columns)
    keeps = " ".join(f"NEW.{name} := {value(name, kind, 'NEW')};" for name, kind in columns)
    return (f"ALTER TABLE experiments {adds};\nUPDATE experiments SET {fills};\n"
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {keeps} RETURN NEW; END $$;\n"
            f"CREATE TRIGGER {function} BEFORE INSERT OR UPDATE ON experiments FOR EACH ROW "
            f"EXECUTE PROCEDURE {function}();")


MIGRATIONS: list[tuple[str, str]] = [
    ("001_experiments", """
        CREATE TABLE exp_counter (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), next_number integer NOT NULL);
        INSERT INTO exp_counter (next_number) VALUES (1);
        CREATE TABLE experiments (
            uuid uuid PRIMARY KEY,
            id text NOT NULL,
            num integer,
            rev integer NOT NULL,
            status text NOT NULL,
            task text, model text, machine text,
            priority integer NOT NULL DEFAULT 0,
            fingerprint text,
            data jsonb NOT NULL
        );
        CREATE INDEX experiments_id ON experiments (id);
        CREATE INDEX experiments_num ON experiments (num);
        CREATE INDEX experiments_status_task ON experiments (status, task);
        CREATE INDEX experiments_fingerprint ON experiments (fingerprint);
        CREATE INDEX experiments_queue ON experiments (priority DESC NULLS LAST, num) WHERE status = 'QUEUED';
        CREATE INDEX experiments_aliases ON experiments USING gin ((data -> 'aliases'));
        -- every version ever written, as the JSONL log keeps every line
        CREATE TABLE experiment_versions (
            uuid uuid NOT NULL, rev integer NOT NULL, written timestamptz NOT NULL DEFAULT now(), data jsonb NOT NULL,
            PRIMARY KEY (uuid, rev)
        );
    """),
    ("002_runs", """
        CREATE TABLE experiment_heartbeats (uuid uuid PRIMARY KEY, beat timestamptz NOT NULL);
        CREATE TABLE experiment_steps (uuid uuid NOT NULL, seq bigserial, chunk bytea NOT NULL, PRIMARY KEY (uuid, seq));
    """),
    ("016_workers_and_output", """
        -- every worker's description (host, pid, machine, GPUs, runs held), beating like a run
        CREATE TABLE exp_workers (id text PRIMARY KEY, info jsonb NOT NULL, beat timestamptz NOT NULL);
        -- the last bytes of each run's output, sent with its heartbeats (exp logs, exp show)
        CREATE TABLE experiment_output (uuid uuid PRIMARY KEY, total bigint NOT NULL, tail bytea NOT NULL,
                                        updated timestamptz NOT NULL);
    """),
    # Every field schema.py keeps in a plain column, as the SQLite index does: `--sort command`
    # reads a column, and the version rule (schema.supersedes_sql) compares `updated`.
    ("017_record_columns", add_columns(
        "017", ("name", "text"), ("command", "text"), ("created", "text"), ("started", "text"), ("completed", "text"),
        ("summary", "text"), ("failed_reason", "text"), ("workdir", "text"), ("updated", "text"))),
]


def current(connection) -> bool:
    """Whether every migration is applied: one cheap query, so a command on an up-to-date
    database pays one round trip here instead of a locked transaction."""
    from psycopg.errors import UndefinedTable

    try:  # the connection is in autocommit: a failed statement leaves nothing to roll back
        rows = connection.execute("SELECT name FROM exp_migrations").fetchall()
    except UndefinedTable:  # a new database
        return False
    return {row[0] for row in rows} >= {name for name, _ in MIGRATIONS}


def apply(connection) -> list[str]:
    """Apply the missing migrations in order; returns their names."""
    if current(connection):
        return []
    applied = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext('expledger-migrations'))")
        connection.execute("CREATE TABLE IF NOT EXISTS exp_migrations (name text PRIMARY KEY, "
                           "applied timestamptz NOT NULL DEFAULT now())")
        done = {row[0] for row in connection.execute("SELECT name FROM exp_migrations")}
        for name, sql in MIGRATIONS:
            if name not in done:
                connection.execute(sql)
                connection.execute("INSERT INTO exp_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
    return applied
