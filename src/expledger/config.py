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
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return str(folder / LEDGER_RELPATH), "new ledger at the git repository's top"
    return str(here / LEDGER_RELPATH), "new ledger in the current folder"


def ledger_in(folder: str | Path) -> Path:
    """The ledger a folder given as a store stands for: its own experiments.jsonl, else the
    workspace ledger under it (memory/experiments/experiments.jsonl, created on first write)."""
    folder = Path(folder)
    return folder / LEDGER_RELPATH.name if (folder / LEDGER_RELPATH.name).is_file() else folder / LEDGER_RELPATH


_HOST = object()


def resolve_machine(flag: str | None = None, *, environ=None, default=_HOST) -> str | None:
    """The machine name recorded on new experiments; `default` replaces the host name."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("EXP_MACHINE") or (os.uname().nodename if default is _HOST else default)
