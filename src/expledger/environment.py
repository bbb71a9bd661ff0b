"""Provenance that does not repeat itself: the facts shared by every run of one environment.

The interpreter, its installed packages, the OS, CPU count and GPU models are the same for
every run of one environment, and the package list alone is kilobytes. A record's
provenance names them by `env`, a hash of their content; the ledger holds them once, on the
first line that uses them (a complete provenance, as every line before this format had),
and every later line carries only `env` and the per-run facts (command, folder, git state,
host, CUDA_VISIBLE_DEVICES). Reads put the facts back, so a record is always shown whole;
a content hash makes two machines that recorded the same environment agree, through git,
copy and merge alike.
"""

from __future__ import annotations

import hashlib
import json

KEYS = ("python", "python_executable", "packages", "os", "cpus", "gpus")  # the same for a whole environment
ORDER = ("argv", "cwd", "git", "python", "python_executable", "packages", "host", "os", "cpus", "gpus",
         "cuda_visible_devices", "env")  # provenance keys as collect() writes them


def digest(facts: dict) -> str:
    """The content hash that names an environment: 16 hex digits of SHA-256 over canonical JSON."""
    text = json.dumps({key: facts.get(key) for key in KEYS}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def facts_of(provenance: dict) -> dict | None:
    """The environment a provenance carries whole and names correctly, else None."""
    name = provenance.get("env")
    if not name or "packages" not in provenance:
        return None
    facts = {key: provenance.get(key) for key in KEYS}
    return facts if digest(facts) == name else None


def compact(provenance: dict) -> dict:
    """The provenance as a line that does not define its environment stores it."""
    if not provenance.get("env"):
        return provenance
    return {key: value for key, value in provenance.items() if key not in KEYS}


def expand(provenance: dict, facts: dict | None) -> dict:
    """A stored provenance made whole again, in the order collect() gives it."""
    if facts is None:
        return provenance
    whole = {**provenance, **facts}
    ordered = {key: whole[key] for key in ORDER if key in whole}
    ordered.update((key, value) for key, value in whole.items() if key not in ordered)
    return ordered
