"""Files a run produced (checkpoints, predictions, figures): recorded by reference, never the bytes.

Each entry says where the file is and what it was when logged:

    {"path": "checkpoint-500/model.safetensors", "base": "run", "size": 4831, "sha256": "9f2c…",
     "kind": "checkpoint", "logged": "2026-11-27T09:01:02.345+00:00"}

`base` keeps the record portable: "run" means relative to the run folder (EXP_DIR), "workspace"
relative to the workspace (the folder holding memory/experiments/ for a JSONL ledger, else the
enclosing git repository's top, else the current folder), "absolute" for anything outside both.
A folder is logged as one entry per file inside it. `doctor` reports files that are gone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .config import LEDGER_RELPATH
from .errors import BadInput
from .models import now_iso

BASES = ("run", "workspace", "absolute")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def workspace(store) -> Path:
    """The folder `base: workspace` paths are relative to, for this store."""
    ledger = getattr(store, "path", None)
    if isinstance(ledger, Path) and ledger.parts[-3:] == LEDGER_RELPATH.parts:
        return ledger.parents[2]
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def describe(path: str | os.PathLike, *, kind: str, run_dir: Path, root: Path) -> list[dict]:
    """Entries for a file, or for every file under a folder; BadInput if there is none."""
    target = Path(path).absolute()
    if target.is_dir():
        found = sorted(p for p in target.rglob("*") if p.is_file())
    elif target.is_file():
        found = [target]
    else:
        raise BadInput(f"cannot log {path}: no such file or folder")
    if not isinstance(kind, str) or not kind.strip():
        raise BadInput("a logged file needs a kind, e.g. kind=\"checkpoint\"")
    logged = now_iso()
    entries = []
    for file in found:
        base, relative = _relative(file, run_dir=run_dir, root=root)
        entries.append({"path": relative, "base": base, "size": file.stat().st_size, "sha256": sha256(file),
                        "kind": kind.strip(), "logged": logged})
    return entries


def _relative(file: Path, *, run_dir: Path, root: Path) -> tuple[str, str]:
    for base, folder in (("run", run_dir), ("workspace", root)):
        try:
            return base, file.relative_to(folder.absolute()).as_posix()
        except ValueError:
            continue
    return "absolute", str(file)


def locate(entry: dict, *, run_dir: Path, root: Path) -> Path:
    """Where a recorded file should be on this machine."""
    folder = {"run": run_dir, "workspace": root}.get(entry.get("base"))
    return folder / entry["path"] if folder is not None else Path(entry["path"])


def state(entry: dict, location: Path) -> str:
    """"ok", "missing", or "changed" (a different size than logged); sizes only, no re-hashing."""
    try:
        size = location.stat().st_size
    except OSError:
        return "missing"
    return "ok" if size == entry.get("size") else "changed"


def problems(store, experiments) -> list[dict]:
    """`doctor` findings: recorded files of runs made on this host that are gone or changed."""
    from .liveness import this_host
    from .store.checks import problem

    host, root, found = this_host(), workspace(store), []
    for exp in experiments:
        if not exp.files or exp.runner.get("host", host) != host:
            continue  # another machine's files are on that machine
        run_dir = store.run_dir(exp)
        for entry in exp.files:
            location = locate(entry, run_dir=run_dir, root=root)
            condition = state(entry, location)
            if condition != "ok":
                found.append(problem(f"{condition}_file", f"{exp.id}: {entry.get('kind', 'file')} {location} is "
                                     + ("gone" if condition == "missing" else "not the size it was when logged")))
    return found
