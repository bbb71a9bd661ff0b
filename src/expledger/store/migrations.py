"""The PostgreSQL schema as ordered, named steps; each applied one is recorded in the database.

New steps go at the end and never change once released. `apply` runs the missing ones in
order, under an advisory lock so that many machines starting at once migrate only once.
"""

from __future__ import annotations

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
