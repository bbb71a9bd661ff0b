"""The contract every ledger backend keeps, and the conveniences built on it.

A backend implements a small atomic core: `_create` allocates the next ID and writes a
new record in one step; `_write_if` writes a changed record only if the stored one still has
the rev it was read at (compare-and-set); `_lookup` and `_search` read. Every change of a
record (`apply` of a lifecycle transition, `modify`) goes through the one read-apply-write
loop here, retried on conflict, so two writers can never both move the same experiment. Everything callers use (add, start, result, cancel, list,
queue, …) is written once here on top of that core, so a new backend changes no caller.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import models, schema
from ..errors import BadInput, IllegalTransition, NotFound, StoreError
from ..models import Experiment, Status
from ..redact import redact, remember

if TYPE_CHECKING:
    from ..lifecycle import Transition

# Fields a search can sort by (schema.py); objects (params, metrics, …) sort by a path in them.
SORTABLE = schema.names(sortable=True, nested=False)
SORTABLE_PATHS = schema.names(sortable=True, nested=True)
QUEUE_ORDER = "-priority,id"  # the order workers take queued experiments in
CONFLICT_RETRIES = 100  # rounds of read-apply-write before a change that keeps losing gives up


@dataclass(frozen=True)
class Search:
    """What to find; each backend turns it into its own query.

    Args:
        status: keep these statuses (empty: all); words in any case or Status members,
            one word or several (`"success"`, `("SUCCESS", Status.FAILED)`).
        task, model, machine: keep exact matches (None: any).
        tags: keep experiments carrying every one of these tags (one tag or several).
        fingerprint: keep the same task + model + canonical params.
        where: a `--where` expression (text, or an AST from expledger.query.parse).
        sort: a field, `params.X` or `metrics.X`; a leading `-` sorts descending; missing last.
        limit: at most this many (None: all).
        offset: skip this many matches first (a page further down).
        cursor: where the previous page ended (`Page.next_cursor`); replaces `offset`.
    """

    status: tuple[Any, ...] = ()
    task: str | None = None
    model: str | None = None
    machine: str | None = None
    tags: tuple[Any, ...] = ()
    fingerprint: str | None = None
    where: object = None
    sort: str = "-id"
    limit: int | None = None
    offset: int = 0
    cursor: str | None = None

    def __post_init__(self) -> None:
        # One parser for statuses everywhere: "success" and ("SUCCESS",) mean the same, a single
        # word is one status, not its letters, and "success,failed" two, as on the command line.
        statuses = self.status.split(",") if isinstance(self.status, str) else tuple(self.status or ())
        object.__setattr__(self, "status", tuple(Status.parse(s) for s in statuses))
        if isinstance(self.tags, str):
            object.__setattr__(self, "tags", (self.tags,))
        for name in ("limit", "offset"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise BadInput(f"{name} must be a whole number, 0 or more (got {value!r})")

    def sort_keys(self) -> list[tuple[tuple[str, ...], bool]]:
        """The sort, `-priority,id`, as [(path, descending), …]; BadInput for unknown fields."""
        keys = []
        for text in self.sort.split(","):
            text = text.strip()
            path = tuple(text.lstrip("-+").split("."))
            if not (
                (len(path) == 1 and path[0] in SORTABLE)
                or (len(path) >= 2 and path[0] in SORTABLE_PATHS and all(path[1:]))
            ):
                raise BadInput(f"cannot sort by {text!r}: use one of {schema.sort_help()} "
                               "(prefix - for descending; commas for more keys)")
            keys.append((path, text.startswith("-")))
        return keys

    def _digest(self) -> str:
        """What a cursor is bound to: the filters and the sort, not the page."""
        import hashlib

        key = (self.status, self.task, self.model, self.machine, self.tags, self.fingerprint, self.where, self.sort)
        return hashlib.sha256(repr(key).encode()).hexdigest()[:16]

    def cursor_at(self, offset: int) -> str:
        """An opaque token for the page that starts `offset` matches in."""
        import base64

        return base64.urlsafe_b64encode(f"{offset}:{self._digest()}".encode()).decode().rstrip("=")

    def paged(self) -> Search:
        """This search with its cursor turned into an offset; BadInput for a cursor that
        is malformed or belongs to another search."""
        if self.cursor is None:
            return self
        import base64
        import binascii

        try:
            text = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4)).decode()
            offset_text, digest = text.split(":")
            offset = int(offset_text)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadInput(f"cursor {self.cursor!r} is not one a search gave out") from None
        if digest != self._digest() or offset < 0:
            raise BadInput("that cursor belongs to another search (other filters or sort): "
                           "start again from the first page")
        return dataclasses.replace(self, offset=offset, cursor=None)


class Page(list[Any]):
    """Experiments a search found, in order: one page of `total` matches, starting at `offset`.

    A list, so it can be iterated, indexed and measured as before; `next_cursor` (None on
    the last page) asks for the page after it.
    """

    def __init__(self, items: Iterable[Experiment] = (), *, total: int = 0, offset: int = 0,
                 next_cursor: str | None = None):
        super().__init__(items)
        self.total = total
        self.offset = offset
        self.next_cursor = next_cursor

    @property
    def truncated(self) -> bool:
        """Whether matches were left out (before this page or after it)."""
        return self.total > len(self)

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, total={self.total}, offset={self.offset})"


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, resolved (symlinks followed), is `root` or lies under it."""
    root, path = root.resolve(), path.resolve()
    return path == root or root in path.parents


