"""A third backend, to show that one is small: a ledger kept in one SQLite file (`sqlite:PATH`).

Not shipped: the contract suite (tests/store/test_contract.py) runs on it beside JSONL and
PostgreSQL, and docs/writing-a-store.md walks through it. Everything a backend shares with
the others comes from the library: the columns and the rows written to them
(expledger.schema.columns/row), the version rule for copies and merges
(schema.supersedes_sql), `--where` and `--sort` (store.sql.Compiler with the SQLite dialect),
the checks at the door (models.admit) and every command's meaning (store.base.Store).
What is left is the storage itself.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Callable
from contextlib import contextmanager

from expledger import schema
from expledger.models import Experiment, format_id
from expledger.store.base import Search, Store
from expledger.store.sql import Compiler, SQLiteDialect, regexp

_NAMES = [name for name, _ in schema.columns()]
_ROW = ", ".join([*_NAMES, "data"])
_INSERT = f"INSERT INTO experiments ({_ROW}) VALUES ({', '.join('?' * (len(_NAMES) + 1))})"
_SET = ", ".join(f"{name} = excluded.{name}" for name in [*_NAMES[1:], "data"])
_PUT = (f"{_INSERT} ON CONFLICT (uuid) DO UPDATE SET {_SET} "
        f"WHERE {schema.supersedes_sql('excluded', 'experiments')} AND experiments.data IS NOT excluded.data")
_COMPILER = Compiler(SQLiteDialect(scalar_columns=set(_NAMES)), columns=schema.column_map())
_TABLES = f"""
CREATE TABLE IF NOT EXISTS experiments ({", ".join(_NAMES)}, data TEXT NOT NULL, PRIMARY KEY (uuid));
CREATE INDEX IF NOT EXISTS experiments_id ON experiments (id);
CREATE INDEX IF NOT EXISTS experiments_num ON experiments (num);
CREATE TABLE IF NOT EXISTS heartbeats (uuid TEXT PRIMARY KEY, beat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS steps (seq INTEGER PRIMARY KEY, uuid TEXT NOT NULL, chunk BLOB NOT NULL);
"""


class SQLiteStore(Store):
    """A ledger in one SQLite database file; each change is one IMMEDIATE transaction."""

    def __init__(self, url: str, *, now=None):
        super().__init__(url, now=now)
        path = url.removeprefix("sqlite:").removeprefix("//")
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.create_function("regexp", 2, regexp, deterministic=True)
        self.db.executescript(_TABLES)

    @contextmanager
    def _transaction(self):
        """One writer at a time: a change reads and writes inside it (compare-and-set for free)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _row(self, exp: Experiment) -> tuple:
        data = exp.to_dict()
        return (*schema.row(data), exp.to_line().decode())

    # --- the core ----------------------------------------------------------------------

    def _create(self, record: Experiment) -> Experiment:
        with self._transaction():
            number = self.db.execute("SELECT coalesce(max(num), 0) + 1 FROM experiments").fetchone()[0]
            created = dataclasses.replace(record, id=format_id(number), uuid=str(uuidlib.uuid4()), rev=1,
                                          updated=record.created)
            self.db.execute(_INSERT, self._row(created))
        return created

    def _write_if(self, exp: Experiment, expected_rev: int) -> bool:
        # One statement is atomic: the compare-and-set is its WHERE (Store.modify retries on False).
        return self.db.execute(f"UPDATE experiments SET ({_ROW}) = ({', '.join('?' * (len(_NAMES) + 1))}) "
                               "WHERE uuid = ? AND rev = ?", (*self._row(exp), exp.uuid, expected_rev)).rowcount == 1

    def _lookup(self, exp_id: str) -> Experiment | None:
        row = self.db.execute("SELECT data FROM experiments WHERE id = ? ORDER BY num LIMIT 1", (exp_id,)).fetchone()
        if row is None:  # an ID it had in a ledger merged into this one
            row = self.db.execute("SELECT data FROM experiments WHERE EXISTS (SELECT 1 FROM "
                                  "json_each(data, '$.aliases') WHERE value = ?) ORDER BY num LIMIT 1",
                                  (exp_id,)).fetchone()
        return Experiment.from_line(row[0]) if row else None

    def _search(self, search: Search) -> tuple[list[Experiment], int]:
        where, args = _COMPILER.where(search)
        order, order_args = _COMPILER.order(search)
        rows = self.db.execute(f"SELECT data FROM experiments WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                               [*args, *order_args, -1 if search.limit is None else search.limit, search.offset])
        total = self.db.execute(f"SELECT count(*) FROM experiments WHERE {where}", args).fetchone()[0]
        return [Experiment.from_line(data) for (data,) in rows], total

    def _claim(self, search: Search, change: Callable[[Experiment], Experiment]) -> Experiment | None:
        with self._transaction():
            found, _ = self._search(dataclasses.replace(search, limit=1))
            if not found:
                return None
            changed = change(found[0])
            self.db.execute(f"UPDATE experiments SET ({_ROW}) = ({', '.join('?' * (len(_NAMES) + 1))}) "
                            "WHERE uuid = ?", (*self._row(changed), changed.uuid))
        return changed

    def _put_many(self, records: list[Experiment]) -> list[bool]:
        with self._transaction():
            return [self.db.execute(_PUT, self._row(exp)).rowcount == 1 for exp in records]

    def doctor(self, *, fix: bool = False) -> dict:
        from expledger.store.checks import record_problems

        experiments, _ = self._search(Search(limit=None, sort="id"))
        problems = record_problems(experiments)
        by_status: dict[str, int] = {}
        for exp in experiments:
            by_status[exp.status.value] = by_status.get(exp.status.value, 0) + 1
        return {"store": self.display_url, "path": None, "lines": None, "experiments": len(experiments),
                "by_status": by_status, "migrations": [], "problems": problems, "quarantine": None,
                "healthy": not any(p["severity"] == "error" for p in problems)}

    # --- runs: heartbeats and step metrics ------------------------------------------------

    def heartbeat(self, exp: Experiment) -> None:
        self.db.execute("INSERT OR REPLACE INTO heartbeats VALUES (?, ?)", (exp.uuid, time.time()))

    def heartbeat_age(self, exp: Experiment) -> float | None:
        row = self.db.execute("SELECT beat FROM heartbeats WHERE uuid = ?", (exp.uuid,)).fetchone()
        return time.time() - row[0] if row else None

    def append_steps(self, exp: Experiment, series: dict) -> None:
        from expledger.steps import encode

        self.db.execute("INSERT INTO steps (uuid, chunk) VALUES (?, ?)", (exp.uuid, encode(series)))

    def read_steps(self, exp: Experiment, *, arrays: bool = False) -> dict:
        from expledger.steps import decode

        chunks = self.db.execute("SELECT chunk FROM steps WHERE uuid = ? ORDER BY seq", (exp.uuid,))
        return decode(b"".join(chunk for (chunk,) in chunks), arrays=arrays)

    def close(self) -> None:
        self.db.close()
