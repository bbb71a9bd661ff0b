"""Run an experiment's command and record everything: `exp run` and the worker use this.

The child runs in its own process group, under expledger.guard, which stops that whole group
if the runner dies (kill -9 included), with EXP_ID, EXP_DIR, EXP_METRICS_FILE and
EXP_STORE set. Its stdout and stderr are shown live and saved in the run folder; its
provenance is collected in a thread while it runs; a heartbeat says the run is alive and
notices a cancellation made elsewhere. The outcome comes from the exit status: SUCCESS on 0,
else FAILED with a reason read from the output's tail; CANCELLED when stopped.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import models
from .errors import ExpledgerError, IllegalTransition
from .liveness import heartbeat_interval
from .models import Experiment, Status
from .reasons import failure_reason

GRACE_SECONDS = 10.0  # between SIGTERM and SIGKILL when a run is stopped
TAIL_LINES = 60
OUTPUT_TAIL_BYTES = 64 * 1024  # how much of a run's output travels into the store with its heartbeats


@dataclass
class Outcome:
    experiment: Experiment
    exit_code: int


def _death_signal():
    """A preexec function (Linux) that has the kernel send SIGTERM to the child when the
    runner's thread dies; ctypes is loaded here, before the fork, not in the child."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_GUARD = "import sys; sys.path.insert(0, sys.argv.pop(1)); from expledger.guard import main; sys.exit(main(sys.argv[1:]))"


def guarded(argv: list[str] | str, *, shell: bool) -> list[str]:
    """The command line that runs `argv` under expledger.guard (see there), which stops the
    command's whole process group when this runner dies."""
    package_parent = str(Path(__file__).resolve().parent.parent)  # also inside a zipapp
    command = ["--shell", argv] if shell else list(argv)
    return [sys.executable, "-I", "-S", "-c", _GUARD, package_parent, str(os.getpid()), "--", *command]


class OutputTail:
    """The last bytes of a run's output, stdout and stderr as they came, for the store: so
    `exp show` and `exp logs` work from a machine that cannot see the run folder."""

    def __init__(self, limit: int = OUTPUT_TAIL_BYTES):
        self.limit = limit
        self.lock = threading.Lock()
        self.buffer = bytearray()
        self.total = 0  # bytes seen in all, so a reader knows what it has not seen yet
        self.sent = 0

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.buffer += chunk
            self.total += len(chunk)
            if len(self.buffer) > self.limit:
                del self.buffer[: len(self.buffer) - self.limit]

    def send(self, store, exp: Experiment) -> None:
        """Write the tail to the store if anything came since the last time."""
        with self.lock:
            if self.total == self.sent:
                return
            total, tail = self.total, bytes(self.buffer)
        store.put_output(exp, total, tail)
        self.sent = total


