"""Where and from what code an experiment ran: git state, Python, packages, host, GPUs.

Collected while the experiment runs (in a thread), so it adds nothing to start-up. Every
probe is best-effort: a missing git or nvidia-smi leaves its part out, never fails the run.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

DIFF_FILE = "git.diff"


def _run(argv: list[str], cwd: str | Path, timeout: float = 10) -> str | None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None


@functools.lru_cache(maxsize=64)
def git_root(cwd: str) -> str | None:
    """The work tree's top folder, or None outside one (asked once per folder and process:
    a script that starts a thousand runs need not ask git a thousand times)."""
    if not shutil.which("git"):
        return None
    top = _run(["git", "rev-parse", "--show-toplevel"], cwd)
    return top.strip() if top is not None else None


def git_state(cwd: str | Path, run_dir: Path | Callable[[], Path] | None = None,
              ledger_dir: Path | None = None) -> dict:
    """Commit, branch and dirty flag; the uncommitted diff (against HEAD) saved to the run folder
    (`run_dir`, or a function giving it: asked only when there is a diff to save).

    The ledger's own folder is left out: the ledger committed to git (as the README
    recommends) changes with every run, and that is not a change to the code."""
    top = git_root(str(cwd))
    if top is None:
        return {}
    paths = [":(top)"]
    if ledger_dir is not None and Path(os.path.realpath(ledger_dir)).is_relative_to(os.path.realpath(top)):
        paths.append(f":(exclude){os.path.realpath(ledger_dir)}")
    # One git call, asked anew for every run (the code may change between two runs of one
    # process): the commit and branch in its header lines, a changed tracked file in any other.
    status = _run(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no", "--", *paths], cwd) or ""
    header = dict(line[2:].partition(" ")[::2] for line in status.splitlines() if line.startswith("# "))
    commit, branch = header.get("branch.oid"), header.get("branch.head")
    state = {
        "root": top,
        "commit": commit if commit and commit != "(initial)" else None,
        "branch": "HEAD" if branch == "(detached)" else branch or None,  # as `git rev-parse --abbrev-ref` says it
        "dirty": any(line and not line.startswith("# ") for line in status.splitlines()),
    }
    if state["dirty"] and state["commit"]:
        diff = _run(["git", "diff", "HEAD", "--binary", "--", *paths], cwd) or ""
        state["diff_lines"] = diff.count("\n")
        if run_dir is not None:
            run_dir = run_dir() if callable(run_dir) else run_dir
            run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(os.open(run_dir / DIFF_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
                      encoding="utf-8") as handle:  # the diff may hold what the code holds: owner only
                handle.write(diff)
            state["diff_file"] = str(run_dir / DIFF_FILE)
    return state


def gpus() -> list[dict]:
    """GPUs as nvidia-smi lists them (index, name, memory in MiB, driver); empty without one."""
    if not _nvidia_smi():
        return []
    out = _run(["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version",
                "--format=csv,noheader,nounits"], ".")
    found = []
    for line in (out or "").splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) >= 4:
            memory = int(parts[2]) if parts[2].isdigit() else parts[2]
            found.append({"index": parts[0], "name": parts[1], "memory_mib": memory, "driver": parts[3]})
    return found


@functools.lru_cache(maxsize=1)
def packages() -> tuple[str, ...]:
    """Installed distributions as sorted `name==version` strings (read once per process:
    a worker runs many experiments in the same environment)."""
    from importlib.metadata import distributions

    return tuple(sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]},
                        key=str.lower))


def environment() -> dict:
    """The facts every run of this process shares (environment.KEYS), with `env`, their hash."""
    return dict(_environment(_nvidia_smi()))


def environment_known() -> bool:
    """Whether environment() is already at hand (asked once per process: the package scan)."""
    return _environment.cache_info().currsize > 0


@functools.lru_cache(maxsize=1)
def _nvidia_smi() -> str | None:
    """nvidia-smi's path, looked up once per process (a process that starts many runs)."""
    return shutil.which("nvidia-smi")


@functools.lru_cache(maxsize=4)
def _environment(nvidia_smi: str | None) -> tuple:
    from .environment import digest

    facts = {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": list(packages()),
        "os": platform.platform(),
        "cpus": os.cpu_count(),
        "gpus": gpus(),
    }
    return tuple({**facts, "env": digest(facts)}.items())


def collect(*, argv: list[str] | str, cwd: str | Path, run_dir: Path | Callable[[], Path] | None = None, env=None,
            ledger_dir: Path | None = None) -> dict:
    """Everything above, plus the command, working folder and host; `env` names the
    environment's part (environment.py), which the ledger stores once."""
    from .environment import expand
    from .redact import redact_args

    env = os.environ if env is None else env
    return expand({
        "argv": redact_args(argv),
        "cwd": str(cwd),
        "git": git_state(cwd, run_dir, ledger_dir),
        "host": platform.node(),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
    }, environment())


def record(store, exp, *, argv: list[str] | str, cwd: str | Path, env=None, attempt: int | None = None) -> None:
    """Collect provenance and add it to a RUNNING experiment (in its own store connection,
    since it runs in a thread); trouble is one warning, never an exception."""
    from .errors import ExpledgerError
    from .lifecycle import Amend
    from .store import open_store

    try:
        ledger = getattr(store, "path", None)  # a file ledger: its folder is not the code's state
        found = collect(argv=argv, cwd=cwd, run_dir=store.run_dir(exp), env=env,
                        ledger_dir=ledger.parent if ledger is not None else None)
        with open_store(store.url) as own:
            own.apply(exp.id, Amend(provenance=found, attempt=attempt))
    except (ExpledgerError, OSError) as err:
        from .log import warn
        from .redact import redact

        warn(redact(f"provenance of {exp.id} not recorded: {err}"))
