"""The default store: one append-only JSONL file, safe for many writers on one machine.

Guarantees:
- Every write appends one whole line in a single write() under an exclusive lock, then
  fsyncs (the one exception: the RUNNING line `expledger.start()` writes, which the run's
  result line, or the run thread after its first second, makes durable; see unsynced()). The lock is taken on the ledger's folder itself (flock on the directory): no
  rewrite replaces it and no clean-up of `.exp-cache/` deletes it, so a writer never appends
  to a file that a rewrite has just swapped out and two writers never hold it at once.
- Once the line is durable the write has happened: trouble with the index after it is a
  warning (the index rebuilds itself), never a failure that would invite a duplicate retry.
- A change is written only if the record's rev, checked while the lock is held, is still the
  one it was made from (compare-and-set; store/base.py retries it on the newer record).
- The write path does not read or write the index when the file is exactly as this object's
  last line left it: it knows what that line says (_Tail). The next read catches the index up.
- A short write (full disk) is cut back off, so no torn line is left behind; a torn line
  from a crash is kept apart from the next write and skipped, with a warning, by readers.
- Nothing rewrites earlier lines except `doctor --fix`, which writes a new file and renames
  it over the old one after moving unreadable lines to a quarantine file beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..environment import compact, expand, facts_of
from ..errors import StoreError, keyword, literal
from ..log import warn as log_warning
from ..models import Experiment, Status, format_id, id_number
from ..schema import supersedes, version
from .base import Search, Store, confined
from .index import LedgerIndex

LOCK_TIMEOUT = 60.0  # seconds a writer waits for another before giving up
STEPS_FILE = "steps.bin"
OUTPUT_FILE = "output.tail"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NETWORK_FILE_SYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs",
                        "lustre", "fuse.s3fs", "fuse.gcsfuse"}


def _replace(path: Path, data: bytes) -> None:
    """Write a small side file whole: a temporary file renamed over it, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def network_file_system(path: Path, mounts: str | None = None) -> str | None:
    """The network file system type `path` lives on (from /proc/mounts), or None."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    best, kind = "", None
    target = str(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind if kind in NETWORK_FILE_SYSTEMS else None


@functools.lru_cache(maxsize=16)
def _file_system_of(folder: str) -> str | None:
    """network_file_system, asked once per folder and process (a script starting many runs)."""
    return network_file_system(Path(folder))


class JsonlStore(Store):
    """A ledger in one JSONL file, with its index and lock in a `.exp-cache` folder beside it."""

    shared_heartbeats = False  # heartbeat files stay on the machine (a ledger synced by git)
    shareable = True  # one object may serve every run of a process, from any thread (run._take_store)

    def __init__(self, path: str | Path, *, url: str | None = None, now=None, warn=None):
        self.path = Path(path).expanduser().absolute()
        super().__init__(url or str(self.path), now=now)
        self.warn = warn or log_warning
        self.cache_dir = self.path.parent / ".exp-cache"
        self.index = LedgerIndex(self.path, self.cache_dir / f"{self.path.name}.sqlite3", warn=self.warn)
        self._synced = False
        self._read_state: tuple[int, ...] | None = None  # the file as the last read's sync found it
        self._checked_file_system = False
        self._seen: dict[str, tuple[int, ...] | None] = {}  # uuid -> the file's state when _current read it
        self._mutex = threading.RLock()  # one thread at a time in this object (a Run's store is shared)
        self._fd: int | None = None  # the ledger, kept open for this object's writes
        self._fd_of: tuple | None = None  # (pid, dev, ino) of that descriptor
        self._stat: os.stat_result | None = None  # the ledger as the lock found it
        self._tail: _Tail | None = None  # what this object wrote since the index last caught up
        self._unsynced_by: int | None = None  # the thread whose writes are not fsynced (unsynced())
        self._dirty = False  # written through the kept descriptor, not yet fsynced

    # --- core ----------------------------------------------------------------------

    def _create(self, record: Experiment) -> Experiment:
        import uuid

        with self._locked():
            tail = self._own_tail()
            number = (tail.number if tail else self._caught_up().max_number()) + 1
            created = dataclasses.replace(
                record, id=format_id(number), uuid=str(uuid.uuid4()), rev=1, updated=record.created
            )
            self._write(created, tail)
        return created

    def _current(self, exp_id: str) -> Experiment | None:
        with self._mutex:
            tail = self._tail
            if tail is not None and tail.pid == os.getpid() and exp_id in tail.lines:
                return self._record(tail, tail.lines[exp_id][2])  # ours; if someone wrote since, _write_if says so
            seen = self._file_state()  # before the sync: the index holds at least this much of the file
            self.index.sync()
            found = self.index.get(exp_id)
            if found is not None:
                self._seen[found.uuid] = seen
            return found

    def _write_if(self, exp: Experiment, expected_rev: int) -> bool:
        seen = self._seen.pop(exp.uuid, None)
        with self._locked():  # compared under the lock with the last line written for it
            tail = self._own_tail()
            if tail is not None and exp.id in tail.lines:  # our own line is the last word on it
                uuid, rev, _ = tail.lines[exp.id]
                if uuid != exp.uuid or rev != expected_rev:
                    return False
            elif seen is not None and self._file_state() == seen:
                # The file as it was when the record was read (and the index caught up): no one
                # wrote since, so its rev is still the one read; spares decoding it a second time.
                tail = self._tail = None
            else:
                tail, held = None, self._caught_up().get_uuid(exp.uuid)  # also forgets our tail: a retry reads the index
                if held is None or held.rev != expected_rev:
                    return False
            self._write(exp, tail, created=False)
        if exp.status is not Status.RUNNING:
            self.drop_heartbeat(exp)  # its run ended (or went back to the queue)
        return True

    def _claim(self, search: Search, change: Callable[[Experiment], Experiment]) -> Experiment | None:
        with self._locked():  # the lock makes the search and the write one step
            found, _ = self._caught_up().search(search)
            if not found:
                return None
            changed = change(found[0])
            self._append(self._line(changed))
        return changed

    def _put_many(self, records: list[Experiment]) -> list[bool]:
        """One append of every new line: a full disk cuts it all back, so all or nothing."""
        with self._locked():
            written = []
            self._caught_up()
            for exp in records:
                held = self.index.get_uuid(exp.uuid)
                written.append(held is None or (supersedes(version(exp.rev, exp.updated), version(held.rev, held.updated))
                                                and held.to_dict() != exp.to_dict()))
            defined: set = set()
            lines = [self._line(exp, defined) for exp, fresh in zip(records, written) if fresh]
            if lines:
                self._append(b"".join(lines))
        return written

    def _file_state(self) -> tuple[int, ...] | None:
        """What tells whether the ledger changed: its inode, size and modification time."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns

    @contextlib.contextmanager
    def unsynced(self):
        """Writes of this thread inside the block return without an fsync (the Python API's
        RUNNING record): kill -9 cannot lose them, the kernel holds the bytes; the next fsynced
        write to the file (the run's result line, anyone's line) or sync() makes them durable."""
        self._unsynced_by = threading.get_ident()
        try:
            yield
        finally:
            self._unsynced_by = None

    def sync(self) -> None:
        """Make durable what this object wrote inside unsynced()."""
        with self._mutex:
            if self._dirty and self._fd is not None:
                os.fsync(self._fd)
            self._dirty = False

    def _lookup(self, exp_id: str) -> Experiment | None:
        with self._mutex:
            self._read()
            return self.index.get(exp_id)

    def _search(self, search: Search) -> tuple[list[Experiment], int]:
        with self._mutex:
            self._read()
            return self.index.search(search)


    def refresh(self) -> None:
        self._synced = False

    def refused(self) -> list[dict]:
        with self._mutex:
            self._read()
            return [{"line": line, "reason": reason} for line, reason in self.index.unreadable()]

    def close(self) -> None:
        """Let go of the index connection and the ledger's descriptor; the object stays usable
        (the next call opens them again)."""
        with self._mutex:
            self.index.close()
            self._synced = False
            self._forget_file()


    # --- runs: heartbeats, step metrics, folders -------------------------------------

    @property
    def runs_root(self) -> Path:
        """memory/experiments/runs/ beside experiments.jsonl; <name>-runs/ beside another ledger."""
        return self.path.parent / ("runs" if self.path.name == "experiments.jsonl" else f"{self.path.stem}-runs")

    def _heartbeat_file(self, exp: Experiment) -> Path:
        folder = self.cache_dir / "heartbeats"
        if _UUID.fullmatch(exp.uuid):
            return folder / exp.uuid  # a plain UUID names a file in the folder: nothing to resolve
        return confined(folder, folder / exp.uuid)

    def heartbeat(self, exp: Experiment) -> None:
        path = self._heartbeat_file(exp)
        try:
            path.touch()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def drop_heartbeat(self, exp: Experiment) -> None:
        """Remove the heartbeat file of a run that is no longer RUNNING."""
        with contextlib.suppress(OSError):
            self._heartbeat_file(exp).unlink()

    def heartbeat_age(self, exp: Experiment) -> float | None:
        try:
            return time.time() - self._heartbeat_file(exp).stat().st_mtime
        except OSError:
            return None

    def put_output(self, exp: Experiment, total: int, tail: bytes) -> None:
        """The tail beside the run's step series (runs/<ID>-<uuid>/output.tail): a byte count, a newline, the bytes."""
        _replace(self._own_dir(exp) / OUTPUT_FILE, b"%d\n" % total + tail)

    def read_output(self, exp: Experiment) -> tuple[int, bytes] | None:
        try:
            total, _, tail = (self._own_dir(exp) / OUTPUT_FILE).read_bytes().partition(b"\n")
            return int(total), tail
        except (OSError, ValueError):
            return None

    def beat_worker(self, info: dict) -> None:
        """One small file per worker in .exp-cache/workers/, its age the last beat (this machine's workers only)."""
        import json

        _replace(self.cache_dir / "workers" / f"{info['id']}.json", json.dumps(info).encode())

    def _worker_rows(self) -> list[tuple[dict, float]]:
        import json

        rows = []
        for path in (self.cache_dir / "workers").glob("*.json"):
            try:
                age = time.time() - path.stat().st_mtime
                if age > 86400:
                    path.unlink()
                    continue
                rows.append((json.loads(path.read_bytes()), age))
            except (OSError, ValueError):
                continue  # removed or being replaced meanwhile
        return rows

    def append_steps(self, exp: Experiment, series: dict) -> None:
        """Binary chunks (steps.py) appended to the run folder's steps.bin in one write."""
        from ..steps import encode

        line = encode(series)
        path = self._steps_file(exp)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if os.write(fd, line) != len(line):  # a full disk: take the partial chunk back
                os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        finally:
            os.close(fd)

    def read_steps(self, exp: Experiment, *, arrays: bool = False) -> dict[str, tuple[list, list]]:
        from ..steps import decode

        try:
            return decode(self._steps_file(exp).read_bytes(), warn=lambda text: self.warn(f"{exp.id}: {text}"),
                          arrays=arrays)
        except FileNotFoundError:
            return {}

    def last_steps(self, exp: Experiment) -> dict[str, float]:
        """Read through a memory map: only the pages around each chunk's header and end."""
        import mmap

        from ..steps import last_of

        try:
            with open(self._steps_file(exp), "rb") as handle:
                if not os.fstat(handle.fileno()).st_size:
                    return {}
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    return last_of(data)
        except FileNotFoundError:
            return {}

    def _steps_file(self, exp: Experiment) -> Path:
        """Step series belong to this ledger (a copy gets its own), whatever folder ran it."""
        return self._own_dir(exp) / STEPS_FILE

    # --- reading and writing the file ----------------------------------------------

    def _read(self) -> None:
        """Bring the index up to the ledger for a read: at the first read, and whenever the file
        changed since (writers leave the index to readers, so a long-lived store, the
        dashboard's, must look: one stat)."""
        state = self._file_state()
        if not self._synced or state != self._read_state:
            self.index.sync()
            self.index.warn_unreadable()
            self._synced, self._read_state = True, state

    @contextlib.contextmanager
    def _locked(self):
        """Hold the ledger's write lock (and this object's mutex, so that two threads sharing
        it never both believe they hold the lock); the caller brings the index up to date
        (_caught_up) unless the file is exactly as this object last left it (_own_tail)."""
        with self._mutex:
            if not self._checked_file_system:
                self._checked_file_system = True
                kind = _file_system_of(str(self.path.parent))
                if kind:
                    self.warn(f"the ledger {self.path} is on a network file system ({kind}), where file locks "
                              "between machines are unreliable; point every machine at one PostgreSQL store "
                              "instead (README: Across machines)")
            try:
                folder = Path(os.path.realpath(self.path)).parent  # a symlinked ledger: its target's folder
                try:
                    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except FileNotFoundError:
                    folder.mkdir(parents=True, exist_ok=True)
                    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as err:
                raise StoreError(
                    literal(f"cannot write the ledger {self.path}: {err.strerror}; ")
                    + "{0} or set EXP_STORE to a writable place",
                    arguments=(keyword("store", python="open another ledger (open_store(PATH))",
                                       cli="pass --store PATH"),),
                ) from None
            try:
                deadline = time.monotonic() + LOCK_TIMEOUT
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StoreError(
                                f"the ledger {self.path} stayed locked by another process for {LOCK_TIMEOUT:.0f} s"
                            ) from None
                        time.sleep(0.002)
                try:
                    self._stat = os.stat(self.path)
                except FileNotFoundError:
                    self._stat = None
                except OSError as err:
                    raise StoreError(f"cannot read the ledger {self.path}: {err.strerror}") from None
                yield
                self._synced = False  # our own line is indexed by the next read, not on this write's path
            finally:
                self._stat = None
                os.close(fd)  # closing releases the lock

    def _own_tail(self) -> _Tail | None:
        """Under the lock: what this object wrote since the index last caught up, if no one
        else has written since (the same file, size and time as our last write left it).
        Then the index lags by our own lines only, and we know what they say."""
        tail, found = self._tail, self._stat
        if tail is None or found is None or tail.pid != os.getpid() or len(tail.lines) >= _TAIL_RECORDS:
            return None
        if (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns) != tail.identity:
            return None
        return tail

    def _caught_up(self) -> LedgerIndex:
        """Under the lock: the index, brought up to the file (with our own lines)."""
        self.index.sync(create=True)
        self._tail = None
        return self.index

    def _record(self, tail: _Tail, line: bytes) -> Experiment:
        """A record as this object wrote it, made whole as the index would give it."""
        exp = Experiment.from_line(line)
        env = exp.provenance.get("env") if exp.provenance else None
        if env and "packages" not in exp.provenance:
            exp.provenance = expand(exp.provenance, tail.envs.get(env) or self.index.environment(env))
        return exp

    def _write(self, exp: Experiment, tail: _Tail | None, *, created: bool = True) -> None:
        """Append `exp`'s line and remember it: the next write of ours need not read the index
        if no one else writes in between. `tail` None: the index was just caught up."""
        env = exp.provenance.get("env") if exp.provenance else None
        defined = env is not None and ((tail is not None and env in tail.envs) or
                                       self.index.environment(env) is not None)
        facts = facts_of(exp.provenance) if env and not defined else None
        line = exp.to_line() if not env or not defined else dataclasses.replace(
            exp, provenance=compact(exp.provenance)).to_line()
        identity = self._append(line)
        if tail is None:
            tail = _Tail(pid=os.getpid(), number=self.index.max_number())
        tail.identity = identity
        if created:
            tail.number = max(tail.number, id_number(exp.id) or 0)
        if exp.status not in (Status.RUNNING, Status.QUEUED):
            tail.lines.pop(exp.id, None)  # finished: a later change of it reads the index, caught up
        elif created or exp.id in tail.lines:
            tail.lines[exp.id] = (exp.uuid, exp.rev, line)
        if facts is not None:
            tail.envs[env] = facts
        self._tail = tail

    def _line(self, exp: Experiment, defined: set | None = None) -> bytes:
        """The record's line: its environment's facts only if the ledger does not hold them
        yet (nor `defined`, the environments of lines about to be written with it)."""
        env = exp.provenance.get("env")
        if env and ((defined is not None and env in defined) or self.index.environment(env) is not None):
            exp = dataclasses.replace(exp, provenance=compact(exp.provenance))
        elif env and defined is not None:
            defined.add(env)
        return exp.to_line()

    def _ledger(self) -> int:
        """The ledger's descriptor for appending, kept open across writes while it is the file
        at self.path (a rewrite or a `git pull` puts another there) in this process."""
        found, fd = self._stat, self._fd
        if fd is not None and (found is None or self._fd_of != (os.getpid(), found.st_dev, found.st_ino)):
            self._forget_file()
            fd = None
        if fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as err:
                raise StoreError(f"cannot write the ledger {self.path}: {err.strerror}") from None
            opened = os.fstat(fd)
            self._fd, self._fd_of = fd, (os.getpid(), opened.st_dev, opened.st_ino)
        return fd

    def _forget_file(self) -> None:
        """Close the kept descriptor (the file was replaced, or the store closed)."""
        fd, self._fd, self._fd_of, self._tail = self._fd, None, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                if self._dirty:
                    os.fsync(fd)
                os.close(fd)
        self._dirty = False

    def _append(self, line: bytes) -> tuple:
        """Append one line in one write and fsync it; on failure leave the file as it was.
        The caller holds the lock. Returns the file's identity after the write."""
        fd = self._ledger()
        size = os.fstat(fd).st_size
        tail = self._tail
        ours = tail is not None and self._stat is not None and size == tail.identity[2] == self._stat.st_size
        if size and not ours and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # keep a torn line from a crash apart from ours
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if self._unsynced_by == threading.get_ident():
                self._dirty = True
            else:
                os.fsync(fd)  # every byte of the file so far, so our unsynced lines before it too
                self._dirty = False
        except OSError as err:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            self._tail = None
            raise StoreError(f"could not write to the ledger {self.path}: {err.strerror}; nothing was recorded") from None
        after = os.fstat(fd)
        self._stat = after  # a second write under the same lock (doctor) sees the file as it is now
        return after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns

    # --- doctor --------------------------------------------------------------------

    def doctor(self, *, fix: bool = False) -> dict:
        from .jsonl_doctor import check

        if fix:
            with self._locked():
                self._caught_up()
                return check(self, fix=True)
        return check(self, fix=False)

    def rewrite(self, keep: list[bytes], quarantine: list[bytes]) -> Path | None:
        """Replace the ledger by `keep`, after saving `quarantine` (if any) beside it; the
        caller holds the lock. A symlinked ledger is rewritten at its target, and stays a link.
        Returns the quarantine file's path when one was written."""
        self._forget_file()  # the kept descriptor would append to the file replaced
        target = Path(os.path.realpath(self.path))
        quarantine_path = target.with_name(target.name + ".quarantine") if quarantine else None
        if quarantine:
            with open(quarantine_path, "ab") as handle:
                handle.write(b"".join(q if q.endswith(b"\n") else q + b"\n" for q in quarantine))
                handle.flush()
                os.fsync(handle.fileno())
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(b"".join(keep))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, os.stat(target).st_mode & 0o7777)
            os.replace(temp, target)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StoreError(f"could not rewrite the ledger {self.path}: {err.strerror}; it is unchanged") from None
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with contextlib.suppress(OSError):
            self._stat = os.stat(self.path)
        return quarantine_path


_TAIL_RECORDS = 1000  # unfinished records a store remembers before it catches the index up on a write


@dataclasses.dataclass
class _Tail:
    """What one store object appended since its index last caught up with the file."""

    pid: int
    number: int  # the highest ID number in the ledger
    identity: tuple = ()  # (dev, ino, size, mtime) of the file right after our last write
    lines: dict = dataclasses.field(default_factory=dict)  # ID -> (uuid, rev, line) of each unfinished record we created
    envs: dict = dataclasses.field(default_factory=dict)  # environments our lines defined: hash -> facts
