"""The Python API for training code: start a run, log step metrics, record the result.

    import expledger
    with expledger.start(name="lens", task="asr", params={"lr": 1e-3}) as run:
        for step in range(1000):
            run.log({"loss": loss, "acc": acc}, step=step)
        run.result(summary="converged")          # optional: a clean exit is SUCCESS

Under `exp run` or `exp worker` (EXP_ID set), `start()` attaches to that experiment instead
of creating one: the runner records the outcome, the API adds metrics and step series.
Logging never crashes training: points are buffered in memory and flushed by a thread
about once a second; storage trouble becomes one warning per kind, never an exception.
Misuse (logging to a finished run, a non-numeric value) raises at once.

Starting many runs in one process is cheap: the runs share one background thread (flushes,
heartbeats, provenance, system sampling) and one open store per ledger, and a run that ends
within its first second never needs a heartbeat or a sampler at all.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import BadInput
from .liveness import heartbeat_interval, runner_info
from .models import Experiment, Status

if TYPE_CHECKING:
    from .lifecycle import Transition
    from .store.base import Store

FLUSH_SECONDS = 1.0
MAX_NAME_BYTES = 65_535  # a step chunk stores the name's length in 16 bits
_FAILED = object()  # what _guard returns when the store call failed


class Run:
    """A live experiment: `log()` step metrics, then `result()` (or leave the `with` block).

    Making one has no side effects; the run starts (the process's run thread flushes and
    heartbeats it, an uncaught exception or the interpreter's exit records the outcome) at
    `expledger.start()`, on entering the `with` block, or at the first `log()`.

    Args:
        store: the Store the experiment lives in.
        experiment: the RUNNING experiment.
        attached: True under `exp run`/`exp worker`, which own the outcome.
        owns_store: give `store` back when the run ends (only for a store start() opened: it
            stays open for the process's next run of the same ledger, or is closed).
    """

    def __init__(self, store: Store, experiment: Experiment, *, attached: bool = False, owns_store: bool = False):
        self.store = store
        self.experiment = experiment
        self.attached = attached
        self.owns_store = owns_store
        self.finished = False
        self.started = False
        self._series: dict[str, tuple[array[Any], array[Any]]] = {}  # points not yet flushed
        self._last: dict[str, float] = {}  # the last value of every series: the default final metrics
        self._names: set[str] = set()  # metric names already checked
        self._step = 0
        self._lock = threading.Lock()  # held by log() and by the swap in flush()
        self._flushing = threading.Lock()  # one flush at a time, so chunks stay in order
        self._writing = threading.Lock()  # one record write at a time on the run's one store connection
        self._provenance: dict[str, Any] | None = None  # collected, not yet written: it rides on the next write
        self._collecting = threading.Lock()  # provenance is collected once, by the run thread or by result()
        self._collected = attached  # under a runner, the runner records provenance
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._begun = 0.0  # time.monotonic() at begin()
        self._next_beat = 0.0  # when the run thread heartbeats next
        self._durable = False  # whether the run thread has made the RUNNING line durable
        self._sampler: Any = None
        self._uncaught: BaseException | None = None
        self._previous_hook = sys.excepthook

    def begin(self) -> Run:
        """Start the run's background work (once): the flush and heartbeat thread, system
        metrics, and recording the outcome of an uncaught exception or of the process exit."""
        with self._lock:
            if self.started or self.finished:
                return self
            self.started = True
        self._begun = time.monotonic()
        if not self.attached and self.store.shared_heartbeats:  # other hosts judge it by its heartbeat alone
            self._guard("heartbeat", self.store.heartbeat, self.experiment)
        # On this machine its PID tells it is alive till its first heartbeat; under a runner, the runner beats.
        self._next_beat = float("inf") if self.attached else self._begun + FLUSH_SECONDS
        self._previous_hook = sys.excepthook
        sys.excepthook = self._excepthook
        atexit.register(self._at_exit)
        if not self._collected:
            from .provenance import environment_known

            if environment_known():  # no package scan to wait for: collect it here, now
                self._collect()
        _runs().add(self)  # else the run thread collects it, while the run goes on
        return self

    @property
    def id(self) -> str:
        return self.experiment.id

    @property
    def attempt(self) -> int | None:
        """Under a runner, the attempt it claimed: only that attempt may write."""
        return _runner_attempt() if self.attached else None

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        """Append one point per metric at `step` (default: one past the previous step).

        Every value is checked before anything is appended, and the append and the flush
        thread's swap of the buffer hold one lock, so no point is lost or shifted.
        """
        if self.finished:
            raise BadInput(f"{self.id} is finished; start a new run to log more")
        if not self.started:
            self.begin()
        if step is not None and step.__class__ is not int:
            step = _step_number(step)
        points = []
        names = self._names
        for name, value in values.items():
            if value.__class__ is not float:
                value = _number(name, value)
            if name not in names:
                _check_name(name)
                names.add(name)
            points.append((name, value))
        with self._lock:
            if step is None:
                step = self._step
            elif not -2**63 <= step < 2**63:
                raise BadInput(f"step {step} is out of range (a 64-bit whole number)")
            self._step = step + 1
            series, last = self._series, self._last
            for name, value in points:
                held = series.get(name)
                if held is None:
                    held = series[name] = (array("q"), array("d"))
                held[0].append(step)
                held[1].append(value)
                last[name] = value

    def log_params(self, params: dict[str, Any]) -> None:
        """Add params learned while running (a framework's settings); keys already set win."""
        if self.finished:
            raise BadInput(f"{self.id} is finished; start a new run to add params")
        import json

        try:
            json.dumps(params)
        except (TypeError, ValueError):
            raise BadInput("params must be a dict of JSON values (numbers, text, lists, objects)") from None
        from .lifecycle import Amend

        self._write("params", Amend(params=params, attempt=self.attempt))

    def log_file(self, path: str | os.PathLike[str], *, kind: str = "file") -> list[dict[str, Any]]:
        """Record a file the run produced (or every file under a folder): its path, size,
        sha256 and kind ("checkpoint", "prediction", "figure", …), never its bytes.

        Paths inside the run folder (EXP_DIR) are kept relative to it, others relative to the
        workspace. Logging the same path again replaces its entry. Returns the entries.
        """
        from .files import describe, workspace

        if self.finished:
            raise BadInput(f"{self.id} is finished; log its files before the result")
        entries = describe(path, kind=kind, run_dir=self.run_dir, root=workspace(self.store))
        from .lifecycle import Amend

        self._write("files", Amend(files=entries, attempt=self.attempt))
        return entries

    @property
    def dir(self) -> Path:
        """The run's folder for logs and artifacts: EXP_DIR under `exp run` or a worker, else
        the store's choice (runs/EXP-001-…/ beside the ledger)."""
        if self.attached and os.environ.get("EXP_DIR"):
            return Path(os.environ["EXP_DIR"])
        folder: Path = self.store.run_dir(self.experiment)
        return folder

    run_dir = dir

    def flush(self) -> None:
        """Write buffered points now (the background thread does this every second).

        Points the store refused stay buffered, ahead of newer ones, for the next flush.
        """
        with self._flushing:
            with self._lock:
                series, self._series = self._series, {}
            if not series:
                return
            if self._guard("steps", self.store.append_steps, self.experiment, series) is _FAILED:
                with self._lock:
                    for name, (steps, values) in self._series.items():
                        held = series.setdefault(name, (array("q"), array("d")))
                        held[0].extend(steps)
                        held[1].extend(values)
                    self._series = series

    def result(self, status: str | Status = Status.SUCCESS, *, metrics: dict[str, Any] | None = None,
               summary: str | None = None, reason: str | None = None) -> Experiment:
        """Finish the run. Final metrics default to the last logged value of each series when
        it succeeded; a failure keeps only the metrics given here (its curves stay in its steps).

        Attached to `exp run`, this records metrics and summary only: the runner records the
        status from the exit code.
        """
        from .lifecycle import Result, Update

        if self.finished:
            raise BadInput(f"{self.id} already has a result")
        status = Status.parse(status) if isinstance(status, str) else status
        self.finished = True
        self._stop.set()
        if self.started:
            _runs().discard(self)
        self.flush()
        final = {**(self._last if status is Status.SUCCESS else {}), **(metrics or {})}
        self._collect()  # where it ran rides on the result line, if the run thread has not collected it yet
        with self._writing:  # the run thread starts no sampler once _stop is set
            sampler = self._sampler
        system: dict[str, Any] = sampler.stop() if sampler else {}
        if self.attached:  # the runner records the status, as the code declares it here
            declared = None if status is Status.SUCCESS else {"status": status.value, "reason": reason or summary}
            change: Transition = Update(metrics=final, summary=summary, attempt=self.attempt, declared=declared)
        else:
            change = Result(status=status, metrics=final, summary=summary, reason=reason, system=system, ended=True)
        updated = self._write("result", change)
        if updated is not _FAILED:
            self.experiment = updated
        self._release()
        return self.experiment

    def _write(self, kind: str, change: Transition | None) -> Any:
        """Apply a transition through the run's own store connection, one write at a time;
        provenance collected since the last write rides along (a short run: no line of its own)."""
        from .lifecycle import Amend, Chain

        with self._writing:
            provenance, self._provenance = self._provenance, None
            steps = ((Amend(provenance=provenance),) if provenance else ()) + ((change,) if change else ())
            updated = self._guard(kind, self.store.apply, self.id, Chain(steps=steps))
            if updated is _FAILED and provenance and self._provenance is None:
                self._provenance = provenance  # not written: keep it for the next write
            return updated

    def _release(self) -> None:
        """Give back what begin() took: the exit hook, sys.excepthook, and the store if the
        run opened it."""
        atexit.unregister(self._at_exit)
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_hook
        if not self.attached:  # under exp run the token is the runner's, released when it finishes
            from .liveness import release

            release(self.experiment.runner)
        if self.owns_store:
            _give_back(self.store)

    # --- the context manager and process exit ----------------------------------------

    def __enter__(self) -> Run:
        return self.begin()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.finished:
            return
        if kind is None:
            self.result()
        elif issubclass(kind, KeyboardInterrupt):
            self.result(Status.CANCELLED, reason="interrupted (KeyboardInterrupt)")
        else:
            self.result(Status.FAILED, reason=f"{kind.__name__}: {error}"[:300])

    def _excepthook(self, kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        self._uncaught = error
        self._previous_hook(kind, error, tb)

    def _at_exit(self) -> None:
        """A script that ends without result(): SUCCESS, or FAILED by an uncaught exception."""
        if self.finished:
            return
        error = self._uncaught
        if isinstance(error, KeyboardInterrupt):
            self.result(Status.CANCELLED, reason="interrupted (KeyboardInterrupt)")
        elif error is not None:
            self.result(Status.FAILED, reason=f"{type(error).__name__}: {error}"[:300])
        else:
            self.result()

    def _collect(self) -> None:
        """Collect where and from what code the run runs, once: by the run thread as soon as
        the run starts, or by result() if the run ended before that thread got to it."""
        with self._collecting:
            if self._collected:
                return
            self._collected = True
            from .provenance import collect

            ledger = getattr(self.store, "path", None)  # a file ledger: its own changes are not the code's state
            found = self._guard("provenance", lambda: collect(
                argv=[sys.executable, *sys.argv], cwd=os.getcwd(), run_dir=lambda: self.store.run_dir(self.experiment),
                ledger_dir=ledger.parent if ledger is not None else None))
            if found is not _FAILED:
                with self._writing:
                    self._provenance = found

    def _tick(self, now: float) -> None:
        """The run thread's second: flush; record the provenance of a run that lasts; heartbeat
        and start sampling the hardware once it has run a second (a shorter run needs neither)."""
        self.flush()
        if now - self._begun < FLUSH_SECONDS:
            return
        if not self._durable:  # a run that lasts: its RUNNING line made durable (a shorter one's result does it)
            self._durable = True
            sync = getattr(self.store, "sync", None)
            if sync is not None:
                self._guard("its record", sync)
        if self._provenance is not None and not self._stop.is_set():
            self._write("provenance", None)
        if self.attached or now < self._next_beat:
            return
        with self._writing:  # result() sets _stop first: no heartbeat or sampler after the run ended
            if self._stop.is_set():
                return
            self._guard("heartbeat", self.store.heartbeat, self.experiment)
            self._next_beat = now + heartbeat_interval()
            if self._sampler is None:  # under a runner, the runner samples the whole process tree
                from . import sysmetrics

                sampler = self._guard("system", lambda: sysmetrics.start(
                    self.store, self.experiment, pid=os.getpid(), visible=os.environ.get("CUDA_VISIBLE_DEVICES"),
                    since=self._begun))
                self._sampler = sampler if sampler not in (None, _FAILED) else False  # False: none for this run

    def _guard(self, kind: str, func: Callable[..., Any], *args: Any) -> Any:
        """Call into the store; any trouble becomes one warning per kind, never an exception,
        so neither training nor the thread that heartbeats stops. _FAILED when it failed."""
        try:
            return func(*args)
        except Exception as err:  # noqa: BLE001 - whatever the store raised, training goes on
            if kind not in self._warned:
                self._warned.add(kind)
                from .log import warn
                from .redact import redact

                warn(redact(f"expledger could not save {kind} for {self.id}: {err}; training goes on"))
            return _FAILED


class _RunThread:
    """The one thread of a process that serves every live run: it collects a new run's
    provenance when asked, and once a second flushes each run's points, records the provenance
    of a run that lasts, heartbeats, and starts the hardware sampler of a run past its first
    second. One thread for all runs, woken only for provenance: a script that makes a thousand
    short runs starts no thread and switches to none per run. Idle for a minute, it ends (the
    next run starts it again)."""

    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.runs: dict[Run, None] = {}  # in the order they began
        self.new: list[Run] = []  # runs whose provenance is still to collect
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None

    def add(self, run: Run) -> None:
        with self.wake:
            self.runs[run] = None
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name="expledger-runs", daemon=True)
                self.thread.start()
            if not run._collected:
                self.new.append(run)
                self.wake.notify()

    def discard(self, run: Run) -> None:
        with self.wake:
            self.runs.pop(run, None)

    def _serve(self) -> None:
        last = idle = time.monotonic()  # the last flush of every run; since when no run is live
        while True:
            with self.wake:
                while not self.new:
                    now = time.monotonic()
                    if self.runs:
                        idle = now
                    elif now - idle > self.IDLE_SECONDS:
                        self.thread = None
                        return
                    due = min([last + FLUSH_SECONDS, *(run._next_beat for run in self.runs)])
                    if due <= now:
                        break
                    self.wake.wait(due - now)
                new, self.new = self.new, []
                runs = list(self.runs)
            for run in new:  # trouble with one run is that run's warning; the thread serves the others on
                run._guard("provenance", run._collect)
            now = time.monotonic()
            every = now >= last + FLUSH_SECONDS
            if every:
                last = now
            for run in runs:  # each run's first heartbeat a second after it began, not at the next common tick
                if not run.finished and (every or now >= run._next_beat):
                    run._guard("its running state", run._tick, now)
                    if run._next_beat <= now:  # no heartbeat came of it (attached, or trouble): not before the next tick
                        run._next_beat = now + FLUSH_SECONDS


_RUNS: _RunThread | None = None
_SHARED = threading.Lock()  # guards _RUNS and _KEPT


def _runs() -> _RunThread:
    """This process's run thread (a forked child starts its own)."""
    global _RUNS
    with _SHARED:
        if _RUNS is None or _RUNS.pid != os.getpid():
            _RUNS = _RunThread()
        return _RUNS


_KEPT: dict[str, Store] = {}  # the store kept open for this process's next run, by where it is
_KEPT_PID = [0]  # the process _KEPT belongs to (a forked child opens its own)
_USERS: dict[Store, int] = {}  # live runs writing through each shared store


def _take_store(url: str) -> Store:
    """The store for a new run of `url`. One that can be shared (a JSONL ledger) stays open
    for the process's next run, so its index connection, what it knows of its own last
    writes and its file-system checks carry over from run to run."""
    from .store import open_store

    key = url if "://" in url or os.path.isabs(url) else os.path.join(os.getcwd(), url)
    with _SHARED:
        if _KEPT_PID[0] != os.getpid():
            _KEPT.clear()
            _USERS.clear()
            _KEPT_PID[0] = os.getpid()
        store = _KEPT.get(key)
        if store is None:
            store = open_store(url)
            if not getattr(store, "shareable", False):
                return store
            for other, kept in list(_KEPT.items()):  # one ledger kept at a time: a test suite opens hundreds
                if not _USERS.get(kept):
                    del _KEPT[other]
                    kept.close()
            _KEPT[key] = store
        _USERS[store] = _USERS.get(store, 0) + 1
        return store


def _give_back(store: Store) -> None:
    """A run is done with its store: a shared one stays open while it is the one kept."""
    with _SHARED:
        users = _USERS.get(store)
        if users is None:
            store.close()
        elif users > 1:
            _USERS[store] = users - 1
        else:
            del _USERS[store]
            if not any(kept is store for kept in _KEPT.values()):
                store.close()


def _after_fork() -> None:
    """A forked child starts afresh: its own run thread and stores, and locks no thread of the
    parent can be holding (the parent's descriptors are its, not the child's, to use)."""
    global _RUNS, _SHARED
    _SHARED = threading.Lock()
    _RUNS = None
    _KEPT.clear()
    _USERS.clear()


os.register_at_fork(after_in_child=_after_fork)


def _runner_attempt() -> int | None:
    """Under a runner, the attempt it claimed (EXP_ATTEMPT): only that attempt may write."""
    text = os.environ.get("EXP_ATTEMPT", "")
    return int(text) if text.isdigit() else None


def _step_number(step: Any) -> int:
    if isinstance(step, bool) or not float(step).is_integer():
        raise BadInput(f"step must be a whole number, not {step!r}")
    return int(step)


def _number(name: Any, value: Any) -> float:
    """A value as the float that will be stored: ints, NumPy and torch scalars; BadInput for
    anything else, or an int too large for a float."""
    if isinstance(value, bool):
        raise BadInput(f"metric {name!r} must be a number, not true/false")
    try:
        return float(value)
    except OverflowError:
        raise BadInput(f"metric {name!r}: {value!r:.40} is too large to store as a number") from None
    except (TypeError, ValueError):
        raise BadInput(f"metric {name!r} must be a number, not {type(value).__name__}") from None


def _check_name(name: Any) -> None:
    """A metric name the step format can hold: text of at most 65,535 UTF-8 bytes."""
    if not isinstance(name, str):
        raise BadInput(f"a metric name must be text, not {type(name).__name__} ({name!r:.40})")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise BadInput(f"metric name is too long ({len(name)} characters; at most {MAX_NAME_BYTES} bytes)")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"metric name {name!r:.40} is not valid text (a lone surrogate)") from None


def start(name: str | None = None, *, task: str | None = None, model: str | None = None,
          params: dict[str, Any] | None = None, tags: list[Any] | tuple[Any, ...] = (), command: str | None = None,
          machine: str | None = None, store: str | None = None) -> Run:
    """Start (or, under `exp run`, attach to) an experiment and return its Run.

    Args:
        name: a short human name (default: the script's name).
        task, model, params, tags, command, machine: as for `exp add`.
        store: a store URL (default: as the CLI resolves it).
    """
    from .config import resolve_machine, resolve_store
    from .store import open_store

    if os.environ.get("EXP_ID") and not store:
        opened = open_store(os.environ.get("EXP_STORE") or resolve_store()[0])
        experiment = opened.get(os.environ["EXP_ID"])
        if task or model or params or tags:  # what the code says it runs goes on the record
            from .lifecycle import Update

            experiment = opened.apply(experiment.id, Update(task=task, model=model, params=params, tags=tuple(tags),
                                                            attempt=_runner_attempt()))
        return Run(opened, experiment, attached=True, owns_store=True).begin()
    opened = _take_store(resolve_store(store)[0])
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    unsynced = getattr(opened, "unsynced", None)  # the result line's fsync makes the RUNNING one durable
    try:
        with unsynced() if unsynced else contextlib.nullcontext():
            experiment = opened.add(
                name=name or script, task=task, model=model, params=params or {}, tags=tags,
                command=command or " ".join([os.path.basename(sys.executable), *sys.argv]),
                machine=resolve_machine(machine), status=Status.RUNNING, runner=runner_info(),
            )
    except BaseException:
        _give_back(opened)
        raise
    return Run(opened, experiment, owns_store=True).begin()
