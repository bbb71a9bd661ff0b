"""A SQLite index of a JSONL ledger's current state, so reads need not parse the whole log.

The log stays the single source of truth. The index remembers how far it has read
(byte offset, line count, the bytes just before that offset, the file's identity) and on
every open reads only what was appended since. If the file was replaced, shortened or
edited, the index throws itself away and rebuilds from the log. Losing the index file
costs time, never data: a deleted, damaged or unwritable index is rebuilt (in memory for
one process where it cannot be written) with one warning, and no command fails for it.

It does not keep a second copy of the records: each row has the columns queries filter and
sort on, and where the record's current line is in the log (byte offset, length, CRC-32).
A record is read back from that line. Only a record that no single line holds as it is read
(a conflict's merged record, another tool's line put in our normal form, a line that defines
its environment) keeps its JSON in the row. A pointer is followed only into the file the
index read (same device and inode, at least as long), and a line whose CRC differs means the
log was edited in place: the index is rebuilt rather than answer from stale columns.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from .. import schema
from ..conflicts import conflicting, resolve
from ..environment import compact, expand, facts_of
from ..errors import StoreError
from ..models import FORMAT_VERSION, Experiment, admit, fingerprint, id_number, supersedes
from .base import Search
from .sql import Compiler, SQLiteDialect, regexp

SCHEMA_VERSION = 8
_TAIL = 64  # bytes before the read offset that must be unchanged for the index to stay valid
COLD_BYTES = 1 << 20  # a catch-up this large takes the bulk path (orjson, indexes built after the rows)
COUNTERS = ("builds", "replaced", "read_lines")  # kept in meta, across rebuilds
PARTIAL_GRACE = 5.0  # seconds an unfinished last line may be a write in progress
# Plain columns for the record's top-level fields and small JSON columns for params, metrics,
# tags and aliases (schema.py says which): a query then parses a 50-byte params object
# instead of the whole 500-byte record. Columns carry no SQL type, so each holds the JSON
# value as it is (a number stays a number) and sorts and compares as the record would.
SCALAR_FIELDS = schema.names(column="column")
JSON_FIELDS = schema.names(column="json")
# `pos`, `len`, `crc`: the record's current line in the log; `data`: its JSON only where no
# line holds it as it is read (else NULL).
_COLUMNS = ("uuid", "id", "num", "rev", "status", *SCALAR_FIELDS, *JSON_FIELDS, "fingerprint", "pos", "len", "crc",
            "data")
_WHERE = ("data", "pos", "len", "crc")  # the columns a record is read back from
_RECORD = f"record({', '.join(_WHERE)})"  # its JSON text, in SQL (LedgerIndex._sql_record)
# uuid is unique through an index, not a primary key, so a first build can drop it with the
# others and build it once after the rows (random keys inserted one by one cost more).
_INDEXES = {"exp_uuid": "UNIQUE INDEX IF NOT EXISTS exp_uuid ON exp(uuid)", "exp_id": "INDEX IF NOT EXISTS exp_id ON exp(id)",
            "exp_num": "INDEX IF NOT EXISTS exp_num ON exp(num, id)",
            "exp_status": "INDEX IF NOT EXISTS exp_status ON exp(status, task)",
            "exp_fingerprint": "INDEX IF NOT EXISTS exp_fingerprint ON exp(fingerprint)"}
# One statement each: executescript() would commit the transaction a catch-up runs in.
_DROP_INDEXES = [f"DROP INDEX IF EXISTS {name}" for name in _INDEXES]
_CREATE_INDEXES = [f"CREATE {index}" for index in _INDEXES.values()]
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS exp({", ".join(_COLUMNS)});
{"".join(f"{statement};{chr(10)}" for statement in _CREATE_INDEXES)}\
CREATE TABLE IF NOT EXISTS bad(line INTEGER PRIMARY KEY, offset INTEGER, error TEXT);
CREATE TABLE IF NOT EXISTS env(hash TEXT PRIMARY KEY, facts TEXT);
"""
_INSERT = f"INSERT INTO exp({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_UPSERT = f"""
INSERT INTO exp({", ".join(_COLUMNS)}) VALUES ({", ".join("?" * len(_COLUMNS))})
ON CONFLICT(uuid) DO UPDATE SET {", ".join(f"{c}=excluded.{c}" for c in _COLUMNS[1:])}
"""  # rows are folded onto what the index held (_fold) before they are written


class _PointerDialect(SQLiteDialect):
    """SQLite's dialect, reading a field that has no column from the record's line."""

    def _locate(self, path: tuple) -> tuple[str, str | None]:
        column, json_path = super()._locate(path)
        return (_RECORD if column == "data" else column), json_path


_COMPILER = Compiler(
    _PointerDialect(scalar_columns={name for name, _ in schema.columns()}, json_columns=set(JSON_FIELDS)),
    columns=schema.column_map(),
)


class _Moved(Exception):
    """A pointer no longer finds its line: the ledger was replaced or cut (catch up), or
    edited in place (`edited`: rebuild)."""

    def __init__(self, edited: bool):
        super().__init__("edited in place" if edited else "replaced")
        self.edited = edited


def _repairing(method):
    """Run an index method; on a SQLite error, repair the index (LedgerIndex._recover) and
    run it once more, so no damage to the cache ever stops a command. One thread at a time:
    a read holds a transaction and the log open on the one connection."""

    @functools.wraps(method)
    def repaired(self, *args, **kwargs):
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as err:
                self._recover(err)
                return method(self, *args, **kwargs)

    return repaired


def _following(method):
    """Run a reading method; when the index's pointers no longer find their lines (the ledger
    was replaced since the index read it, or edited in place), catch up or rebuild, and run
    it again."""

    @functools.wraps(method)
    def following(self, *args, **kwargs):
        for _ in range(3):
            try:
                return method(self, *args, **kwargs)
            except _Moved as moved:
                if moved.edited:
                    self.warn(f"the ledger {self.ledger} was changed in place (not only appended to); "
                              "rebuilt its index from it")
                    self.rebuild()
                else:
                    self.sync()
        raise StoreError(f"the ledger {self.ledger} kept changing while it was read; try again")

    return following


def _file_id(path: Path) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _memory_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.executescript(_SCHEMA)
    db.create_function("regexp", 2, regexp, deterministic=True)
    return db


class LedgerIndex:
    """The current state of every experiment in one ledger file, kept up to date lazily."""

    def __init__(self, ledger: Path, cache: Path | None, *, warn: Callable[[str], None]):
        self.ledger = ledger
        self.cache = cache
        self.warn = warn
        self._db: sqlite3.Connection | None = None
        self._cache_id: tuple | None = None  # the index file this connection has open
        self._in_memory = False  # the index file could not be used: memory for this process
        self._warned = False
        self._envs: dict[str, dict] | None = None  # environment facts by hash, read once per connection
        self._shared: set[str] = set()  # shared IDs already warned about
        self._lock = threading.RLock()
        self._fd: int | None = None  # the log, open while a read follows pointers into it
        self._moved: _Moved | None = None  # what record() met inside a query, raised after it

    # --- keeping up with the log -------------------------------------------------------

    @_repairing
    def sync(self, *, create: bool = False) -> None:
        """Read what was appended since the last sync; rebuild if the file was replaced or cut.

        Appends are found by size, replacement by inode, truncation and rewrites near the
        end by the bytes before the read offset. An in-place edit of an earlier line is
        not seen here (that would mean reading the whole log each time), but a read that
        meets it (its line's CRC differs) rebuilds the index, and `exp doctor` compares
        every record with the log and rebuilds the index on --fix.
        `create` makes the index file even before the ledger exists (a writer is about to).
        """
        try:
            stat = os.stat(self.ledger)
        except FileNotFoundError:
            stat = None
        except OSError as err:
            raise StoreError(f"cannot read the ledger {self.ledger}: {err.strerror}") from None
        if self._cache_id is not None and _file_id(self.cache) != self._cache_id:
            self.close()  # the cache was deleted (git clean -X) or replaced: use the one there now
        elif create and self._db is not None and self._cache_id is None and not self._in_memory:
            self.close()  # read before the ledger existed: a writer now makes the index file
        db = self._connect(create=create or stat is not None)
        identity = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns] if stat else None
        if self._meta("identity") != identity or self._crashed():
            with db:
                db.execute("BEGIN IMMEDIATE")
                if self._crashed():
                    self._reset()
                try:
                    self._catch_up(stat)
                except _Moved:  # a record the new lines change is not where the index read it
                    self._reset()
                    self._catch_up(stat)

    def _crashed(self) -> bool:
        """Whether the index was last written before the machine restarted. It is written
        without waiting for the disk (synchronous=OFF: a cache), so after a crash of the
        machine (not of a process: WAL covers that) its pages may be from different moments
        and answer wrongly without any error: it is read anew instead. Where there is no
        boot id (not Linux), nothing is recorded and this is never true."""
        written = self._meta("boot")
        return written is not None and written != _boot_id()

    def rebuild(self) -> None:
        """Forget everything and read the whole log again."""
        db = self._connect(create=self.ledger.exists())
        with db:
            db.execute("BEGIN IMMEDIATE")
            self._reset()
        self.sync()

    def _catch_up(self, stat) -> None:
        db = self._db
        meta = {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM meta")}
        if stat is None:
            self._reset()
            return
        try:
            with open(self.ledger, "rb") as handle:
                kept = self._continues(handle, stat, meta)
                if kept is None:
                    self._reset()
                    meta = {key: meta[key] for key in COUNTERS if key in meta}
                offset, lines = meta.get("offset", 0), meta.get("lines", 0)
                handle.seek(offset)
                chunk = handle.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
                del chunk
                cold = len(complete) > COLD_BYTES  # a first build, or a big pull: the bulk path
                collecting = gc.isenabled()
                if cold:
                    gc.disable()  # hundreds of thousands of small dicts: no collection finds garbage in them
                try:
                    lines, latest, envs, bad = self._fold_lines(complete, offset, lines, cold, handle.fileno())
                    self._write_rows(latest, cold=cold and offset == 0, dumps=_json_codec(cold)[1])
                finally:
                    if collecting:
                        gc.enable()
        except OSError as err:
            raise StoreError(f"cannot read the ledger {self.ledger}: {err.strerror}") from None
        db.executemany("INSERT OR REPLACE INTO bad VALUES (?,?,?)", bad)
        if envs:
            db.executemany("INSERT OR IGNORE INTO env VALUES (?, ?)",
                           [(name, json.dumps(facts, ensure_ascii=False)) for name, facts in envs.items()])
            self._envs = None
        tail = (meta.get("tail", "").encode("latin-1") + complete)[-_TAIL:]
        crc, adler = meta.get("sum") or (0, 1)
        offset += len(complete)
        whole = offset == stat.st_size
        updated = {
            "offset": offset,
            "lines": lines,
            "tail": tail.decode("latin-1"),
            "sum": [zlib.crc32(complete, crc), zlib.adler32(complete, adler)],
            "file": [stat.st_dev, stat.st_ino],
            "identity": [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns] if whole else None,
            "partial_line": None if whole else lines + 1,  # a line still being written, or cut off
            "builds": meta.get("builds", 0) + (meta.get("offset", 0) == 0 and bool(complete)),
            "replaced": meta.get("replaced", 0) + (kept == "replaced"),
            "read_lines": lines - meta.get("lines", 0),
            "boot": _boot_id(),
        }
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in updated.items()])

    def _fold_lines(self, complete: bytes, offset: int, lines: int, cold: bool, fd: int):
        """The current version of every experiment the lines starting at `offset` touch
        (folded onto what the index held for it), the environments they define and the
        lines no read may use: (line count, {uuid: version}, {hash: facts}, bad rows)."""
        loads = _json_codec(cold)[0]
        latest: dict[str, tuple] = {}  # uuid -> (identity, data, raw line, version, offset): the winner so far
        envs: dict[str, dict] = {}  # environments defined by the new lines
        bad = []
        position = offset
        progress = _Progress(len(complete)) if len(complete) > 20_000_000 else None
        for raw in complete.splitlines(keepends=True):
            lines += 1
            if raw[:1] == b"{" or raw.strip():  # (strip copies the line: not for one that is surely not blank)
                try:
                    data = loads(raw)
                    uuid, rev, status = admit(data)  # the door for every line, ours or from a git union
                except UnicodeDecodeError:
                    bad.append((lines, position, "not UTF-8 text"))
                except (ValueError, TypeError) as err:
                    bad.append((lines, position, str(err)[:200]))
                else:
                    provenance = data.get("provenance")
                    if provenance.__class__ is dict and "env" in provenance:
                        facts = facts_of(provenance)
                        if facts is not None:
                            envs[provenance["env"]] = facts
                    held = latest.get(uuid)
                    if held is None and offset:  # indexed by an earlier catch-up: fold onto that
                        held = self._indexed(uuid, fd)
                    found = ((uuid, rev, status._value_), data, raw, (rev, data.get("updated") or ""), position)
                    latest[uuid] = found if held is None else _fold(held, found)
            position += len(raw)
            if progress and lines % 20_000 == 0:
                progress.show(position - offset)
        if progress:
            progress.done()
        return lines, latest, envs, bad

    def _write_rows(self, latest: dict[str, tuple], *, cold: bool, dumps) -> None:
        db = self._db
        rows = _Rows(dumps)
        if cold:  # an empty table: insert plainly, then build its indexes once
            db.execute("PRAGMA cache_size=-65536")  # 64 MB for this connection: random uuids in the key
            for statement in _DROP_INDEXES:
                db.execute(statement)
            db.executemany(_INSERT, map(rows.row, latest.values()))
            for statement in _CREATE_INDEXES:
                db.execute(statement)
        else:
            db.executemany(_UPSERT, map(rows.row, latest.values()))

    def _indexed(self, uuid: str, fd: int) -> tuple | None:
        """What the index holds for `uuid`, in the form _catch_up folds versions in; `fd`
        is the log being caught up (it begins with the lines the index read)."""
        row = self._db.execute(f"SELECT rev, status, {', '.join(_WHERE)} FROM exp WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            return None
        rev, status, text, pos, length, crc = row
        raw = text.encode() if text is not None else _pread(fd, pos, length, crc)
        data = json.loads(raw)
        return (uuid, rev, status), data, raw, (rev, data.get("updated") or ""), None if text is not None else pos

    def _continues(self, handle, stat, meta) -> str | None:
        """How the file is related to what the index read: "grown" (the same file, appended
        to), "replaced" (another file that begins with exactly the bytes indexed, as after a
        `git pull` that only added lines: their checksum is kept), or None: read it anew."""
        offset = meta.get("offset", 0)
        if not offset:
            return "grown"
        if stat.st_size < offset:
            return None
        start = max(0, offset - _TAIL)
        handle.seek(start)
        if handle.read(offset - start) != meta.get("tail", "").encode("latin-1"):
            return None
        if meta.get("file") == [stat.st_dev, stat.st_ino]:
            return "grown"
        handle.seek(0)
        crc, adler, left = 0, 1, offset
        buffer = bytearray(1 << 22)  # one buffer read into again and again: no fresh pages per block
        view = memoryview(buffer)
        while left:
            got = handle.readinto(view[:min(left, len(buffer))])
            if not got:
                return None
            block = view[:got]
            crc, adler, left = zlib.crc32(block, crc), zlib.adler32(block, adler), left - got
        return "replaced" if [crc, adler] == meta.get("sum") else None

    def counters(self) -> dict:
        """What the index did: full reads of the log (`builds`), replaced files caught up
        without one (`replaced`), lines read by the last catch-up (`read_lines`)."""
        return {key: self._meta(key) or 0 for key in COUNTERS}

    def _reset(self) -> None:
        self._db.execute("DELETE FROM exp")
        self._db.execute("DELETE FROM bad")
        self._db.execute(f"DELETE FROM meta WHERE key NOT IN ({', '.join(repr(key) for key in COUNTERS)})")
        self._db.execute("DELETE FROM env")
        self._envs = None

    @_repairing
    def warn_unreadable(self) -> None:
        """Say once per process that reads are skipping unreadable lines, or an unfinished
        last line that has been waiting too long to be a write in progress."""
        partial = self._meta("partial_line")
        if partial and not self._warned:
            try:
                stale = time.time() - os.stat(self.ledger).st_mtime > PARTIAL_GRACE
            except OSError:
                stale = False
            if stale:
                self._warned = True
                self.warn(f"the last line of {self.ledger} (line {partial}) is incomplete: a write was cut off; "
                          "`exp doctor --fix` moves it to a quarantine file")
        count, first = self._db.execute("SELECT count(*), min(line) FROM bad").fetchone()
        if count and not self._warned:
            self._warned = True
            where = f"line {first}" if count == 1 else f"{count} lines, the first is line {first}"
            self.warn(f"skipped unreadable lines in {self.ledger} ({where}); "
                      "`exp doctor --fix` moves them to a quarantine file")

    def unreadable(self) -> list[tuple[int, str]]:
        """(line number, why) of every line reads skip."""
        return list(self._db.execute("SELECT line, error FROM bad ORDER BY line"))

    def _meta(self, key: str):
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        db = None
        if create and self.cache is not None:
            try:
                self.cache.parent.mkdir(parents=True, exist_ok=True)
                ignore = self.cache.parent / ".gitignore"
                if not ignore.exists():
                    ignore.write_text("# expledger's rebuildable index: never commit\n*\n")
                db = sqlite3.connect(self.cache, timeout=60, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")  # a cache: a crash may cost a rebuild, never data (_crashed)
                db.execute("PRAGMA journal_size_limit=8388608")  # the WAL a first build grew shrinks back
                if _version(db) != SCHEMA_VERSION:
                    db.executescript("DROP TABLE IF EXISTS exp; DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS bad; "
                                     "DROP TABLE IF EXISTS env;")
                    db.executescript(_SCHEMA)
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._cache_id = _file_id(self.cache)
            except sqlite3.DatabaseError as err:
                if db is not None:
                    db.close()
                if not isinstance(err, sqlite3.OperationalError):
                    raise  # not a database, or a damaged one: _repairing replaces it
                db = None  # locked or unwritable: an index in memory for this process
                self._in_memory = True
            except OSError:
                db = None  # an unwritable folder: an index in memory for this process
                self._in_memory = True
        if db is None:
            db = _memory_db()
        else:
            db.create_function("regexp", 2, regexp, deterministic=True)
        db.create_function("record", 4, self._sql_record)
        self._db = db
        return db

    def _recover(self, err: sqlite3.Error) -> None:
        """After any SQLite error: a damaged index file is deleted and rebuilt from the log; one
        that cannot be written now (full disk, I/O error) is replaced by one in memory for this
        process. One warning either way; the log, not the index, holds the data."""
        damaged = not isinstance(err, sqlite3.OperationalError)
        self.close()
        if damaged and self.cache is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.cache}{suffix}")
        try:
            if not damaged:
                raise err
            self.sync.__wrapped__(self, create=True)
        except sqlite3.Error:
            self.close()
            self._db = _memory_db()
            self._db.create_function("record", 4, self._sql_record)
            self._in_memory = True
            self.sync.__wrapped__(self)
        self.warn(f"the index {self.cache} was damaged ({err}); rebuilt it from the ledger" if damaged else
                  f"could not update the index {self.cache} ({err}); this command read the ledger itself")

    # --- reading -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self):
        """One snapshot of the index for a read, with pointers followed into the log it read."""
        db = self._db
        nested = db.in_transaction
        if not nested:
            db.execute("BEGIN")
        try:
            yield
            moved, self._moved = self._moved, None
            if moved is not None:
                raise moved
        finally:
            self._moved = None
            if not nested:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                db.execute("COMMIT")

    def _log_fd(self) -> int:
        """The ledger open for reading, if it is the file the index's snapshot read (same
        device and inode, not shorter): else _Moved, and the caller catches up first."""
        if self._fd is None:
            file, offset = self._meta("file"), self._meta("offset") or 0
            try:
                fd = os.open(self.ledger, os.O_RDONLY)
            except FileNotFoundError:
                raise _Moved(edited=False) from None
            except OSError as err:
                raise StoreError(f"cannot read the ledger {self.ledger}: {err.strerror}") from None
            stat = os.fstat(fd)
            if [stat.st_dev, stat.st_ino] != file or stat.st_size < offset:
                os.close(fd)
                raise _Moved(edited=False)
            self._fd = fd
        return self._fd

    def _text(self, data: str | None, pos: int, length: int, crc: int) -> str | bytes:
        """A row's record as JSON text: its `data`, else its line in the log."""
        return data if data is not None else _pread(self._log_fd(), pos, length, crc)

    def _sql_record(self, data, pos, length, crc):
        """SQL's record(data, pos, len, crc): the row's JSON text, for fields without a column.
        What stops a pointer is raised once the query is done (an error inside SQLite would
        lose it)."""
        if data is not None:
            return data
        try:
            return _pread(self._log_fd(), pos, length, crc).decode("utf-8", "replace")
        except _Moved as moved:
            self._moved = moved
            return None

    @_repairing
    @_following
    def get(self, exp_id: str) -> Experiment | None:
        """By ID, else by an alias (an ID it had in a ledger merged into this one). An ID two
        experiments share after a git union means the one `doctor --fix` lets keep it
        (transfer.assign_ids: a running one, else the first created), with a warning."""
        with self._reading():
            rows = self._db.execute(f"SELECT {', '.join(_WHERE)}, name, uuid FROM exp WHERE id = ? "
                                    "ORDER BY status != 'RUNNING', coalesce(created, ''), uuid LIMIT 2",
                                    (exp_id,)).fetchall()
            row = rows[0] if rows else None
            if len(rows) > 1 and exp_id not in self._shared:
                self._shared.add(exp_id)
                self.warn(f"{exp_id} names more than one experiment since ledgers were merged; this is "
                          f"{rows[0][4]!r} ({rows[0][5][:8]}), which keeps the ID; `exp doctor --fix` gives "
                          f"{rows[1][4]!r} ({rows[1][5][:8]}) a new one")
            if row is None:
                row = self._db.execute(f"SELECT {', '.join(_WHERE)} FROM exp WHERE EXISTS (SELECT 1 FROM "
                                       "json_each(exp.aliases) WHERE value = ?) ORDER BY num LIMIT 1",
                                       (exp_id,)).fetchone()
            return self._record(self._text(*row[:4])) if row else None

    @_repairing
    @_following
    def get_uuid(self, uuid: str) -> Experiment | None:
        with self._reading():
            row = self._db.execute(f"SELECT {', '.join(_WHERE)} FROM exp WHERE uuid = ?", (uuid,)).fetchone()
            return self._record(self._text(*row)) if row else None

    def environment(self, name: str) -> dict | None:
        """The facts of the environment with this hash, if the ledger holds them."""
        if self._envs is None:
            self._envs = {key: json.loads(facts) for key, facts in self._db.execute("SELECT hash, facts FROM env")}
        found = self._envs.get(name)
        if found is None:  # another process may have indexed it since: the index file is shared
            row = self._db.execute("SELECT facts FROM env WHERE hash = ?", (name,)).fetchone()
            if row is not None:
                found = self._envs[name] = json.loads(row[0])
        return found

    def _record(self, text: str | bytes) -> Experiment:
        """A stored line as a whole record: its environment's facts put back."""
        return self._records([text])[0]

    def _records(self, texts: list[str | bytes]) -> list[Experiment]:
        """Stored lines as whole records (parsed in bulk for a long listing); each passed
        models.admit on its way into the index."""
        records = Experiment.from_lines(texts, admitted=True)
        for exp in records:
            provenance = exp.provenance
            if provenance and "env" in provenance:
                exp.provenance = expand(provenance, self.environment(provenance["env"]))
        return records

    @_repairing
    def lines(self) -> dict[str, str | None]:
        """uuid -> the line the index holds for it, for doctor to compare with the log (None
        where that line is no longer in the log as the index read it)."""
        held: dict[str, str | None] = {}
        with self._reading():
            for uuid, *where in self._db.execute(f"SELECT uuid, {', '.join(_WHERE)} FROM exp"):
                try:
                    text = self._text(*where)
                except _Moved:
                    text = None
                held[uuid] = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return held

    @_repairing
    def max_number(self) -> int:
        return self._db.execute("SELECT coalesce(max(num), 0) FROM exp").fetchone()[0]

    @_repairing
    @_following
    def search(self, search: Search) -> tuple[list[Experiment], int]:
        with self._reading():
            return self._search(search)

    def _search(self, search: Search) -> tuple[list[Experiment], int]:
        where, args = _COMPILER.where(search)
        if search.limit == 0:
            return [], self._count(where, args)
        order, order_args = _COMPILER.order(search)
        if search.limit is None:  # all of them: the records in order in one pass, no second look-up by row id
            texts = [self._text(*pointer) for pointer in self._db.execute(
                f"SELECT {', '.join(_WHERE)} FROM exp WHERE {where} ORDER BY {order} LIMIT -1 OFFSET ?",
                [*args, *order_args, search.offset])]
            total = search.offset + len(texts) if texts or not search.offset else self._count(where, args)
            return self._records(texts), total
        limit = search.limit
        page = [*args, *order_args, limit, search.offset]
        # Sort and cut on row ids only, so the sorter never carries whole records. A --where
        # is costly per row: count in the same pass (a window); plain filters count from an index.
        if search.where is not None:
            picked = self._db.execute(f"SELECT rowid, count(*) OVER () FROM exp WHERE {where} ORDER BY {order} "
                                      "LIMIT ? OFFSET ?", page).fetchall()
        else:
            total = self._count(where, args)
            picked = [(rowid, total) for (rowid,) in self._db.execute(
                f"SELECT rowid FROM exp WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", page)]
        if not picked:
            return [], self._count(where, args) if search.offset else 0
        rows = {rowid: where for rowid, *where in self._db.execute(
            f"SELECT rowid, {', '.join(_WHERE)} FROM exp WHERE rowid IN ({','.join('?' * len(picked))})",
            [r for r, _ in picked])}
        return self._records([self._text(*rows[rowid]) for rowid, _ in picked]), picked[0][1]

    def _count(self, where: str, args: list) -> int:
        return self._db.execute(f"SELECT count(*) FROM exp WHERE {where}", args).fetchone()[0]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._db is not None:
            self._db.close()
            self._db = None
            self._cache_id = None


