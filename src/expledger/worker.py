"""`exp worker`: take queued experiments and run them, one at a time or side by side on GPUs.

Each claim is atomic (store.claim: highest priority, then oldest). A worker takes only what
it can run here and leaves the rest QUEUED for a machine that can: an experiment targeted at
another machine, one whose folder is not here, one that needs more GPUs than are free. The
folder is this checkout's copy of the one it was added from (its path relative to the git
repository's top), else that absolute path, else --workdir for everything. GPUs are a pool:
each run takes its `gpus` (else --gpus-per-run) and gets them in CUDA_VISIBLE_DEVICES.
A run's attempt number fences every write, so a worker that lost its claim (paused past its
lease, its run re-queued and taken by another) cannot overwrite anything. Between claims it
reaps lost runs: re-queued while attempts remain, else FAILED.
SIGINT/SIGTERM: stop taking work; finish what runs (default) or give it back (re-queue).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from . import models, output
from .errors import ExpledgerError
from .liveness import heartbeat_interval, runner_info
from .models import Experiment
from .runner import Execution, Outcome


@dataclass
class WorkerOptions:
    """How a worker behaves; see `exp worker --help`."""

    machine: str | None = None
    gpus: list[str] = field(default_factory=list)
    gpus_per_run: int = 1
    where: object = None  # a parsed --where
    max_runs: int | None = None
    until_empty: bool = False
    retries: int = 0
    workdir: str | None = None
    poll: float = 0.5
    on_stop: str = "finish"  # or "requeue"
    quiet_stdout: bool = False
    on_finish: str | None = None  # a command given each ended experiment's JSON on stdin


class Worker:
    def __init__(self, url: str, options: WorkerOptions, *, report=print):
        from .config import repo_top

        self.url = url
        self.options = options
        self.report = report
        self.free = list(options.gpus)  # the GPUs no run holds
        self.running: dict[str, tuple[list[str], Execution | None]] = {}  # by experiment ID
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.stop_reason = ""
        self.given_back: set[str] = set()
        self.claimed = 0
        self.repo = repo_top(os.getcwd())
        self.identity = runner_info()
        self.started = models.now_iso()
        self.beat_failed = False

    def stop(self, why: str) -> None:
        """Stop taking work. Safe in a signal handler: it only sets flags; the main loop acts."""
        self.stop_reason = why
        self.stopping.set()
        self.wake.set()

    def _give_back(self, execution: Execution, why: str) -> None:
        from .lifecycle import Requeue
        from .store import open_store

        try:
            with open_store(self.url) as store:
                store.apply(execution.exp.id, Requeue(reason=f"worker stopped: {why}", attempt=execution.attempt,
                                                      ended_as="CANCELLED"))
        except ExpledgerError:
            pass  # finished or lost meanwhile
        execution.stop(f"re-queued: {why}")

    def run(self) -> list[Outcome]:
        from .store import open_store

        with open_store(self.url) as store:
            next_beat = 0.0
            while not self.stopping.is_set():
                store.refresh()
                if time.monotonic() >= next_beat:
                    for lost in store.reap_lost():
                        self.report(f"{lost.id} {lost.status.value}: {lost.failed_reason or lost.runner.get('requeued')}")
                        if lost.status.finished:
                            self._ended(lost)
                    self._beat(store)
                    next_beat = time.monotonic() + heartbeat_interval()
                took = self._fill(store)
                if took:
                    self._beat(store)  # the fleet sees what it took at once
                if self._done(took):
                    break
                self.wake.wait(self.options.poll)
                self.wake.clear()
            while self.running:  # stopping: finish what runs, or give it back; still beating
                if self.options.on_stop == "requeue":
                    for _, execution in list(self.running.values()):
                        if execution is not None and execution.exp.id not in self.given_back:
                            self.given_back.add(execution.exp.id)
                            self._give_back(execution, self.stop_reason)
                if time.monotonic() >= next_beat:
                    self._beat(store)
                    next_beat = time.monotonic() + heartbeat_interval()
                self.wake.wait(0.2)
                self.wake.clear()
            self._beat(store, stopped=True)
        return self.outcomes

    def _ended(self, exp: Experiment) -> None:
        from .hooks import on_finish

        on_finish(self.options.on_finish, exp, warn=lambda message: self.report(f"warning: {message}"))

    def describe(self, *, stopped: bool = False) -> dict:
        """What `exp workers` shows of this worker."""
        with self.lock:
            held = [{"id": exp_id, "gpus": ",".join(gpus)} for exp_id, (gpus, _) in sorted(self.running.items())]
        return {"id": f"{self.identity['host']}:{self.identity['pid']}", **self.identity,
                "machine": self.options.machine, "gpus": self.options.gpus, "gpus_per_run": self.options.gpus_per_run,
                "running": held, "ran": len(self.outcomes), "started": self.started,
                **({"stopped": models.now_iso()} if stopped else {})}

    def _beat(self, store, *, stopped: bool = False) -> None:
        try:
            store.beat_worker(self.describe(stopped=stopped))
        except (ExpledgerError, NotImplementedError) as err:
            if not self.beat_failed:  # the registry is a view: the work goes on without it
                self.beat_failed = True
                self.report(f"not registered in the store: {err}")

    def _done(self, took: bool) -> bool:
        limit = self.options.max_runs
        if limit is not None and self.claimed >= limit and not self.running:
            return True
        return self.options.until_empty and not took and not self.running

    # --- what this worker can run ------------------------------------------------------

    def folder_for(self, exp: Experiment) -> str | None:
        """Where to run `exp` on this machine, or None when its folder is not here."""
        if self.options.workdir:
            return self.options.workdir
        if exp.repo_path is not None and self.repo is not None:
            mine = self.repo / exp.repo_path
            if mine.is_dir():
                return str(mine)
        if exp.workdir:
            return exp.workdir if os.path.isdir(exp.workdir) else None
        return None if exp.repo_path is not None else os.getcwd()

    def _gpus_needed(self, exp: Experiment) -> int:
        return exp.gpus or (self.options.gpus_per_run if self.options.gpus else 0)

    def _fits(self):
        """A condition for what fits in the free GPUs now, or None when nothing can start."""
        from .query import Compare, Exists, Not, Or

        if not self.options.gpus:  # no GPUs: one run at a time, and nothing that asks for GPUs
            return None if self.running else Not(Exists(("gpus",)))
        free = len(self.free)
        if free == 0:
            return None
        fits = Compare(("gpus",), "<=", free)
        return Or((fits, Not(Exists(("gpus",))))) if self.options.gpus_per_run <= free else fits

    def why_not(self, exp: Experiment, matched: bool) -> str:
        """Why this worker leaves a queued experiment (`matched`: its --where/--task let it in)."""
        if not exp.command:
            return "no command: it waits for exp run --id"
        if exp.machine and self.options.machine and exp.machine != self.options.machine:
            return f"for machine {exp.machine}"
        if self._gpus_needed(exp) > len(self.options.gpus):
            return f"needs {exp.gpus} GPUs, this worker has {len(self.options.gpus)}"
        if self.folder_for(exp) is None:
            return (f"its folder {exp.repo_path or exp.workdir} is not here (start the worker in a checkout of "
                    "its repository, or pass --workdir)")
        if not matched:
            return "not matched by this worker's --where/--task"
        return "queued as this worker stopped"

    def left(self) -> list[tuple[Experiment, str]]:
        """The queued experiments this worker leaves, each with the reason."""
        from .store import open_store

        with open_store(self.url) as store:
            queued = store.queue()
            matched = {exp.uuid for exp in store.queue(where=self.options.where)} if self.options.where else None
        return [(exp, self.why_not(exp, matched is None or exp.uuid in matched)) for exp in queued]

    # --- taking and running -------------------------------------------------------------

    def _runner(self, exp: Experiment) -> dict:
        """What the claim records about this worker's process, with the GPUs it gives the run."""
        with self.lock:
            gpus = self.free[:self._gpus_needed(exp)]
        return {**runner_info(), "worker": True, **({"gpus": ",".join(gpus)} if gpus else {})}

    def _fill(self, store) -> bool:
        """Claim work while GPUs (or the one CPU slot) are free; whether anything was claimed."""
        took = False
        while not self.stopping.is_set():
            if self.options.max_runs is not None and self.claimed >= self.options.max_runs:
                break
            fits = self._fits()
            if fits is None:
                break
            where = fits if self.options.where is None else _both(fits, self.options.where)
            exp = store.claim(machine=self.options.machine, where=where, runner=self._runner,
                              retries=self.options.retries, accept=self.folder_for)
            if exp is None:
                break
            took = True
            self.claimed += 1
            gpus = [g for g in exp.runner.get("gpus", "").split(",") if g]
            with self.lock:
                self.free = [g for g in self.free if g not in gpus]
                self.running[exp.id] = (gpus, None)
            slot_text = f" on GPUs {','.join(gpus)}" if gpus else ""
            self.report(f"{exp.id} claimed (attempt {exp.runner['attempt']}){slot_text}: {output.printable(exp.command)}")
            threading.Thread(target=self._execute, args=(exp, gpus), daemon=True).start()
        return took

    def _execute(self, exp: Experiment, gpus: list[str]) -> None:
        from .lifecycle import Requeue
        from .store import open_store

        try:
            with open_store(self.url) as store:
                env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {}
                folder = self.folder_for(exp)
                if folder is None:  # gone since the claim: never run code from the wrong folder
                    store.apply(exp.id, Requeue(reason="its folder disappeared from this machine",
                                                attempt=exp.runner.get("attempt")))
                    self.report(f"{exp.id} re-queued: its folder disappeared from this machine")
                    return
                execution = Execution(store, exp, exp.command, shell=True, cwd=folder, env=env,
                                      quiet_stdout=self.options.quiet_stdout)
                self.running[exp.id] = (gpus, execution)
                outcome = execution.run()
                self.outcomes.append(outcome)
                self.report(output.result_line(outcome.experiment))
                self._ended(outcome.experiment)
        except ExpledgerError as err:
            self.report(f"{exp.id}: {err}")
        finally:
            with self.lock:
                self.running.pop(exp.id, None)
                self.free = [g for g in self.options.gpus if g in self.free or g in gpus]
            self.wake.set()


def _both(first, second):
    from .query import And

    return And((first, second))


def idle_gpus(gpus: list[str], per_run: int) -> list[str]:
    """GPUs that runs of `per_run` GPUs each never use (4 GPUs, 3 a run: the fourth)."""
    return gpus[len(gpus) - len(gpus) % per_run:] if gpus and per_run else []


def install_signal_handlers(worker: Worker) -> None:
    """First SIGINT/SIGTERM: stop claiming (and re-queue if asked); a second one: re-queue now.
    Each says what the worker still waits for and what another signal would do."""

    def handle(number, frame):
        name = signal.Signals(number).name
        waiting = ", ".join(sorted(worker.running))
        if worker.stopping.is_set() or worker.options.on_stop == "requeue":
            worker.options.on_stop = "requeue"
            message = f"stopping {waiting} and putting it back in the queue" if waiting else "stopping"
        elif waiting:
            again = "press Ctrl-C again" if number == signal.SIGINT else f"send {name} again"
            message = f"taking no more work; waiting for {waiting} to finish ({again} to stop it and put it back in the queue)"
        else:
            message = "taking no more work"
        print(f"worker: {name}: {message}", file=sys.stderr, flush=True)
        worker.stop(name)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handle)

