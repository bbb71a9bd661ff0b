"""Was this config tried already? `exp check`, and `add --unless-tried`. The matching rules and
the result (CheckResult, whose to_json() is the `check --json` payload) are in expledger.check."""

from __future__ import annotations

from ..check import CheckResult
from ..errors import BadInput
from ..store.base import Store

DEFAULT_NEIGHBOURS = 5

__all__ = ["CheckResult", "check"]


def check(store: Store, *, task: str | None = None, model: str | None = None, params: dict | None = None,
          replicate: str | None = "seed", neighbours: int = DEFAULT_NEIGHBOURS) -> CheckResult:
    """Every run of the config as asked (what is not named matches anything; the `replicate`
    param never counts), and up to `neighbours` nearest other runs of its task and model."""
    from ..check import check as find

    if not task and not model and params is None:
        raise BadInput("a check needs the config to look for: a task, a model and/or params")
    store.reap_once()
    return find(store, task=task, model=model, params=params or {}, replicate=replicate, neighbours=neighbours)