def _fold(held: tuple, found: tuple) -> tuple:
    """The current version of an experiment after `found` (a later line) meets `held`:
    conflicts.resolve's rule, on dicts where no conflict is possible (nearly always)."""
    old, new = held[3], found[3]
    if old[0] == 0 and new[0] == 0:
        return found  # the seed tool's lines carry no version: the later one is current
    if old != new or old[0] == 0 or new[0] == 0:  # one of the seed tool's: ranked by schema.supersedes
        lower, higher = (held, found) if supersedes(new, old) else (found, held)
        if not _has_outcome(lower[1]) or not conflicting(lower[1], higher[1]):
            return higher
    elif held[2] == found[2]:
        return found
    before, after = Experiment.from_dict(held[1]), Experiment.from_dict(found[1])
    merged, _ = resolve(before, after)
    if merged is before or merged is after:
        return held if merged is before else found
    raw = merged.to_line()
    data = json.loads(raw)
    return (merged.uuid, merged.rev, merged.status.value), data, raw, (merged.rev, merged.updated or ""), None


_OUTCOMES = frozenset(("SUCCESS", "FAILED", "CANCELLED"))


def _has_outcome(data: dict) -> bool:
    """Whether conflicts.outcome_keys(data) may be non-empty: a queued or running version
    with no history (most lines) conflicts with nothing, and costs no JSON to say so."""
    return bool(data.get("history")) or str(data.get("status") or "").upper() in _OUTCOMES


