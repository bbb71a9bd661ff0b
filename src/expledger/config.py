"""Where the ledger lives and which machine we are on, resolved at call time.

Store: `--store URL` (a folder means the ledger in it) > `EXP_STORE` > the nearest `memory/experiments/experiments.jsonl`
walking up from the current folder > a new one at the workspace root (the enclosing git
repository's top, else the current folder). Machine: `--machine` > `EXP_MACHINE` > host name.
Every environment variable the tool reads is read here.
"""

from __future__ import annotations

import os
from pathlib import Path

LEDGER_RELPATH = Path("memory", "experiments", "experiments.jsonl")


def resolve_store(flag: str | None = None, *, cwd: str | Path | None = None, environ=None) -> tuple[str, str]:
    """The store URL to use and where that choice came from (shown by `exp doctor`)."""
    environ = os.environ if environ is None else environ
    if flag:
        return flag, "--store"
    if environ.get("EXP_STORE"):
        return environ["EXP_STORE"], "EXP_STORE"
    here = Path(cwd or os.getcwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / LEDGER_RELPATH
        if candidate.is_file():
            return str(candidate), f"the nearest ledger at or above {here}"
    top = repo_top(here)
    if top is not None:
        return str(top / LEDGER_RELPATH), "new ledger at the git repository's top"
    return str(here / LEDGER_RELPATH), "new ledger in the current folder"


def ledger_in(folder: str | Path) -> Path:
    """The ledger a folder given as a store stands for: its own experiments.jsonl, else the
    workspace ledger under it (memory/experiments/experiments.jsonl, created on first write)."""
    folder = Path(folder)
    return folder / LEDGER_RELPATH.name if (folder / LEDGER_RELPATH.name).is_file() else folder / LEDGER_RELPATH


def repo_top(folder: str | Path) -> Path | None:
    """The top of the git repository (or worktree) holding `folder`, found without running git."""
    here = Path(folder).absolute()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def workdir_fields(folder: str | Path | None = None) -> dict:
    """Where an experiment is added from, as a worker elsewhere finds it: the folder relative to
    its repository's top (the same checkout at another path on another machine), and the
    absolute path as the fallback."""
    here = Path(folder or os.getcwd()).absolute()
    top = repo_top(here)
    return {"workdir": str(here), "repo_path": here.relative_to(top).as_posix() if top else None}


def on_finish_command(flag: str | None = None, *, environ=None) -> str | None:
    """The hook a worker runs when an experiment ends: `--on-finish` > `EXP_ON_FINISH`."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("EXP_ON_FINISH") or None


def resolve_target(flag: str | None) -> str | None:
    """The machine a queued experiment waits for: only what --machine says (`any` or '' for none).

    EXP_MACHINE names the machine a command runs on, never a target by itself."""
    return None if flag is None or flag.strip().lower() in ("", "any") else flag

def runtime_dir(*, environ=None) -> Path:
    """Where this user's runners keep their token files: `$EXP_RUNTIME_DIR` >
    `$XDG_RUNTIME_DIR/expledger` > `~/.cache/expledger`."""
    environ = os.environ if environ is None else environ
    if environ.get("EXP_RUNTIME_DIR"):
        return Path(environ["EXP_RUNTIME_DIR"])
    if environ.get("XDG_RUNTIME_DIR"):
        return Path(environ["XDG_RUNTIME_DIR"], "expledger")
    return Path.home() / ".cache" / "expledger"


def redact_args_wanted(*, environ=None) -> bool:
    """`EXP_REDACT_ARGS=1`: store command lines with secret-looking values hidden."""
    environ = os.environ if environ is None else environ
    return environ.get("EXP_REDACT_ARGS", "").strip().lower() in ("1", "true", "yes", "on")


def mcp_token(flag: str | None = None, *, environ=None) -> str | None:
    """The bearer token `exp mcp --http` requires: `--token` > `EXP_MCP_TOKEN` > none."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("EXP_MCP_TOKEN") or None


_HOST = object()


def resolve_machine(flag: str | None = None, *, environ=None, default=_HOST) -> str | None:
    """The machine name recorded on new experiments; `default` replaces the host name."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("EXP_MACHINE") or (os.uname().nodename if default is _HOST else default)


def system_interval(environ=None) -> float:
    """Seconds between system-metric samples of a run: EXP_SYSTEM_INTERVAL, default 10, 0 = off."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get("EXP_SYSTEM_INTERVAL") or 10.0)
    except ValueError:
        return 10.0
    return value if value == value and value != float("inf") else 10.0


def resolve_ui_token(flag: str | None = None, *, environ=None) -> str | None:
    """The dashboard's token: `--token` > `EXP_UI_TOKEN` > none (exp ui generates one off loopback)."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("EXP_UI_TOKEN") or None
