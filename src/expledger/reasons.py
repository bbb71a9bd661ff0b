"""Why did a run fail? One line read from the end of its output and its exit status."""

from __future__ import annotations

import re
import signal

_CUDA_OOM = re.compile(r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED"
                       r"|RESOURCE_EXHAUSTED", re.IGNORECASE)
_HOST_OOM = re.compile(r"\bMemoryError\b|Cannot allocate memory|std::bad_alloc|Out of memory: Killed process")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Failure|Warning)(?::.*)?)$")
# What a shell says when the command cannot start (exit 127 / 126), as sh, dash and bash word it.
_NOT_FOUND = re.compile(r"^(?:\S+: )?(?:line \d+: |\d+: )?(.+?): (?:command )?not found$")
_NOT_EXECUTABLE = re.compile(r"^(?:\S+: )?(?:line \d+: |\d+: )?(.+?): Permission denied$")
_CANT_OPEN = re.compile(r"(can't open file .*)$")  # python missing its script
_USAGE = re.compile(r"^\S+: error: (.+)$")  # argparse refusing the arguments (exit 2)
MAX_LENGTH = 300


def _short(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_LENGTH else line[: MAX_LENGTH - 1] + "…"


def failure_reason(exit_code: int, tail: list[str]) -> str:
    """A one-line reason: out of memory, a Python exception's last line, a signal, or the exit code.

    `exit_code` is negative when a signal killed the process (as subprocess reports it).
    """
    lines = [line.strip() for line in tail if line.strip()]
    for pattern, what in ((_CUDA_OOM, "CUDA out of memory"), (_HOST_OOM, "out of memory")):
        for line in reversed(lines):
            if pattern.search(line):
                says_it = "out of memory" in line.lower() or "outofmemory" in line.lower()
                return _short(line if says_it else f"{what}: {line}")
    if exit_code < 0:
        number = -exit_code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        hint = " (often the kernel's out-of-memory killer)" if number == signal.SIGKILL else ""
        return f"killed by signal {number} ({name}){hint}"
    for line in reversed(lines):
        match = _EXCEPTION.match(line)
        if match:
            return _short(match.group(1))
    return _short(_cannot_start(exit_code, lines) or f"exit code {exit_code}")


def _cannot_start(exit_code: int, lines: list[str]) -> str | None:
    """The command never ran: not found, not executable, a missing script, bad arguments."""
    last = lines[-1] if lines else ""
    if exit_code == 127 and (match := _NOT_FOUND.match(last)):
        return f"command not found: {match.group(1)}"
    if exit_code == 126 and (match := _NOT_EXECUTABLE.match(last)):
        return f"cannot run {match.group(1)}: permission denied"
    if exit_code == 2 and (match := _CANT_OPEN.search(last)):
        return match.group(1)
    if exit_code == 2 and (match := _USAGE.match(last)):
        return f"bad arguments: {match.group(1)}"
    return None