def _pread(fd: int, pos: int, length: int, crc: int) -> bytes:
    """The line at `pos`, if it is still the one the index read (its CRC-32), else _Moved."""
    raw = os.pread(fd, length, pos)
    if len(raw) != length or zlib.crc32(raw) != crc:
        raise _Moved(edited=True)
    return raw


def indexed_form(data: dict, raw: bytes) -> tuple[dict, bytes]:
    """A line as the index keeps it: another tool's line (no `v`) in our own normal form,
    so queries see status words upper-case, tags as a list and a uuid on every record; a
    line that defines an environment without its facts (they go to the env table)."""
    provenance = data.get("provenance")
    if provenance.__class__ is dict and "env" in provenance and facts_of(provenance) is not None:
        data = {**data, "provenance": compact(provenance)}  # the facts live in the env table
        raw = Experiment.from_dict(data).to_line()
    if data.get("v") == FORMAT_VERSION:
        return data, raw
    raw = Experiment.from_dict(data).to_line()
    return json.loads(raw), raw


class _Rows:
    """Index rows from log lines, with one fingerprint computed per distinct config."""

    def __init__(self, dumps):
        self.dumps = dumps
        self.prints: dict[tuple, str] = {}  # (task, model, params as JSON) -> fingerprint

    def row(self, found: tuple) -> tuple:
        """The row of a version from _fold_lines: a pointer to its line when the line is the
        record as it is read, else its JSON."""
        (uuid, rev, status), data, line, _, pos = found
        data, raw = indexed_form(data, line)
        where = (pos, len(raw), zlib.crc32(raw), None) if pos is not None and raw is line else \
            (None, None, None, raw.decode("utf-8", "replace"))
        exp_id = data["id"]
        get, dumps = data.get, self.dumps
        # JSON text of params/metrics/tags/aliases; the common empty ones as they are
        columns = [dumps(value) if value else _EMPTY_TEXT.get(value.__class__, "null")
                   for value in [get(name, default) for name, default in _JSON_DEFAULTS]]
        task, model = get("task"), get("model")
        key = (repr(task), repr(model), columns[0])
        printed = self.prints.get(key)
        if printed is None:
            printed = self.prints[key] = fingerprint(task, model, get("params") or {})
        return (uuid, exp_id, _number(exp_id), rev, status, *[get(name, default) for name, default in _SCALAR_DEFAULTS],
                *columns, printed, *where)


