"""`exp worker`: take queued experiments and run them, one at a time or in GPU slots.

Each slot claims the next experiment atomically (store.claim: highest priority, then oldest,
targeted at this machine or at none), runs its command through the shell in the folder it
was added from (or --workdir) exactly as `exp run` would, with CUDA_VISIBLE_DEVICES set to
the slot's GPUs. Its attempt number fences every write, so a worker that lost its claim
(paused past its lease, its run re-queued and taken by another) cannot overwrite anything.
Between claims it reaps lost runs: re-queued while attempts remain, else FAILED.
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
from .models import Experiment, Status
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


class Worker:
    def __init__(self, url: str, options: WorkerOptions, *, report=print):
        self.url = url
        self.options = options
        self.report = report
        gpus, size = options.gpus, options.gpus_per_run
        self.slots: list[list[str] | None] = [gpus[i:i + size] for i in range(0, len(gpus) - size + 1, size)] or [None]
        self.running: dict[int, tuple[threading.Thread, Execution | None]] = {}
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.stop_reason = ""
        self.given_back: set[str] = set()
        self.claimed = 0

    def stop(self, why: str) -> None:
        """Stop taking work. Safe in a signal handler: it only sets flags; the main loop acts."""
        self.stop_reason = why
        self.stopping.set()
        self.wake.set()

    def _give_back(self, execution: Execution, why: str) -> None:
        from .store import open_store

        try:
            with open_store(self.url) as store:
                store.modify(execution.exp.id, lambda exp, now: models.requeue(
                    exp, reason=f"worker stopped: {why}", attempt=execution.attempt))
        except ExpledgerError:
            pass  # finished or lost meanwhile
        execution.stop(f"re-queued: {why}")

    def run(self) -> list[Outcome]:
        from .store import open_store

        with open_store(self.url) as store:
            next_reap = 0.0
            while not self.stopping.is_set():
                if time.monotonic() >= next_reap:
                    for lost in store.reap_lost():
                        self.report(f"{lost.id} {lost.status.value}: {lost.failed_reason or lost.runner.get('requeued')}")
                    next_reap = time.monotonic() + heartbeat_interval()
                took = self._fill(store)
                if self._done(took):
                    break
                self.wake.wait(self.options.poll)
                self.wake.clear()
        while self.running:  # stopping: finish what runs, or give it back
            if self.options.on_stop == "requeue":
                for _, execution in list(self.running.values()):
                    if execution is not None and execution.exp.id not in self.given_back:
                        self.given_back.add(execution.exp.id)
                        self._give_back(execution, self.stop_reason)
            self.wake.wait(0.2)
            self.wake.clear()
        return self.outcomes

    def _done(self, took: bool) -> bool:
        limit = self.options.max_runs
        if limit is not None and self.claimed >= limit and not self.running:
            return True
        return self.options.until_empty and not took and not self.running

    def _fill(self, store) -> bool:
        """Claim work for every free slot; whether anything was claimed."""
        took = False
        for index, gpus in enumerate(self.slots):
            if index in self.running or self.stopping.is_set():
                continue
            if self.options.max_runs is not None and self.claimed >= self.options.max_runs:
                break
            exp = store.claim(machine=self.options.machine, where=self.options.where,
                              runner={**runner_info(), "worker": True}, max_attempts=self.options.retries + 1)
            if exp is None:
                break
            took = True
            self.claimed += 1
            slot_text = f" on GPUs {','.join(gpus)}" if gpus else ""
            self.report(f"{exp.id} claimed (attempt {exp.runner['attempt']}){slot_text}: {output.printable(exp.command)}")
            thread = threading.Thread(target=self._execute, args=(index, exp, gpus), daemon=True)
            self.running[index] = (thread, None)
            thread.start()
        return took

    def _execute(self, index: int, exp: Experiment, gpus: list[str] | None) -> None:
        from .store import open_store

        try:
            with open_store(self.url) as store:
                env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {}
                workdir = self.options.workdir or exp.workdir or os.getcwd()
                if not os.path.isdir(workdir):  # never run code from the wrong folder
                    exp = store.modify(exp.id, lambda current, now: models.record_result(
                        current, status=Status.FAILED, reason=f"folder {workdir} does not exist on this machine; "
                        "start the worker with --workdir", attempt=exp.runner.get("attempt"), now=now))
                    self.outcomes.append(Outcome(exp, 2))
                    self.report(output.result_line(exp))
                    return
                execution = Execution(store, exp, exp.command, shell=True, cwd=workdir, env=env,
                                      quiet_stdout=self.options.quiet_stdout)
                self.running[index] = (threading.current_thread(), execution)
                outcome = execution.run()
                self.outcomes.append(outcome)
                self.report(output.result_line(outcome.experiment))
        except ExpledgerError as err:
            self.report(f"{exp.id}: {err}")
        finally:
            self.running.pop(index, None)
            self.wake.set()


def install_signal_handlers(worker: Worker) -> None:
    """First SIGINT/SIGTERM: stop claiming (and re-queue if asked); a second one: re-queue now."""

    def handle(number, frame):
        name = signal.Signals(number).name
        if worker.stopping.is_set():
            worker.options.on_stop = "requeue"
        print(f"worker: {name}: taking no more work", file=sys.stderr)
        worker.stop(name)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handle)
