"""`python -m expledger.guard RUNNER_PID -- CMD…`: the process between a runner and its command.

A runner (`exp run`, a worker) starts its command through this guard, in a session of its
own, so the command and everything it starts (a shell's children included) share the
guard's process group. The kernel tells the guard when its runner dies (PR_SET_PDEATHSIG,
set by the runner before exec); the guard then stops the whole group: SIGTERM, and SIGKILL
after the grace period. So a command never outlives a killed runner and never runs twice
beside its retry. Otherwise the guard only waits, and ends as its command ended (the same
exit code, or the same signal).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

_stopping = False


def _stop_group(number, frame) -> None:
    """SIGTERM (the runner died, or stops the run): SIGTERM to the group, SIGKILL after the grace."""
    global _stopping
    if _stopping:
        return  # our own SIGTERM to the group reaches us too
    _stopping = True
    signal.signal(signal.SIGALRM, lambda number, frame: os.killpg(0, signal.SIGKILL))
    os.killpg(0, signal.SIGTERM)
    signal.alarm(max(1, round(float(os.environ.get("EXP_GRACE") or 10))))


def main(argv: list[str]) -> int:
    runner, command = int(argv[0]), argv[2:]
    signal.signal(signal.SIGTERM, _stop_group)
    if os.getppid() != runner:  # the runner died before its death signal was armed
        return 128 + signal.SIGTERM
    shell = len(command) == 2 and command[0] == "--shell"
    try:
        child = subprocess.Popen(command[1] if shell else command, shell=shell)
    except OSError as err:
        print(f"cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        return 127
    code = child.wait()
    if _stopping:  # nothing the command started may outlive a stop
        os.killpg(0, signal.SIGKILL)
    if code < 0:  # end as the command ended: by the same signal
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
