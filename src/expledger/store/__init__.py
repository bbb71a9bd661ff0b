"""Pick a store by URL: a registry maps each scheme to a builder.

Built-in stores register here; third-party ones through the entry-point group
`expledger.stores` (name = scheme, value = a callable taking the URL), consulted only
when a scheme is not built in, so start-up stays small.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import BadInput
from .base import Page, Search, Store

__all__ = ["Page", "Search", "Store", "open_store", "register_store"]

_BUILDERS: dict[str, Callable[..., Store]] = {}


def register_store(scheme: str, builder: Callable[..., Store]) -> None:
    """Make `scheme://…` URLs open with `builder(url, **options)`."""
    _BUILDERS[scheme] = builder


def _jsonl(url: str, **options) -> Store:
    from .jsonl import JsonlStore

    path = url[len("jsonl:") :] if url.startswith("jsonl:") else url
    if path.startswith("//"):
        path = path[2:]
    if os.path.isdir(path):  # `--store ~/workspace`: the ledger in that folder
        from ..config import ledger_in

        path = url = str(ledger_in(path))
    return JsonlStore(path, url=url, **options)


def _postgres(url: str, **options) -> Store:
    from .postgres import PostgresStore

    return PostgresStore(url, **options)


register_store("jsonl", _jsonl)
register_store("postgresql", _postgres)
register_store("postgres", _postgres)


def scheme_of(url: str) -> str:
    """`postgresql://…` -> postgresql, `jsonl:x` -> jsonl, a plain path -> jsonl."""
    head, sep, _ = url.partition(":")
    if sep and head.isidentifier() and len(head) > 1 and "/" not in head:
        return head.lower()
    return "jsonl"


def open_store(url: str | None = None, **options) -> Store:
    """Open the store a URL names (default: the one `exp` would use: $EXP_STORE, else the
    nearest memory/experiments/experiments.jsonl); BadInput listing the valid schemes if
    none fits."""
    if url is None:
        from ..config import resolve_store

        url = resolve_store()[0]
    scheme = scheme_of(url)
    builder = _BUILDERS.get(scheme) or _plugin(scheme)
    if builder is None:
        valid = ", ".join(f"{name}:" for name in sorted(_BUILDERS))
        from ..redact import redact

        raise BadInput(redact(f"unknown store scheme {scheme!r} in {url!r}: valid are {valid} or a file path"))
    return builder(url, **options)


def _plugin(scheme: str):
    from importlib.metadata import entry_points

    for entry in entry_points(group="expledger.stores"):
        if entry.name == scheme:
            register_store(scheme, entry.load())
            return _BUILDERS[scheme]
    return None