class _Pump(threading.Thread):
    """Copy one of the child's streams to a file and (optionally) a terminal; keep its tail."""

    def __init__(self, source, log_path: Path, echo, output: OutputTail):
        super().__init__(daemon=True)
        self.source, self.log_path, self.echo, self.output = source, log_path, echo, output
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def run(self) -> None:
        partial = b""
        with open(os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
            while chunk := os.read(self.source.fileno(), 65536):
                log.write(chunk)
                log.flush()
                self.output.add(chunk)
                if self.echo is not None:
                    try:
                        self.echo.write(chunk)
                        self.echo.flush()
                    except (OSError, ValueError):
                        self.echo = None  # the terminal went away; keep logging
                *lines, partial = (partial + chunk).split(b"\n")
                self.tail.extend(line.decode("utf-8", "replace") for line in lines)
        if partial:
            self.tail.append(partial.decode("utf-8", "replace"))


class Execution:
    """One run of one claimed (RUNNING) experiment's command."""

    def __init__(self, store, exp: Experiment, argv: list[str] | str, *, shell: bool = False,
                 cwd: str | Path | None = None, env: dict | None = None, quiet_stdout: bool = False):
        self.store, self.exp, self.argv, self.shell = store, exp, argv, shell
        self.cwd = Path(cwd or os.getcwd()).absolute()
        self.extra_env = env or {}
        self.quiet_stdout = quiet_stdout
        self.attempt = exp.runner.get("attempt")
        self.run_dir = store.run_dir(exp)
        self.stop_reason: str | None = None
        self.system: dict = {}  # peaks of the hardware use, from sysmetrics
        self.proc: subprocess.Popen | None = None
        self._done = threading.Event()
        self.output = OutputTail()

    # --- stopping ------------------------------------------------------------------

    def stop(self, why: str) -> None:
        """Stop the child: SIGTERM to its group, SIGKILL after the grace period."""
        if self.stop_reason is None:
            self.stop_reason = why
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        grace = float(os.environ.get("EXP_GRACE") or GRACE_SECONDS)
        timer = threading.Timer(grace, lambda: proc.poll() is None and _signal_group(proc, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def _watch(self) -> None:
        """Heartbeat, and stop the child if the experiment was cancelled or claimed elsewhere.

        Trouble with the store (a database restart) never stops the heartbeats: each beat is
        tried again at the next interval, with one warning, so a live run is not called lost.
        """
        from .log import warn
        from .redact import redact
        from .store import open_store

        interval, store, warned = heartbeat_interval(), None, False
        while not self._done.wait(interval):
            try:
                store = store or open_store(self.store.url)
                store.heartbeat(self.exp)
                self.output.send(store, self.exp)
                current = store.get(self.exp.id)
                if current.status is not Status.RUNNING or current.runner.get("attempt") != self.attempt:
                    self.stop(f"{current.status.value.lower()} elsewhere")
            except ExpledgerError as err:  # a database restart: try again at the next beat, say so once
                if not warned:
                    warned = True
                    warn(redact(f"heartbeat failed, retrying: {err}"))
        if store is not None:
            store.close()

    def _record_provenance(self) -> None:
        from .provenance import record

        record(self.store, self.exp, argv=self.argv, cwd=self.cwd, env=self.env, attempt=self.attempt)

    # --- running -------------------------------------------------------------------

    @property
    def env(self) -> dict:
        return {
            **os.environ, **self.extra_env,
            "EXP_ID": self.exp.id, "EXP_DIR": str(self.run_dir), "EXP_STORE": self.store.url,
            "EXP_METRICS_FILE": str(self.run_dir / "metrics.json"), "EXP_ATTEMPT": str(self.attempt),
        }

    def run(self) -> Outcome:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # logs are the owner's only
        (self.run_dir / "metrics.json").unlink(missing_ok=True)  # an earlier attempt's metrics are not ours
        self.store.heartbeat(self.exp)
        started = time.monotonic()
        try:
            if not self.shell:
                _check_runnable(self.argv[0], self.cwd)
            self.proc = subprocess.Popen(
                guarded(self.argv, shell=self.shell), cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_death_signal(),
            )
        except OSError as err:
            name = self.argv if isinstance(self.argv, str) else self.argv[0]
            reason = (f"command not found: {name}" if isinstance(err, FileNotFoundError)
                      else f"cannot run {name}: {err.strerror}")
            return self._finish(Status.FAILED, reason, {"exit_code": 127}, 127)
        self._note_group()
        out_echo = sys.stderr.buffer if self.quiet_stdout else sys.stdout.buffer
        pumps = [_Pump(self.proc.stdout, self.run_dir / "stdout.log", out_echo, self.output),
                 _Pump(self.proc.stderr, self.run_dir / "stderr.log", sys.stderr.buffer, self.output)]
        helpers = [threading.Thread(target=self._watch, daemon=True),
                   threading.Thread(target=self._record_provenance, daemon=True)]
        for thread in pumps + helpers:
            thread.start()
        from . import sysmetrics

        sampler = sysmetrics.start(self.store, self.exp, pid=self.proc.pid,
                                   visible=self.env.get("CUDA_VISIBLE_DEVICES"))
        code = self.proc.wait()
        self._done.set()
        self.system = sampler.stop() if sampler else {}
        for thread in pumps + helpers[1:]:
            thread.join(timeout=30)
        runner = {"exit_code": code, "duration": round(time.monotonic() - started, 3), "child_pid": self.proc.pid,
                  "dir": str(self.run_dir)}
        if code < 0:
            runner["signal"] = -code
        exit_code = code if code >= 0 else 128 - code
        tail = [line for pump in pumps for line in pump.tail]
        try:
            self.output.send(self.store, self.exp)  # the last of it, before the outcome is recorded
        except ExpledgerError as err:
            from .log import warn
            from .redact import redact

            warn(redact(f"the output of {self.exp.id} did not reach the store: {err}"))
        if self.stop_reason:
            return self._finish(Status.CANCELLED, f"stopped: {self.stop_reason}", runner, exit_code)
        if code == 0:
            return self._finish(Status.SUCCESS, None, runner, exit_code)
        return self._finish(Status.FAILED, failure_reason(code, tail), runner, exit_code)

    def _note_group(self) -> None:
        """Record the command's process group, so a reaper on this host can make sure it is
        gone before the run is retried (liveness.group_gone)."""
        from .lifecycle import Amend
        from .liveness import process_start

        group = {"pgid": self.proc.pid, "pgid_start": process_start(self.proc.pid)}
        try:
            self.exp = self.store.apply(self.exp.id, Amend(runner=group, attempt=self.attempt))
        except ExpledgerError:
            pass  # claimed elsewhere already: the heartbeat stops the command

    def _written_metrics(self) -> tuple[dict, list[str]]:
        """The numbers the child wrote to EXP_METRICS_FILE (a JSON object), and warnings about
        what was left out: one bad entry never costs the others."""
        path = self.run_dir / "metrics.json"
        if not path.exists():
            return {}, []
        try:
            written = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as err:
            return {}, [f"EXP_METRICS_FILE ignored: not valid JSON ({err})"]
        if not isinstance(written, dict):
            return {}, ["EXP_METRICS_FILE ignored: not a JSON object"]
        kept, dropped = {}, []
        for name, value in written.items():
            try:
                kept.update(models.check_metrics({name: value}))
            except ExpledgerError:
                dropped.append(name)
        if not dropped:
            return kept, []
        return kept, [f"EXP_METRICS_FILE: {', '.join(map(repr, dropped))} left out (not a number or a list of "
                      f"numbers); {len(kept)} other entries kept"]

    def _finish(self, status: Status, reason: str | None, runner: dict, exit_code: int) -> Outcome:
        runner = {**runner, "dir": str(self.run_dir), "ended": models.now_iso()}
        # A run's last logged values are its final metrics only when it succeeded: a failed or
        # stopped run keeps them in its step series, so it never enters a ranking by them.
        last_logged = self.store.last_steps(self.exp) if status is Status.SUCCESS else {}
        written, warnings = self._written_metrics()
        if warnings:
            from .log import warn

            for warning in warnings:
                warn(f"{self.exp.id}: {warning}")
        if warnings:
            runner["warnings"] = warnings

        from .lifecycle import Amend, Finish

        # Final metrics: the metrics file wins, then what the API recorded, then the last logged step.
        verdict = Finish(status=status, reason=reason, metrics=written, fallback=last_logged, system=self.system,
                         runner=runner, attempt=self.attempt)
        try:
            final = self.store.apply(self.exp.id, verdict)
        except IllegalTransition:  # cancelled or re-claimed meanwhile: keep that, add how we ended
            try:
                final = self.store.apply(self.exp.id, Amend(system=self.system, runner=runner, attempt=self.attempt))
            except IllegalTransition:
                final = self.store.get(self.exp.id)
        finally:
            from .liveness import release

            release(self.exp.runner)  # recorded: nothing is left to signal, and no reader calls it lost
        return Outcome(final, exit_code)


def _check_runnable(name: str, cwd: Path) -> None:
    """FileNotFoundError or PermissionError now, as a direct exec would raise them."""
    import errno
    import shutil

    if os.sep in name:
        path = Path(cwd, name)
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        if not os.access(path, os.X_OK) or path.is_dir():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    elif shutil.which(name) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


def _signal_group(proc: subprocess.Popen, number: int) -> None:
    try:
        os.killpg(proc.pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def stop_local(exp: Experiment) -> str | None:
    """Stop the process running a (just cancelled) experiment if it runs on this host.

    Its runner (exp run, the Python API) then stops the command; a worker, or a runner on
    another host, sees the cancellation at its next heartbeat. Only a process proven to be
    this host's runner of this attempt (liveness.verified) is signalled. Returns
    "signalled", "unverified" (the record names a process here that is not provably its
    runner: left alone) or None (nothing to stop here).
    """
    from .liveness import _process_alive, this_host, verified

    runner = exp.runner
    if runner.get("host") != this_host() or not runner.get("pid") or "exit_code" in runner:
        return None
    if runner.get("worker"):
        return None  # the pid is the worker's: its heartbeat sees the cancellation and stops the run
    if not verified(runner):
        pid = runner.get("pid")
        alive = type(pid) is int and 0 < pid < 2**31 and _process_alive(pid, runner.get("pid_start"))
        return "unverified" if alive else None
    try:
        os.kill(runner["pid"], signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return None
    return "signalled"
