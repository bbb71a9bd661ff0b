"""The on-finish hook: a lab's own command, run with an experiment's JSON on stdin when it
finishes, fails or is lost, e.g. to post to the lab's chat (`exp worker --on-finish CMD`,
`EXP_ON_FINISH`). A hook that fails or hangs is a warning; it never changes the ledger."""

from __future__ import annotations

import json
import os
import subprocess

HOOK_TIMEOUT = 60.0  # seconds a hook may take before it is stopped


def on_finish(command: str | None, exp, *, warn) -> None:
    """Run `command` through the shell with `exp` as JSON on stdin (EXP_ID, EXP_STATUS set)."""
    if not command:
        return
    payload = json.dumps({"experiment": exp.to_dict()}, ensure_ascii=False).encode()
    env = {**os.environ, "EXP_ID": exp.id, "EXP_STATUS": exp.status.value}
    try:
        proc = subprocess.run(command, shell=True, input=payload, env=env, capture_output=True, timeout=HOOK_TIMEOUT)
    except subprocess.TimeoutExpired:
        warn(f"the on-finish hook for {exp.id} took longer than {HOOK_TIMEOUT:.0f} s and was stopped")
        return
    except OSError as err:
        warn(f"the on-finish hook for {exp.id} could not start: {err.strerror}")
        return
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        warn(f"the on-finish hook for {exp.id} exited with {proc.returncode}" + (f": {said[-1]}" if said else ""))