_EMPTY = {"priority": 0, "aliases": []}  # what a line that leaves them out means
_SCALAR_DEFAULTS = tuple((name, _EMPTY.get(name)) for name in SCALAR_FIELDS)
_JSON_DEFAULTS = tuple((name, _EMPTY.get(name)) for name in JSON_FIELDS)
_EMPTY_TEXT = {list: "[]", dict: "{}"}


def _number(exp_id: str) -> int | None:
    """id_number of an ID the door let in (EXP- and digits), without a regular expression."""
    try:
        return int(exp_id[4:])
    except ValueError:
        return id_number(exp_id)


def _json_codec(bulk: bool):
    """(loads, dumps) for log lines: orjson on the bulk path when it is installed (so only a
    large catch-up pays its import), the standard library otherwise and for what orjson refuses
    (NaN literals, integers beyond 64 bits: other tools' lines)."""
    if bulk:
        try:
            import orjson
        except ImportError:
            pass
        else:
            def loads(raw: bytes):
                try:
                    return orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return json.loads(raw.decode())

            def dumps(value) -> str:
                try:
                    return orjson.dumps(value).decode()
                except TypeError:
                    return json.dumps(value, ensure_ascii=False)

            return loads, dumps
    return (lambda raw: json.loads(raw.decode())), (lambda value: json.dumps(value, ensure_ascii=False))


@functools.lru_cache(maxsize=1)
def _boot_id() -> str | None:
    """This boot of the machine (Linux), so an index written before a restart is recognised."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


class _Progress:
    """A one-line progress note on stderr while a large ledger is indexed."""

    def __init__(self, total: int):
        self.total = total
        self.live = sys.stderr.isatty()

    def show(self, done: int) -> None:
        if self.live:
            sys.stderr.write(f"\rindexing the ledger… {100 * done // self.total}%")
            sys.stderr.flush()

    def done(self) -> None:
        if self.live:
            sys.stderr.write("\rindexing the ledger… done\n")
