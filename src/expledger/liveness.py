"""Is the process that runs an experiment still there? So no experiment stays RUNNING forever.

On the runner's own host the answer is immediate: the PID must exist, not be a zombie, and
be the same process (its start time in /proc guards against a reused PID). From another
host only the heartbeat can tell: it must be younger than the lease.

A record's runner fields may come from anywhere (a merge, a shared database), so on this
host they are believed only when verified: each runner writes a token file, readable by its
user only, naming its PID and start time, and the record must carry that token. A record
that names some other process of ours is not ours: it is neither signalled nor kept alive.
"""

from __future__ import annotations

import json
import os
import re
import stat

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
    if pid == _OWN_START[0] and pid == os.getpid():
        return _OWN_START[1]  # our own never changes: read once per process (a script starting many runs)
    fields = _proc_stat(pid)
    found = fields[19] if fields and len(fields) > 19 else None
    if pid == os.getpid():
        _OWN_START[:] = [pid, found]
    return found


_OWN_START: list = [0, None]  # [pid, its start time] of this process


def runner_info(pid: int | None = None) -> dict:
    """What identifies a running process: host, PID, its start time, and a token whose file
    (written here, readable by this user only) proves the record was made by this runner."""
    import secrets

    pid = pid or os.getpid()
    info = {"host": this_host(), "pid": pid, "pid_start": process_start(pid), "token": secrets.token_hex(16)}
    path = _token_file(info["token"])
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"pid": pid, "pid_start": info["pid_start"]}, handle)
    except OSError:
        pass  # no place for the token: the run works, but `exp cancel` cannot verify it
    return info


_TOKEN = re.compile(r"[0-9a-f]{32}")


def _token_file(token: str):
    from .config import runtime_dir

    return runtime_dir() / "runners" / token


def verified(runner: dict) -> bool:
    """Whether `runner` is provably a runner this host started, still running: its token
    file exists, is ours, and names the same PID and start time as the record."""
    token = runner.get("token")
    if runner.get("host") != this_host() or not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return False
    path = _token_file(token)
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return False
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pid = runner.get("pid")
    if not isinstance(held, dict) or held.get("pid") != pid or held.get("pid_start") != runner.get("pid_start"):
        return False
    return type(pid) is int and pid > 0 and _process_alive(pid, held.get("pid_start"))


def release(runner: dict) -> None:
    """Remove a finished runner's token file."""
    token = runner.get("token")
    if isinstance(token, str) and _TOKEN.fullmatch(token):
        _token_file(token).unlink(missing_ok=True)


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
        if not verified(runner):  # dead, or a process this host's runners never claimed
            return False
    return heartbeat_age is None or heartbeat_age < (lease or lease_seconds())


def group_gone(runner: dict, *, wait: float = 2.0) -> bool:
    """Whether the process group of a lost run's command is gone; on this host a group that
    is still there (its runner paused, say) is killed first. Another host's is its own business."""
    import signal
    import time

    pgid = runner.get("pgid")
    if not pgid or runner.get("host") != this_host() or "exit_code" in runner:
        return True
    if not _process_alive(int(pgid), runner.get("pgid_start")):
        return True  # the leader (the guard) is gone, and with it the group
    try:
        os.killpg(int(pgid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return True
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not _process_alive(int(pgid), runner.get("pgid_start")):
            return True
        time.sleep(0.05)
    return False