def confined(root: Path, path: Path) -> Path:
    """`path` if it stays inside `root`; StoreError otherwise: a path built from a record's
    fields never leaves the ledger's own folders."""
    if not inside(root, path):
        raise StoreError(f"refusing {path}: it is outside {root}")
    return path


class Store(ABC):
    """A ledger of experiments. Subclasses implement the core methods."""

    # Whether every machine sees every heartbeat (a shared database), or only the runner's own.
    shared_heartbeats = True

    def __init__(self, url: str, *, now: Callable[[], datetime] | None = None):
        self.url = url  # as given, to reconnect and to hand to children; print `display_url`
        self._now = now
        self._reaped: list[Experiment] | None = None
        remember(url)

    @property
    def display_url(self) -> str:
        """The URL as messages show it: without its password."""
        return redact(self.url)

    def now(self) -> datetime:
        """The injected clock's time, else the real one (UTC)."""
        return self._now() if self._now else datetime.now(timezone.utc)

    # --- the core every backend implements -------------------------------------------

    @abstractmethod
    def _create(self, record: Experiment) -> Experiment:
        """Give `record` the next free ID, a UUID and rev 1, and write it, atomically."""

    @abstractmethod
    def _write_if(self, exp: Experiment, expected_rev: int) -> bool:
        """Write `exp` over the record with its uuid only if that one's rev is still
        `expected_rev` (compare-and-set), atomically; whether it was written. A backend that
        may not know whether a write went through (a lost connection) finds out before it
        answers, so a change is never applied twice."""

    def _current(self, exp_id: str) -> Experiment | None:
        """The record a change starts from (may be stale: `_write_if` catches that)."""
        return self._lookup(exp_id)

    @abstractmethod
    def _lookup(self, exp_id: str) -> Experiment | None:
        """The current record with this canonical ID, or None."""

    @abstractmethod
    def _search(self, search: Search) -> tuple[list[Experiment], int]:
        """The matching records in order, `search.offset` skipped and `search.limit` kept,
        and how many matched in all (whatever the page)."""

    @abstractmethod
    def doctor(self, *, fix: bool = False) -> dict[str, Any]:
        """Verify the ledger; with fix, repair what can be repaired, losing nothing."""

    @abstractmethod
    def _claim(self, search: Search, change: Callable[[Experiment], Experiment]) -> Experiment | None:
        """Atomically take the first experiment `search` finds that no one else is taking,
        and apply `change` to it; None when there is none. Each experiment goes to one caller."""

    @abstractmethod
    def _put_many(self, records: list[Experiment]) -> list[bool]:
        """Write whole records as given (copy, merge) in one atomic step, each where the store
        holds no record with its uuid, or one it supersedes (schema.supersedes: a higher
        version, or a seed-tool record, rev 0) and differs from; whether each was written."""

    def put(self, exp: Experiment) -> bool:
        """Store a record from another ledger as it is: its uuid, ID, rev and times kept."""
        return self.put_many([exp])[0]

    def put_many(self, records: list[Experiment]) -> list[bool]:
        """Store records from another ledger, all or nothing: every one is checked at the door
        first (models.admit), then all are written in one step; for each, whether it was
        written (not already held)."""
        for exp in records:
            try:
                models.admit(exp.to_dict())
            except ValueError as err:
                raise BadInput(f"cannot store {exp.id!r}: {err}") from None
        return self._put_many(records) if records else []

    @abstractmethod
    def heartbeat(self, exp: Experiment) -> None:
        """Record that the runner of a RUNNING experiment is alive, now."""

    @abstractmethod
    def heartbeat_age(self, exp: Experiment) -> float | None:
        """Seconds since the runner last said it was alive (by the store's clock), or None."""

    @abstractmethod
    def append_steps(self, exp: Experiment, series: dict[str, Any]) -> None:
        """Append step metrics: {name: (steps, values)}, sequences or arrays; see steps.py.
        Called about once a second by a running experiment."""

    @abstractmethod
    def read_steps(self, exp: Experiment, *, arrays: bool = False) -> dict[str, tuple[list[Any], list[Any]]]:
        """Every step metric logged for an experiment: {name: (steps, values)} in order
        (as arrays with `arrays`: see steps.decode)."""

    def last_steps(self, exp: Experiment) -> dict[str, float]:
        """The last logged value of every step metric, without holding whole series."""
        from ..steps import last_values

        return last_values(self.read_steps(exp))

    @property
    def runs_root(self) -> Path:
        """Where run folders go on this machine: `$EXP_RUNS_DIR` (default ./exp-runs)."""
        return Path(os.environ.get("EXP_RUNS_DIR") or "exp-runs").absolute()

    def _own_dir(self, exp: Experiment) -> Path:
        """`<runs root>/<first ID>-<uuid prefix>`, confined to the runs root."""
        first_id = exp.aliases[0] if exp.aliases else exp.id  # stable when a merge renumbers it
        return confined(self.runs_root, self.runs_root / f"{first_id}-{exp.uuid[:8]}")

    def run_dir(self, exp: Experiment) -> Path:
        """The folder for a run's logs and artifacts (EXP_DIR): where its runner put it, if
        that is inside the runs root or a folder of this run's own name (another machine's
        runs root), else `<runs root>/<ID>-<uuid prefix>`; never a folder a record invents."""
        own = self._own_dir(exp)
        recorded = exp.runner.get("dir")
        if isinstance(recorded, str) and recorded:
            path = Path(recorded)
            if path.is_absolute() and ".." not in path.parts and (path.name == own.name or inside(self.runs_root, path)):
                return path
        return own

    def check_runs_root(self) -> None:
        """StoreError unless run folders can be made here: checked before a run is registered,
        so a read-only folder never leaves a registered run that could not start."""
        import tempfile

        root = self.runs_root
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as err:
            raise StoreError(f"cannot create a run folder in {root}: {err.strerror or err}") from None

    # --- optional: the worker registry and run output, kept for every machine to see ------

    def put_output(self, exp: Experiment, total: int, tail: bytes) -> None:
        """Keep the last bytes of a run's output (`total`: how many it wrote in all)."""
        raise NotImplementedError(f"{type(self).__name__} does not keep run output")

    def read_output(self, exp: Experiment) -> tuple[int, bytes] | None:
        """(bytes written in all, the last of them) for a run, or None when none was kept."""
        raise NotImplementedError(f"{type(self).__name__} does not keep run output")

    def beat_worker(self, info: dict[str, Any]) -> None:
        """Register a worker, or say it is still alive: `info` is its description, keyed by `id`."""
        raise NotImplementedError(f"{type(self).__name__} keeps no worker registry")

    def _worker_rows(self) -> list[tuple[dict[str, Any], float]]:
        """Every registered worker heard from in the last day, with seconds since its last beat."""
        raise NotImplementedError(f"{type(self).__name__} keeps no worker registry")

    def workers(self, *, lease: float | None = None) -> list[dict[str, Any]]:
        """Registered workers, each with `state` (live, stopped, gone) and `last_beat_age` (s):
        live ones first, then the most recently heard from."""
        from ..liveness import is_alive

        found = []
        for info, age in self._worker_rows():
            state = "stopped" if info.get("stopped") else "live" if is_alive(info, age, lease=lease) else "gone"
            found.append({**info, "state": state, "last_beat_age": round(age, 1)})
        return sorted(found, key=lambda w: (w["state"] != "live", w["last_beat_age"]))

    def refresh(self) -> None:
        """Forget what was read, so the next read sees other writers' changes (a worker's
        long-lived store; a database store always reads fresh)."""

    def refused(self) -> list[dict[str, Any]]:
        """Records this store holds but does not use, each `{"line", "reason"}`: what
        failed the checks at the door (models.admit) is quarantined, never acted on."""
        return []

    def close(self) -> None:
        """Release connections and handles."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_url}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- conveniences, the same for every backend -----------------------------------

    def get(self, ref: str | int) -> Experiment:
        """The experiment behind any spelling of its ID; NotFound if there is none."""
        exp_id = models.format_id(models.parse_id(ref))
        found = self._lookup(exp_id)
        if found is None:
            raise NotFound(f"no experiment {exp_id} in {self.display_url}")
        return found

    def add(self, *, name: str, task: str | None = None, model: str | None = None, params: dict[str, Any] | None = None,
            command: str | None = None, machine: str | None = None, tags: list[Any] | tuple[Any, ...] = (),
            status: Status | str = Status.QUEUED, priority: int = 0, workdir: str | None = None,
            repo_path: str | None = None, gpus: int | None = None, runner: dict[str, Any] | None = None,
            added_on: str | None = None) -> Experiment:
        """Register a new experiment: QUEUED, or RUNNING (status="running") when it runs now.

        Args:
            name: a short human name.
            task, model, params, command, machine, tags: what `exp add` records.
            priority: workers take higher first.
            workdir, repo_path: where a worker runs its command (absolute; relative to the repository).
            gpus: how many GPUs it needs (a worker with fewer leaves it queued).
            runner: the process that runs it (liveness.runner_info), for a RUNNING one.
            added_on: the machine it was added on (default: this one).
        """
        if added_on is None:
            from ..config import resolve_machine

            added_on = resolve_machine()
        return self._create(models.new_experiment(
            name=name, task=task, model=model, params=params, command=command, machine=machine, tags=tags,
            status=Status.parse(status), priority=priority, workdir=workdir, repo_path=repo_path, gpus=gpus,
            runner=runner, added_on=added_on, now=self.now()))

    def apply(self, ref: str | int, transition: Transition) -> Experiment:
        """Apply a lifecycle transition (expledger.lifecycle: Start, Result, Cancel, Requeue, …)
        atomically; the record it made. IllegalTransition if the experiment's state at that
        moment does not allow it (of two results recorded at once without force, one wins)."""
        return self.modify(ref, transition.apply)

    def modify(self, ref: str | int, change: Callable[[Experiment, datetime], Experiment]) -> Experiment:
        """Apply `change(current, now)` atomically, bumping rev and stamping updated with `now`.

        The one compare-and-set loop: read the current record, apply the change, write it
        only if nobody wrote in between; else read again and re-apply (`change` may run more
        than once, so it must be pure). `change` may raise to abort: nothing is written.
        """
        exp_id = models.format_id(models.parse_id(ref))
        versioned = self._versioned(change)
        for _ in range(CONFLICT_RETRIES):
            current = self._current(exp_id)
            if current is None:
                raise NotFound(f"no experiment {exp_id} in {self.display_url}")
            changed = versioned(current)
            if self._write_if(changed, current.rev):
                return changed
            self.refresh()
        raise StoreError(f"{exp_id} kept changing under us; try again")

    def _versioned(self, change: Callable[[Experiment, datetime], Experiment]) -> Callable[[Experiment], Experiment]:
        def versioned(current: Experiment) -> Experiment:
            moment = self.now()
            changed = change(current, moment)
            return dataclasses.replace(changed, rev=current.rev + 1, updated=models.now_iso(moment))

        return versioned

    def claim(self, *, machine: str | None = None, where: Any = None, runner: dict[str, Any] | Callable[[Experiment], dict[str, Any]] | None = None,
              retries: int = 0, accept: Callable[[Experiment], bool] | None = None) -> Experiment | None:
        """Start the next queued experiment for a worker on `machine`, or None.

        Highest priority first, then oldest; one targeted at another machine is left alone
        (no target means any machine), and so is one without a command, and one `accept`
        refuses (a folder missing here). Exactly one caller gets each experiment. `runner`
        (or `runner(exp)`) describes the process that takes it.
        """
        from ..query import And, Compare, Exists, Not, Or, parse

        runnable = Exists(("command",))  # one without a command waits for `exp run --id`
        condition: Any = runnable
        if machine:
            condition = And((runnable, Or((Compare(("machine",), "=", machine), Not(Exists(("machine",)))))))
        if isinstance(where, str):
            where = parse(where)
        if where is not None:
            condition = And((condition, where))

        from ..lifecycle import Start

        def change(exp: Experiment, now: datetime) -> Experiment:
            described = runner(exp) if callable(runner) else runner
            return Start(runner=described, machine=machine, retries=retries).apply(exp, now)

        search = Search(status=(Status.QUEUED,), where=condition, sort=QUEUE_ORDER, limit=1)
        if accept is None:
            return self._claim(search, self._versioned(change))
        self.refresh()
        for candidate in self.search(dataclasses.replace(search, limit=None)):
            if not accept(candidate):
                continue  # left in the queue for a machine that can run it
            this_one = And((condition, Compare(("uuid",), "=", candidate.uuid)))
            claimed = self._claim(dataclasses.replace(search, where=this_one), self._versioned(change))
            if claimed is not None:
                return claimed
        return None

    def start(self, ref: str | int, *, machine: str | None = None) -> Experiment:
        """QUEUED -> RUNNING by hand; `machine` is where it runs (recorded over its target)."""
        from ..lifecycle import Start

        return self.apply(ref, Start(machine=machine))

    def result(self, ref: str | int, *, status: Status | str, metrics: dict[str, Any] | None = None, summary: str | None = None,
               reason: str | None = None, force: bool = False, attempt: int | None = None,
               runner: dict[str, Any] | None = None) -> Experiment:
        """Record how an experiment ended: status success, failed or cancelled (any case).

        Metrics merge into those logged while it ran; a failure needs a reason (default: the
        summary). A recorded result is replaced only with `force` (the old one goes to its
        history). A runner passes its `attempt` (only the current claim may write) and its
        exit details as `runner`.
        """
        from ..lifecycle import Result

        return self.apply(ref, Result(status=status, metrics=metrics, summary=summary, reason=reason, force=force,
                                      attempt=attempt, runner=runner))

    def cancel(self, ref: str | int, *, reason: str | None = None, by: str | None = None) -> Experiment:
        """QUEUED or RUNNING -> CANCELLED; `by` (user@host) is recorded with it."""
        from ..lifecycle import Cancel

        return self.apply(ref, Cancel(reason=reason, by=by))

    def requeue(self, ref: str | int, *, reason: str) -> Experiment:
        """Put a finished experiment back in the queue as a new attempt (see models.retry)."""
        from ..lifecycle import Retry

        return self.apply(ref, Retry(reason=reason))

    def search(self, search: Search | None = None, **criteria: Any) -> Page:
        """Experiments matching a Search (or its fields as keywords): a Page, with `.total`.

        For a paged table: `search(limit=50, offset=1800)`, or pass the previous page's
        `next_cursor` as `cursor=`.
        """
        search = search or Search(**criteria)
        if isinstance(search.where, str):
            from ..query import parse

            search = dataclasses.replace(search, where=parse(search.where))
        search.sort_keys()  # validate before any backend work
        search = search.paged()
        found, total = self._search(search)
        end = search.offset + len(found)
        more = search.limit is not None and end < total
        return Page(found, total=total, offset=search.offset, next_cursor=search.cursor_at(end) if more else None)

    def queue(self, *, where: Any = None) -> Page:
        """QUEUED experiments in the order a worker takes them: highest priority, then oldest."""
        return self.search(status=(Status.QUEUED,), where=where, sort=QUEUE_ORDER)

    def reap_lost(self, *, lease: float | None = None) -> list[Experiment]:
        """Mark FAILED (or re-queue, while attempts remain) every RUNNING experiment whose
        runner is gone; returns them.

        Only experiments started by a runner (exp run, the Python API, a worker) have one;
        one moved by hand with `exp start` stays RUNNING until someone records its result.
        """
        from ..liveness import group_gone, is_alive, this_host

        reaped = []
        for exp in self.search(status=(Status.RUNNING,), sort="id"):
            if not exp.runner.get("pid"):
                continue
            if not self.shared_heartbeats and exp.runner.get("host") != this_host():
                continue  # its heartbeats are on its own machine: only that machine can judge
            age = self.heartbeat_age(exp)
            started = models.parse_time(exp.started)
            since_start = (self.now() - started).total_seconds() if started else None
            if age is None or (since_start is not None and since_start < age):
                age = since_start  # a fresh claim counts from its start, not an older attempt's beat
            if is_alive(exp.runner, age, lease=lease):
                continue
            if not group_gone(exp.runner):
                continue  # its command still runs here: never retried beside it; next time
            since = models.now_iso(self.now() - timedelta(seconds=age)) if age is not None else exp.started
            reason = f"lost: no heartbeat since {since} (runner pid {exp.runner.get('pid')} on {exp.runner.get('host')})"
            attempt = exp.runner.get("attempt")
            retry = (attempt or 1) < exp.runner.get("max_attempts", 1)
            try:
                from ..lifecycle import Requeue, Result  # here: a listing that finds none lost never loads it

                reaped.append(self.apply(exp.id, Requeue(reason=reason, attempt=attempt) if retry
                                         else Result(status=Status.FAILED, reason=reason, attempt=attempt)))
            except (IllegalTransition, NotFound):
                continue  # it finished, or was claimed again, in the meantime
        return reaped

    @property
    def reaped(self) -> list[Experiment]:
        """The runs `reap_once` marked on this store object (none when it never ran)."""
        return self._reaped or []

    def reap_once(self) -> list[Experiment]:
        """`reap_lost` the first time a reader asks on this store object; the runs it marked.

        A ledger that cannot be written (read-only) is shown as it is.
        """
        if self._reaped is None:
            try:
                self._reaped = self.reap_lost()
            except StoreError:
                self._reaped = []
        return self._reaped

    def tried_before(self, exp: Experiment) -> list[Experiment]:
        """Other experiments with the same task, model and params (canonically equal)."""
        return [other for other in self.search(fingerprint=exp.fingerprint, sort="id") if other.uuid != exp.uuid]
