"""The team store: one PostgreSQL database shared by every machine (`postgresql://…`).

Same contract as the JSONL store. IDs come from a counter row (gap-free, one writer at a
time); every change is a compare-and-set (`UPDATE … WHERE uuid = … AND rev = …`), retried on
conflict by store/base.py; workers claim with `FOR UPDATE SKIP LOCKED`, so each queued experiment goes to
exactly one of them. Each record is kept whole as jsonb (the same dict as a JSONL line),
every version also in `experiment_versions`; the schema is migrated on connect
(store/migrations.py). Needs `pip install 'expledger[postgres]'` (psycopg 3).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import uuid as uuidlib
from collections.abc import Callable

from .. import schema
from ..errors import BadInput, MissingExtra, StoreError
from ..log import warn as log_warning
from ..models import Experiment, format_id, id_number
from ..redact import raw_at_in_password, redact
from . import migrations
from .base import Search, Store
from .sql import Compiler, PostgresDialect

_COMPILER = Compiler(PostgresDialect(), columns=schema.column_map())
# Each row: the plain columns schema.py describes, then the whole record as jsonb.
_NAMES = [name for name, _ in schema.columns()]
_ROW = ", ".join([*_NAMES, "data"])
_PLACES = ", ".join(["%s"] * (len(_NAMES) + 1))
_INSERT = f"INSERT INTO experiments ({_ROW}) VALUES ({_PLACES})"
_UPDATE = f"UPDATE experiments SET {', '.join(f'{c} = %s' for c in [*_NAMES[1:], 'data'])} WHERE uuid = %s AND rev = %s"
# A record from elsewhere (copy, merge) replaces the held one by the one version rule.
_PUT = (f"{_INSERT} ON CONFLICT (uuid) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in [*_NAMES[1:], 'data'])} "
        f"WHERE {schema.supersedes_sql('excluded', 'experiments')} AND experiments.data IS DISTINCT FROM excluded.data")
_connected_before = False  # this process has reached a server: later connects wait out an outage


def _sql(text: str) -> str:
    """The compiler's `?` placeholders as psycopg's `%s`."""
    return text.replace("%", "%%").replace("?", "%s")


class PostgresStore(Store):
    """A ledger in a PostgreSQL database (the schema is created and migrated on connect)."""

    def __init__(self, url: str, *, now=None, warn=None):
        super().__init__(url, now=now)
        self.warn = warn or log_warning
        try:
            import psycopg
            from psycopg.types.json import Jsonb
        except ImportError:
            raise MissingExtra("the PostgreSQL store needs psycopg: pip install 'expledger[postgres]'") from None
        self._Jsonb = Jsonb
        if raw_at_in_password(url):  # libpq cuts at the first '@' and would show the rest as the host
            raise BadInput(f"the password in {redact(url)} holds a raw '@': write it as %40")
        self._psycopg = psycopg
        self._errors = psycopg.Error
        self._lost_warned = False
        self.db = None
        if not _connected_before:  # a command: say at once that the database cannot be reached
            self._connect()
        self._again(self._migrate)  # a worker or runner waits out an outage here too

    def _migrate(self, retry: bool) -> None:
        with self._guard():
            migrations.apply(self.db)

    # --- the connection, and surviving its loss ------------------------------------

    def _connect(self) -> None:
        global _connected_before
        try:
            self.db = self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as err:
            raise _ConnectionLost(redact(f"cannot connect to {self.url}: {' '.join(str(err).split())}")) from None
        _connected_before = True

    def _again(self, operation):
        """Run `operation(retry)`; when the connection is lost (a server restart, a network
        blip), reconnect with backoff and run it again with retry=True, for up to
        EXP_RECONNECT seconds (default 300). Each operation is safe to run again."""
        deadline, delay, retry = None, 0.2, False
        while True:
            try:
                if self.db is None or self.db.closed:
                    self._connect()
                return operation(retry)
            except _ConnectionLost as err:
                now = time.monotonic()
                deadline = deadline or now + reconnect_seconds()
                if now >= deadline:
                    raise StoreError(f"{err}; gave up after {reconnect_seconds():.0f} s of retrying "
                                     "(EXP_RECONNECT)") from None
                if not self._lost_warned:
                    self._lost_warned = True
                    self.warn(f"{err}; reconnecting for up to {reconnect_seconds():.0f} s")
                if self.db is not None:
                    with contextlib.suppress(Exception):
                        self.db.close()
                    self.db = None
                time.sleep(min(delay, max(0.0, deadline - now)))
                delay, retry = min(delay * 2, 5.0), True

    # --- core ----------------------------------------------------------------------

    def _values(self, exp: Experiment) -> tuple:
        data = exp.to_dict()  # text as stored (models.json_safe), so columns and jsonb agree
        return (*schema.row(data), self._Jsonb(data))

    def _insert(self, exp: Experiment) -> None:
        self.db.execute(_INSERT, self._values(exp))
        self._version(exp)

    def _version(self, exp: Experiment) -> None:
        self.db.execute("INSERT INTO experiment_versions (uuid, rev, data) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING", (exp.uuid, exp.rev, self._Jsonb(exp.to_dict())))

    def _update(self, exp: Experiment, expected_rev: int) -> bool:
        """Compare-and-set: write only if the stored rev is still the one read."""
        cursor = self.db.execute(_UPDATE, (*self._values(exp)[1:], exp.uuid, expected_rev))
        if cursor.rowcount != 1:
            return False
        self._version(exp)
        return True

    def _create(self, record: Experiment) -> Experiment:
        identity = str(uuidlib.uuid4())  # chosen once: a retry finds a create that did commit
        return self._again(lambda retry: self._create_once(record, identity, retry))

    def _create_once(self, record: Experiment, identity: str, retry: bool) -> Experiment:
        if retry and (done := self._by_uuid(identity)) is not None:
            return done
        with self._guard(), self.db.transaction():
            number = self.db.execute("UPDATE exp_counter SET next_number = next_number + 1 "
                                     "RETURNING next_number - 1").fetchone()[0]
            taken = self.db.execute("SELECT coalesce(max(num), 0) FROM experiments").fetchone()[0]
            if number <= taken:  # the counter fell behind (a copy brought higher IDs): catch up
                number = taken + 1
                self.db.execute("UPDATE exp_counter SET next_number = %s", (number + 1,))
            created = dataclasses.replace(record, id=format_id(number), uuid=identity, rev=1,
                                          updated=record.created)
            self._insert(created)
        return created

    def _write_if(self, exp: Experiment, expected_rev: int) -> bool:
        def write(retry: bool) -> bool:
            if retry:  # did the write go through before the connection was lost? then it is done
                held = self._by_uuid(exp.uuid)
                if held is not None and held.to_dict() == exp.to_dict():
                    return True
            with self._guard(), self.db.transaction():
                return self._update(exp, expected_rev)

        return self._again(write)

    def _claim(self, search: Search, change: Callable[[Experiment], Experiment]) -> Experiment | None:
        where, args = _COMPILER.where(search)
        order, order_args = _COMPILER.order(search)
        attempted: list[Experiment] = []

        def claim(retry: bool) -> Experiment | None:
            if retry and attempted:  # did the lost claim commit? then it is ours, never claimed twice
                held = self._by_uuid(attempted[-1].uuid)
                if held is not None and held.to_dict() == attempted[-1].to_dict():
                    return held
            refused: list = []  # rows that fail the checks at the door: passed over, never run
            with self._guard(), self.db.transaction():
                while True:
                    row = self.db.execute(_sql(f"SELECT uuid, data FROM experiments WHERE {where} AND NOT (uuid = ANY(?)) "
                                               f"ORDER BY {order} LIMIT 1 FOR UPDATE SKIP LOCKED"),
                                          [*args, refused, *order_args]).fetchone()
                    if row is None:
                        return None
                    found = _admitted([row[1]])
                    if found:
                        break
                    refused.append(row[0])
                current = found[0]
                changed = change(current)
                attempted.append(changed)
                if not self._update(changed, current.rev):  # cannot happen under FOR UPDATE
                    raise StoreError(f"{current.id} changed while locked")
            return changed

        return self._again(claim)

    def _put_many(self, records: list[Experiment]) -> list[bool]:
        """One transaction: all or nothing (and safe to run again)."""
        return self._again(lambda retry: self._put_many_once(records))

    def _put_many_once(self, records: list[Experiment]) -> list[bool]:
        written = []
        with self._guard(), self.db.transaction():
            for exp in records:
                written.append(self.db.execute(_PUT, self._values(exp)).rowcount == 1)
                if written[-1]:
                    self._version(exp)
            self.db.execute("UPDATE exp_counter SET next_number = greatest(next_number, %s)",
                            (max((id_number(exp.id) or 0) for exp in records) + 1,))
        return written

    def _lookup(self, exp_id: str) -> Experiment | None:
        return self._again(lambda retry: self._lookup_once(exp_id))

    def _by_uuid(self, uuid: str) -> Experiment | None:
        with self._guard():
            row = self.db.execute("SELECT data FROM experiments WHERE uuid = %s", (uuid,)).fetchone()
        return Experiment.from_dict(row[0]) if row else None

    def _lookup_once(self, exp_id: str) -> Experiment | None:
        with self._guard():
            row = self.db.execute("SELECT data FROM experiments WHERE id = %s ORDER BY num LIMIT 1", (exp_id,)).fetchone()
            if row is None:  # an ID it had in a ledger merged into this one
                row = self.db.execute("SELECT data FROM experiments WHERE data -> 'aliases' @> %s ORDER BY num "
                                      "LIMIT 1", (self._Jsonb([exp_id]),)).fetchone()
        found = _admitted([row[0]]) if row else []
        return found[0] if found else None

    def _search(self, search: Search) -> tuple[list[Experiment], int]:
        return self._again(lambda retry: self._search_once(search))

    def _search_once(self, search: Search) -> tuple[list[Experiment], int]:
        where, args = _COMPILER.where(search)
        order, order_args = _COMPILER.order(search)
        with self._guard():
            page = "" if search.limit is None else f" LIMIT {int(search.limit)}"
            page += f" OFFSET {int(search.offset)}" if search.offset else ""
            rows = self.db.execute(_sql(f"SELECT data FROM experiments WHERE {where} ORDER BY {order}{page}"),
                                   [*args, *order_args]).fetchall()
            if not search.offset and (search.limit is None or len(rows) < search.limit):
                total = len(rows)  # all of them came back: no second round trip to count
            else:
                total = self.db.execute(_sql(f"SELECT count(*) FROM experiments WHERE {where}"), args).fetchone()[0]
        return _admitted(data for (data,) in rows), total

    def _guard(self):
        """Database errors as one-line StoreErrors."""
        return _DatabaseErrors(self)

    # --- runs ------------------------------------------------------------------------

    def heartbeat(self, exp: Experiment) -> None:
        self._again(lambda retry: self._heartbeat_once(exp))

    def _heartbeat_once(self, exp: Experiment) -> None:
        with self._guard():
            self.db.execute("INSERT INTO experiment_heartbeats (uuid, beat) VALUES (%s, now()) "
                            "ON CONFLICT (uuid) DO UPDATE SET beat = now()", (exp.uuid,))

    def heartbeat_age(self, exp: Experiment) -> float | None:
        return self._again(lambda retry: self._heartbeat_age_once(exp))

    def _heartbeat_age_once(self, exp: Experiment) -> float | None:
        with self._guard():
            row = self.db.execute("SELECT extract(epoch FROM now() - beat) FROM experiment_heartbeats "
                                  "WHERE uuid = %s", (exp.uuid,)).fetchone()
        return float(row[0]) if row else None

    def put_output(self, exp: Experiment, total: int, tail: bytes) -> None:
        with self._guard():
            self.db.execute("INSERT INTO experiment_output (uuid, total, tail, updated) VALUES (%s, %s, %s, now()) "
                            "ON CONFLICT (uuid) DO UPDATE SET total = excluded.total, tail = excluded.tail, "
                            "updated = now()", (exp.uuid, total, tail))

    def read_output(self, exp: Experiment) -> tuple[int, bytes] | None:
        with self._guard():
            row = self.db.execute("SELECT total, tail FROM experiment_output WHERE uuid = %s", (exp.uuid,)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def beat_worker(self, info: dict) -> None:
        with self._guard():
            self.db.execute("INSERT INTO exp_workers (id, info, beat) VALUES (%s, %s, now()) ON CONFLICT (id) "
                            "DO UPDATE SET info = excluded.info, beat = now()", (info["id"], self._Jsonb(info)))

    def _worker_rows(self) -> list[tuple[dict, float]]:
        with self._guard():
            self.db.execute("DELETE FROM exp_workers WHERE beat < now() - interval '1 day'")
            rows = self.db.execute("SELECT info, extract(epoch FROM now() - beat) FROM exp_workers").fetchall()
        return [(info, float(age)) for info, age in rows]

    def append_steps(self, exp: Experiment, series: dict) -> None:
        from ..steps import encode

        chunk = encode(series)

        def append(retry: bool) -> None:
            with self._guard():
                self.db.execute("INSERT INTO experiment_steps (uuid, chunk) VALUES (%s, %s)", (exp.uuid, chunk))

        self._again(append)

    def read_steps(self, exp: Experiment, *, arrays: bool = False) -> dict[str, tuple[list, list]]:
        from ..steps import decode

        def read(retry: bool) -> list:
            with self._guard():
                return self.db.execute("SELECT chunk FROM experiment_steps WHERE uuid = %s ORDER BY seq",
                                       (exp.uuid,)).fetchall()

        chunks = self._again(read)
        return decode(b"".join(bytes(chunk) for (chunk,) in chunks), warn=lambda text: self.warn(f"{exp.id}: {text}"),
                      arrays=arrays)

    def last_steps(self, exp: Experiment) -> dict[str, float]:
        """A hundred flushes at a time, so a long series is never held whole."""
        from ..steps import last_of

        last: dict[str, float] = {}
        after = -1

        def read(retry: bool) -> list:
            with self._guard():
                return self.db.execute("SELECT seq, chunk FROM experiment_steps WHERE uuid = %s AND seq > %s "
                                       "ORDER BY seq LIMIT 100", (exp.uuid, after)).fetchall()

        while True:
            rows = self._again(read)
            for _seq, chunk in rows:
                last.update(last_of(bytes(chunk)))
            if len(rows) < 100:
                return last
            after = rows[-1][0]

    # --- doctor ----------------------------------------------------------------------

    def doctor(self, *, fix: bool = False) -> dict:
        from ..files import problems as file_problems
        from .checks import problem, record_problems

        experiments, _ = self._search(Search(limit=None, sort="id"))
        problems = record_problems(experiments) + file_problems(self, experiments)
        if fix and any(p["kind"] == "duplicate_id" for p in problems):
            from ..transfer import reconcile

            self._put_many([exp for exp, _ in reconcile(experiments, [])[0]])
            for found in problems:
                if found["kind"] == "duplicate_id":
                    found["fixed"] = True
        with self._guard():
            counter = self.db.execute("SELECT next_number FROM exp_counter").fetchone()[0]
            highest = self.db.execute("SELECT coalesce(max(num), 0) FROM experiments").fetchone()[0]
            if counter <= highest:
                behind = problem("counter_behind", f"the ID counter ({counter}) is not above the highest ID "
                                                   f"({highest})", fixable=True)
                if fix:
                    self.db.execute("UPDATE exp_counter SET next_number = %s", (highest + 1,))
                    behind["fixed"] = True
                problems.append(behind)
            applied = [name for (name,) in self.db.execute("SELECT name FROM exp_migrations ORDER BY name")]
        by_status: dict[str, int] = {}
        for exp in experiments:
            by_status[exp.status.value] = by_status.get(exp.status.value, 0) + 1
        return {"store": self.display_url, "path": None, "lines": None, "experiments": len(experiments),
                "by_status": by_status, "migrations": applied, "problems": problems, "quarantine": None,
                "healthy": all(p["fixed"] for p in problems if p["severity"] == "error")}

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


class _ConnectionLost(StoreError):
    """The connection to the server broke; the operation may be run again after reconnecting."""


def reconnect_seconds() -> float:
    """How long a lost connection is retried (EXP_RECONNECT, default 300 s)."""
    return float(os.environ.get("EXP_RECONNECT") or 300)


def _admitted(rows) -> list[Experiment]:
    """Records that pass models.admit; one that does not (written into the shared database by
    something else) is left where it is, unused, with one warning naming it and why."""
    from ..models import admit

    out = []
    for data in rows:
        try:
            admit(data)
        except ValueError as err:
            print(f"warning: ignored a record in the database that fails the checks ({err}); "
                  f"its id: {str(data.get('id') if isinstance(data, dict) else None)[:40]!r}", file=sys.stderr)
            continue
        out.append(Experiment.from_dict(data))
    return out


class _DatabaseErrors:
    def __init__(self, store: PostgresStore):
        self.store = store

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is not None and isinstance(error, self.store._errors):
            db = self.store.db
            if db is None or db.closed or db.broken:  # the server went away: PostgresStore._again retries
                raise _ConnectionLost(redact(f"lost the connection to {self.store.url}: "
                                             f"{' '.join(str(error).split())}")) from None
            raise StoreError(redact(f"database error on {self.store.url}: {' '.join(str(error).split())}")) from None
        return False

