"""Is the process that runs an experiment still there? So no experiment stays RUNNING forever.

On the runner's own host the answer is immediate: the PID must exist, not be a zombie, and
be the same process (its start time in /proc guards against a reused PID). From another
host only the heartbeat can tell: it must be younger than the lease.
"""

from __future__ import annotations

import os

DEFAULT_LEASE = 120.0  # seconds without a heartbeat before another host calls a run lost
DEFAULT_INTERVAL = 10.0  # seconds between heartbeats


def lease_seconds() -> float:
    return float(os.environ.get("EXP_LEASE") or DEFAULT_LEASE)


def heartbeat_interval() -> float:
    return float(os.environ.get("EXP_HEARTBEAT") or DEFAULT_INTERVAL)


def this_host() -> str:
    return os.uname().nodename


def who() -> str:
    """user@host, as a cancellation records who made it."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{this_host()}"


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # fields from 3 (state) on; the name may hold spaces


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def runner_info(pid: int | None = None) -> dict:
    """What identifies a running process: host, PID and its start time."""
    pid = pid or os.getpid()
    return {"host": this_host(), "pid": pid, "pid_start": process_start(pid)}


def _process_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _proc_stat(pid)
    if fields is None:
        return not os.path.isdir("/proc")  # no /proc (macOS): the PID exists, trust it
    if fields[0] in ("Z", "X"):
        return False
    return start is None or process_start(pid) == start


def is_alive(runner: dict, heartbeat_age: float | None, *, lease: float | None = None) -> bool:
    """Whether the runner described by `runner` is still at work.

    On its own host a dead PID settles it at once; a live one that stopped heartbeating
    (paused, hung) is lost after the lease too, as it is from any other host.
    """
    if runner.get("host") == this_host() and runner.get("pid"):
        if not _process_alive(int(runner["pid"]), runner.get("pid_start")):
            return False
    return heartbeat_age is None or heartbeat_age < (lease or lease_seconds())
